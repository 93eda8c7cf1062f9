"""`bench --demo`: the demo's recipes side by side, seed by seed, in one process.

    for each seed: for each recipe (the profile's first): `demo.run_demo` end to end
    -> a seeds x recipes table of seconds and test exact match, the mean time ratio

Every run goes through `demo.run_demo` on the same cached features (built for every seed before
the first timing): loading the models, training with per-epoch validation, captioning the test and
compositional splits, writing the run folder. Seeds go in the outer loop, so that a change of the
machine's load during the bench falls on both recipes alike. On a CPU the thread count is pinned (1
by default) for every run: left to `device.use_cpu_threads`, it follows the machine's load, and a
first try on a shared 2-core machine gave the profile's recipe 2 threads and the fast one 1, a
ratio of 0.75 that measured the neighbours, not the recipes.
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

SEEDS = (0, 1, 2)


def run_demo_bench(
    n_train: int = 20_000,
    n_eval: int | None = None,
    seeds: tuple[int, ...] = SEEDS,
    recipes: tuple[str, ...] = ("profile", "fast"),
    cache_root: str | Path = "runs/features",
    out: str | Path | None = None,
    log=print,
    threads: int | None = 1,
) -> dict:
    """Each recipe's settings and, per seed, seconds, steps, test exact match and end-of-text rate;
    the ratio of the last recipe's mean seconds to the first's.

    Returns {"n_train", "n_eval", "seeds", "threads", "recipes": {name: {"epochs", "batch_size",
    "lr", "warmup_steps", "lean_forward", "steps", "runs": {seed: {...}}, "seconds" (mean),
    "exact_match" (min, max)}}, "ratio"}.
    """
    n_eval = n_eval or max(8, min(500, n_train // 40))  # 500 at the demo's 20,000
    cache_root = Path(cache_root)
    parts = load_profile(TINY, verbose=False)
    for seed in seeds:
        for name, n in (("train", n_train), ("val", n_eval), ("test", n_eval), ("compositional", n_eval)):
            shapes_features(parts, name, n, seed, cache_root)  # once, outside the timings
    saved = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    if threads:  # use_cpu_threads leaves the count alone where OMP_NUM_THREADS is set
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    try:
        runs = _every_run(n_train, n_eval, seeds, recipes, cache_root, out)
        used = torch.get_num_threads()
    finally:
        if threads and saved[0] is None:
            del os.environ["OMP_NUM_THREADS"]
        elif threads:
            os.environ["OMP_NUM_THREADS"] = saved[0]
        torch.set_num_threads(saved[1])
    figures: dict = {"n_train": n_train, "n_eval": n_eval, "seeds": list(seeds), "threads": used, "recipes": {}}
    for name in recipes:
        config, mine = RECIPES[name], {seed: runs[seed, name] for seed in seeds}
        exact = [r["test_exact_match"] for r in mine.values()]
        figures["recipes"][name] = {
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "lr": config.lr_lora,
            "warmup_steps": config.warmup_steps,
            "lean_forward": config.lean_forward,
            "steps": mine[seeds[0]]["steps"],
            "runs": mine,
            "seconds": sum(r["seconds"] for r in mine.values()) / len(mine),
            "exact_match": (min(exact), max(exact)),
        }
    first, last = figures["recipes"][recipes[0]], figures["recipes"][recipes[-1]]
    figures["ratio"] = last["seconds"] / first["seconds"]
    for line in table(figures):
        log(line)
    return figures


def table(figures: dict) -> list[str]:
    """The bench's report: one row per recipe, one column per seed (seconds, test exact match)."""
    seeds, recipes = figures["seeds"], figures["recipes"]
    lines = [
        f"demo, {figures['n_train']:,} training scenes, {figures['n_eval']} per eval split, "
        f"{figures['threads']} thread(s); features cached beforehand; per seed: seconds, test exact match",
        f"{'recipe':<9}{'epochs':>7}{'batch':>6}{'lr':>8}{'steps':>6}"
        + "".join(f"{f'seed {s}':>17}" for s in seeds)
        + f"{'mean':>17}",
    ]
    for name, r in recipes.items():
        cells = [f"{run['seconds']:.0f} s {run['test_exact_match']:6.1%}" for run in r["runs"].values()]
        low, high = r["exact_match"]
        mean = f"{r['seconds']:.0f} s {sum(run['test_exact_match'] for run in r['runs'].values()) / len(seeds):6.1%}"
        lines.append(
            f"{name:<9}{r['epochs']:>7}{r['batch_size']:>6}{r['lr']:>8.0e}{r['steps']:>6}"
            + "".join(f"{c:>17}" for c in cells)
            + f"{mean:>17}"
        )
        lines.append(f"{'':<9}test exact match {low:.1%} to {high:.1%} over the seeds")
    names = list(recipes)
    lines.append(f"ratio {names[-1]} / {names[0]}: {figures['ratio']:.2f} (mean seconds over the seeds)")
    return lines


def _every_run(n_train: int, n_eval: int, seeds, recipes, cache_root: Path, out) -> dict:
    """{(seed, recipe): figures} of every run, seed by seed, each seed's recipes in the order given."""
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for recipe in recipes:
                start = time.perf_counter()
                summary = run_demo(Path(out or tmp) / f"{recipe}-seed{seed}", n_train=n_train, n_eval=n_eval,
                                   seed=seed, cache_root=cache_root, progress=False, log=lambda *_: None,
                                   recipe=recipe)  # fmt: skip
                test = summary["results"]["test"]["scores"]
                runs[seed, recipe] = {
                    "seconds": round(time.perf_counter() - start, 1),
                    "train_seconds": summary["seconds"]["train"],
                    "steps": summary["history"][-1]["step"],
                    "test_exact_match": test["exact_match"],
                    "test_eos_rate": test["eos_rate"],
                }
    return runs
