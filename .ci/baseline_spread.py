"""Notebook 09's baseline on every torch build, CPU kernel path and thread count at hand, for each
seed: the shipped record of its spread (data/tiny/experiments/baseline-spread.json), which the
notebook's check and its tables use as the noise.

    python .ci/baseline_spread.py                                    # this Python, both kernel paths, 1 and 2 threads
    python .ci/baseline_spread.py --python .venv/bin/python --python /other/torch/venv/bin/python

Each (Python, kernel path, thread count) runs in a process of its own, because torch reads
ATEN_CPU_CAPABILITY when it loads: "native" is the best path this CPU has (AVX2 or AVX-512),
"default" the plain one every x86 CPU runs. Runs are cached under --work by their settings, so an
interrupted call goes on where it stopped. One run at a time: the runs time nothing, but a
neighbour's load only makes them slower, never different.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpt.course import experiments  # noqa: E402

ONE_CONFIGURATION = """
import json, sys
import torch
from vgpt.course import experiments
from vgpt.loading import load_profile

torch.set_num_threads(int(sys.argv[2]))
parts = load_profile("tiny", verbose=False)
for seed in json.loads(sys.argv[3]):
    result = experiments.run_ablation("baseline", {"seed": seed}, parts, sys.argv[1], shipped=None, log=None)
    made_with = result.get("made_with", experiments.made_with())  # the folder is this configuration's alone
    print(json.dumps({"seed": seed, **made_with, **experiments.figures_of(result)}), flush=True)
"""


def one_configuration(python: str, kernel: str, threads: int, seeds: list[int], work: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("ATEN_CPU_CAPABILITY", None)
    if kernel != "native":
        env["ATEN_CPU_CAPABILITY"] = kernel
    version = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], env=env, text=True,
                             capture_output=True, check=True).stdout.strip()  # fmt: skip
    folder = work / f"{version}-{kernel}-{threads}"
    done = subprocess.run([python, "-c", ONE_CONFIGURATION, str(folder), str(threads), json.dumps(seeds)], env=env,
                          text=True, capture_output=True, cwd=ROOT)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{python} ({kernel}, {threads} threads) failed:\n{done.stderr[-3000:]}")
    runs = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    for r in runs:
        print(f"  seed {r['seed']} torch {r['torch']} {r['cpu_capability']} {r['threads']} thread(s): "
              f"loss {r['final loss']:.3f}, test exact {r['test exact']:.1%}", flush=True)  # fmt: skip
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", help="a Python with torch and vgpt's needs (default: this one)")
    parser.add_argument("--kernels", nargs="+", default=["native", "default"], help="ATEN_CPU_CAPABILITY values")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(experiments.SEEDS))
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "baseline-spread")
    parser.add_argument("--out", type=Path, default=experiments.BASELINE_SPREAD)
    args = parser.parse_args(argv)
    runs = []
    for python in args.python or [sys.executable]:
        for kernel in args.kernels:
            for threads in args.threads:
                runs += one_configuration(python, kernel, threads, args.seeds, args.work)
    figures = list(experiments.FIGURES)
    record = {
        "settings": {k: v for k, v in dataclasses.asdict(experiments.BASE).items() if k != "seed"},
        "made_by": f"python .ci/baseline_spread.py, with torch {' and '.join(sorted({r['torch'] for r in runs}))}",
        "runs": runs,
        **experiments.summary([{k: r[k] for k in figures} for r in runs]),
    }
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    mean, sd = record["mean"], record["sd"]
    print(f"{len(runs)} runs: loss {mean['final loss']:.3f} ± {sd['final loss']:.3f}, "
          f"test exact {mean['test exact']:.1%} ± {sd['test exact']:.1%} (mean ± sd) -> {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
