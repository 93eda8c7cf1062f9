"""The demo's time: the profile's own recipe against the demo's fast one, in one process.

Both run `demo.run_demo` end to end on the same cached features (built once, before the timings):
loading the models, training with per-epoch validation, captioning the test and compositional
splits, writing the run folder. Printed: absolute seconds of each, the ratio, and each one's test
exact match and end-of-text rate. On a CPU the thread count is pinned (1 by default) for both runs:
left to `scale.threads.use_cpu_threads`, it follows the machine's load, and a first try on a shared 2-core
machine gave the profile's recipe 2 threads and the fast one 1, a ratio of 0.75 that measured the
neighbours, not the recipes.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from ..config import TINY
from ..loading import load_profile
from ..world.demo import RECIPES, run_demo, shapes_features


def run_demo_bench(
    n_train: int = 20_000,
    n_eval: int | None = None,
    seed: int = 0,
    cache_root: str | Path = "runs/features",
    out: str | Path | None = None,
    log=print,
    threads: int | None = 1,
) -> dict:
    """Seconds, steps, test exact match and end-of-text rate of each recipe, and fast / profile."""
    n_eval = n_eval or max(8, min(500, n_train // 40))  # 500 at the demo's 20,000
    cache_root = Path(cache_root)
    parts = load_profile(TINY, verbose=False)
    for name, n in (("train", n_train), ("val", n_eval), ("test", n_eval), ("compositional", n_eval)):
        shapes_features(parts, name, n, seed, cache_root)  # once, outside the timings
    figures: dict = {"n_train": n_train, "n_eval": n_eval}
    saved = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    if threads:  # use_cpu_threads leaves the count alone where OMP_NUM_THREADS is set
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    try:
        figures.update(_both_recipes(n_train, n_eval, seed, cache_root, out))
    finally:
        if threads and saved[0] is None:
            del os.environ["OMP_NUM_THREADS"]
        elif threads:
            os.environ["OMP_NUM_THREADS"] = saved[0]
        torch.set_num_threads(saved[1])
    figures["ratio"] = figures["fast"]["seconds"] / figures["profile"]["seconds"]
    log(f"demo, {n_train:,} training scenes, {n_eval} per eval split; features cached beforehand")
    log(f"{'recipe':<10}{'epochs':>7}{'steps':>7}{'threads':>8}{'seconds':>9}{'train s':>9}{'exact':>8}{'eot':>8}")
    for recipe in ("profile", "fast"):
        f = figures[recipe]
        log(f"{recipe:<10}{f['epochs']:>7}{f['steps']:>7}{f['threads']:>8}{f['seconds']:>9.1f}{f['train_seconds']:>9.1f}"
            f"{f['test_exact_match']:>8.1%}{f['test_eos_rate']:>8.1%}")  # fmt: skip
    log(f"ratio fast / profile: {figures['ratio']:.2f}")
    return figures


def _both_recipes(n_train: int, n_eval: int, seed: int, cache_root: Path, out) -> dict:
    """Each recipe's figures, the profile's first."""
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in ("profile", "fast"):
            config = RECIPES[recipe]
            start = time.perf_counter()
            summary = run_demo(Path(out or tmp) / recipe, n_train=n_train, n_eval=n_eval, seed=seed,
                               cache_root=cache_root, progress=False, log=lambda *_: None, recipe=recipe)  # fmt: skip
            seconds = time.perf_counter() - start
            test = summary["results"]["test"]["scores"]
            figures[recipe] = {
                "seconds": round(seconds, 1),
                "train_seconds": summary["seconds"]["train"],
                "epochs": config.epochs,
                "steps": summary["history"][-1]["step"],
                "lean_forward": config.lean_forward,
                "threads": torch.get_num_threads(),
                "test_exact_match": test["exact_match"],
                "test_eos_rate": test["eos_rate"],
            }
    return figures
