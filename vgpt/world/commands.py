"""`python -m vgpt build-tiny` and `python -m vgpt demo`: the tiny profile's models built (or checked),
and the main job, a captioner trained and scored on Shapes World.

As in every ring's commands module, the parsers are defined here and each handler imports its job
when it runs: those modules load torch, transformers and peft (several seconds), which `--help` and a
mistyped argument should not wait for."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..config import TINY_DIR, UserError

RECIPES = ("fast", "profile")  # `demo.RECIPES`: named here so that --help does not load torch


def add_commands(sub) -> None:
    p = sub.add_parser(
        "build-tiny",
        help="build (or --check) the tiny profile's pretrained models",
        description="Train the tiny tokenizer, GPT-2 and CLIP vision tower on Shapes World and write "
        "them, with a manifest, to --out.",
    )
    p.add_argument("--out", type=Path, default=TINY_DIR, help="output folder (default: %(default)s)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="seconds-long build with tiny step counts; quality gates reported, not enforced",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="do not build: reload the models in --out offline and re-measure their quality gates",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=build_tiny)

    p = sub.add_parser(
        "demo",
        help="the main job: train and evaluate a captioner on Shapes World, offline",
        description="On the tiny profile: cache features, train the bridge, caption the test and "
        "compositional splits, and write a run folder with the bridge, metrics.json, loss.png and "
        "captions.png.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    p.add_argument("--train-scenes", type=int, default=20_000, help="training scenes (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a small, one-epoch run for smoke tests (about a minute)")
    p.add_argument(
        "--recipe",
        default="fast",
        choices=RECIPES,
        help="fast: fewer epochs, lean forward (the default); profile: the tiny profile's own",
    )
    p.set_defaults(func=demo)


def build_tiny(args: argparse.Namespace) -> int:
    from . import build  # the job's modules load torch and transformers: not for --help

    if args.check:
        if not (args.out / "manifest.json").is_file():
            raise UserError(
                f"no tiny models at {args.out} (manifest.json missing); build them with `python -m vgpt build-tiny`"
            )
        return 0 if build.check_tiny(args.out)["passed"] else 1
    recipe = dict(build.FAST_RECIPE if args.fast else build.RECIPE, seed=args.seed)
    manifest = build.build_tiny(args.out, recipe, enforce_gates=not args.fast)
    print(json.dumps(manifest["quality"], indent=2))
    return 0


def demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    size = (
        dict(n_train=2000, n_eval=100, epochs=1) if args.quick else dict(n_train=args.train_scenes, epochs=args.epochs)
    )
    run_demo(args.out, seed=args.seed, cache_root=args.cache, recipe=args.recipe, **size)
    return 0
