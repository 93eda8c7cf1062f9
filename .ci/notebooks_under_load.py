"""The notebooks under nbval beside busy processes: they must pass, within LIMIT times their idle time.

    python .ci/notebooks_under_load.py                       # runs them alone first, then beside
    python .ci/notebooks_under_load.py --reference alone.xml # idle time from an earlier run's JUnit XML

A notebook whose outcome depends on timing (nbval allows 5 s for each output
message after a cell ends), or whose speed collapses when another program
takes a core (two OpenMP threads spinning while one waits for the scheduler:
a training step 25x slower), passes on an idle CI machine and fails on a
student's laptop. Here it fails first. The busy processes are `python -c
'while True: pass'`, one per two CPUs (one on a 2-core machine), for the whole
run. Times are the sums of the notebook cells' durations in pytest's JUnit XML.
Both runs start from an empty work folder: the full suite's own nbval run is no
reference, because the tests before it leave notebook 06's bridge behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from vgpt.bench.threads import busy_process
from vgpt.scale.threads import cores

ROOT = Path(__file__).resolve().parents[1]


def notebook_seconds(junit_xml: Path) -> float:
    """Seconds the cells of notebooks/*.ipynb took, summed, from pytest's JUnit XML."""
    names = [(c.get("classname", ""), float(c.get("time", 0))) for c in ET.parse(junit_xml).iter("testcase")]
    cells = [seconds for name, seconds in names if name.startswith("notebooks.") and name.endswith(".ipynb")]
    if not cells:
        raise SystemExit(f"{junit_xml}: no notebook cells in it")
    return sum(cells)


def run_notebooks(junit_xml: Path, timeout: float | None = None) -> int:
    """`python -m pytest notebooks` (nbval, settings from pyproject.toml); its exit status, or 124
    when it ran past `timeout` seconds (then it is interrupted, so that nbval shuts its kernels down).

    Each run gets an empty work folder of its own (VGPT_RUNS, beside the report): a run that found
    the bridge notebook 06 trained in an earlier one would skip the training, and look fast."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit_xml}", "notebooks"]
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}  # this run's report, not the suite's
    env["VGPT_RUNS"] = str(junit_xml.with_suffix(".runs"))
    pytest = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        return pytest.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"the notebooks ran past {timeout:.0f} s: stopped", file=sys.stderr)
        pytest.send_signal(signal.SIGINT)
        try:
            pytest.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.kill()
        return 124


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reference", type=Path, help="JUnit XML of the notebooks run alone, empty work folder (default: run them)"
    )
    parser.add_argument("--limit", type=float, default=2.0, help="loaded time / idle time at most (default: 2.0)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        reference = args.reference or Path(tmp) / "alone.xml"
        if args.reference is None and run_notebooks(reference):
            return 1
        alone = notebook_seconds(reference)
        busy = max(1, cores() // 2)
        print(f"notebooks alone: {alone:.0f} s; now beside {busy} busy process(es)", flush=True)
        with contextlib.ExitStack() as stack:
            for _ in range(busy):
                stack.enter_context(busy_process())
            status = run_notebooks(Path(tmp) / "loaded.xml", timeout=args.limit * alone + 120)
        if status:
            return status
        loaded = notebook_seconds(Path(tmp) / "loaded.xml")
    ratio = loaded / alone
    print(f"notebooks alone {alone:.0f} s, beside {busy} busy process(es) {loaded:.0f} s: {ratio:.2f}x "
          f"(limit {args.limit:.1f}x)")  # fmt: skip
    return 0 if ratio <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
