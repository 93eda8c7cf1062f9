"""Re-measure the figures the README and the notebooks state, on other CPU kernel paths and thread
counts, and fail when one leaves the range it is stated with.

    python .ci/stated_figures.py            # CI: every figure, the demo in its quick variant (a few minutes)
    python .ci/stated_figures.py --full     # the demo itself too (about 3 minutes more per variant)
    python .ci/stated_figures.py --only bridge-300 baseline-09

The figures, their ranges and where each is stated live in .ci/stated_figures.json, the one list;
tests/test_stated_figures.py checks that each file states each figure with that range. Each
measurement runs in a process of its own for each variant (torch reads ATEN_CPU_CAPABILITY when it
loads: "native" is the best kernel path this CPU has, AVX2 or AVX-512, "default" the plain one
every x86 CPU runs), from an empty work folder, through the code a learner runs:

    bridge-500   the shipped bridge scored as data/tiny/bridge/metrics.json was (500 scenes a split)
    bridge-300   the same on the notebooks' 300 scenes (notebooks 08 and 09)
    baseline-09  notebook 09's baseline run (`experiments.run_ablation`, seed 0)
    notebook-06  notebooks/06_training.ipynb executed; its training records read from its output
    demo-quick   `python -m vgpt demo --train-scenes 5000`: the demo's recipe on a quarter of its scenes,
                 standing in for the demo in CI
    demo         `python -m vgpt demo` as the README's first command runs it (with --full)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATED = Path(__file__).with_name("stated_figures.json")


# ---------------------------------------------------------------- one measurement, in this process


def measure(name: str, work: Path) -> dict[str, float]:
    """The figures of one measurement, run here (the caller set the kernel path and threads)."""
    if name in ("bridge-500", "bridge-300", "baseline-09"):
        from vgpt.course import experiments
        from vgpt.loading import load_profile

        changes = {"baseline-09": {}, "bridge-500": {"start": "shipped", "epochs": 0, "n_eval": 500},
                   "bridge-300": {"start": "shipped", "epochs": 0}}[name]  # fmt: skip
        result = experiments.run_ablation(name, changes, load_profile("tiny", verbose=False), work, shipped=None,
                                          log=None)  # fmt: skip
        return experiments.figures_of(result)
    if name == "notebook-06":
        return _notebook_06(work)
    if name in ("demo", "demo-quick"):
        size = ["--train-scenes", "5000"] if name == "demo-quick" else []
        command = [sys.executable, "-m", "vgpt", "demo", "--out", str(work / "demo"), "--cache", str(work / "cache")]
        subprocess.run(command + size, check=True, stdout=subprocess.DEVNULL, cwd=work)
        summary = json.loads((work / "demo" / "metrics.json").read_text())
        return {"test exact": summary["results"]["test"]["scores"]["exact_match"],
                "seconds": summary["seconds"]["total"]}  # fmt: skip
    raise SystemExit(f"unknown measurement {name!r}")


def _notebook_06(work: Path) -> dict[str, float]:
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / "06_training.ipynb"
    nb = nbformat.read(path, as_version=4)
    os.environ["VGPT_RUNS"] = str(work / "runs")  # the kernel inherits it: an empty work folder
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    found = {int(e): float(v) for e, v in re.findall(r"^epoch (\d+) \(step \d+\): train [\d.]+, val ([\d.]+)", printed,
                                                     re.M)}  # fmt: skip
    if not found:
        raise SystemExit("notebook 06 printed no 'epoch N (step S): train X, val Y' line")
    return {f"val loss epoch {e}": v for e, v in found.items()}


# ---------------------------------------------------------------- the check, over variants


def run_variant(name: str, variant: dict) -> tuple[dict[str, float], float]:
    """One measurement in a fresh process on `variant`'s kernel path and thread count."""
    env = {**os.environ, "OMP_NUM_THREADS": str(variant["threads"]), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    env.pop("ATEN_CPU_CAPABILITY", None)
    env.pop("VGPT_PROFILE", None)
    if variant["kernel"] != "native":
        env["ATEN_CPU_CAPABILITY"] = variant["kernel"]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "figures.json"
        command = [sys.executable, __file__, "--one", name, "--work", tmp, "--json", str(out)]
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{name} on {variant} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
        return json.loads(out.read_text()), time.perf_counter() - start


def check(stated: dict, full: bool, only: list[str] | None, log=print) -> list[str]:
    """Every figure under every variant against its range; the lines of those outside it."""
    plan = []  # (figure, measurement, range) to look at
    for figure in stated["figures"]:
        use = figure["quick"] if ("quick" in figure and not full) else figure
        if only is None or use["measure"] in only:
            plan.append((figure["id"], use["measure"], use["key"], use["low"], use["high"], use is not figure))
    wrong = []
    log(f"{'figure':<30}{'measured by':<14}{'kernels':>8}{'threads':>8}{'value':>9}   stated range")
    for variant in stated["variants"]:
        measured = {}
        for measurement in dict.fromkeys(m for _, m, *_ in plan):
            measured[measurement], seconds = run_variant(measurement, variant)
            log(f"  ({measurement} on {variant['kernel']}, {variant['threads']} thread(s): {seconds:.0f} s)")
        for fid, measurement, key, low, high, quick in plan:
            value = measured[measurement][key]
            ok = low <= value <= high
            log(f"{fid + (' (quick)' if quick else ''):<30}{measurement:<14}{variant['kernel']:>8}"
                f"{variant['threads']:>8}{value:>9.4f}   {low:g} to {high:g}{'' if ok else '   OUTSIDE'}")  # fmt: skip
            if not ok:
                wrong.append(f"{fid}: {value:.4f} on {variant} is outside its stated {low:g} to {high:g}")
    return wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the demo itself instead of its quick variant")
    parser.add_argument("--only", nargs="+", default=None, help="only these measurements")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement in this process
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        args.json.write_text(json.dumps(measure(args.one, args.work)))
        return 0
    wrong = check(json.loads(STATED.read_text()), args.full, args.only)
    for line in wrong:
        print(line, file=sys.stderr)
    print("every stated figure within its range" if not wrong else f"{len(wrong)} figure(s) outside their range")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
