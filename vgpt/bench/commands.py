"""`python -m vgpt bench`: the speed of each lever, measured side by side in one run. The handler
imports the benchmarks when it runs, so that --help does not wait for torch (see `world/commands.py`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_commands(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="time the original recipe against cached features and a shared prefix",
        description="Training step per image: (a) vision tower per caption, (b) cached features, "
        "(c) cached + shared prefix; generation with and without batching and KV cache. All in one "
        "run, medians, ratios, and FLOP counts.",
    )
    p.add_argument(
        "--profile",
        default=None,
        choices=("seed", "tiny"),
        help="seed: full-size architectures, random weights (the default); tiny: the shipped models "
        "(the default with --under-load)",
    )
    p.add_argument("--images", type=int, default=1, help="images per training batch, 5 captions each (default: 1)")
    p.add_argument("--gen-images", type=int, default=4, help="images to caption (default: %(default)s)")
    p.add_argument("--new-tokens", type=int, default=30, help="tokens to generate (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant (default: %(default)s)")
    p.add_argument(
        "--extract-images",
        type=int,
        default=16,
        help="JPEG images for the feature extraction figure (default: %(default)s)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best here)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    p.add_argument(
        "--under-load",
        action="store_true",
        help="instead: CPU training steps with 1 thread, torch's default and vgpt's pick, alone and beside "
        "a busy process (--repeats rounds of --steps steps)",
    )
    p.add_argument("--steps", type=int, default=10, help="timed steps a round, --under-load (default: %(default)s)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="instead: the whole demo with the tiny profile's recipe and the fast one, seed by seed: seconds "
        "and test exact match, and the time ratio",
    )
    p.add_argument("--demo-scenes", type=int, default=20_000, help="training scenes, --demo (default: %(default)s)")
    p.add_argument("--demo-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds, --demo (default: 0 1 2)")
    p.set_defaults(func=bench)


def bench(args: argparse.Namespace) -> int:
    if args.demo:
        from .demo import run_demo_bench

        figures = run_demo_bench(n_train=args.demo_scenes, seeds=tuple(args.demo_seeds))
    elif args.under_load:
        from .threads import run_thread_bench

        figures = run_thread_bench(args.profile or "tiny", steps=args.steps, rounds=args.repeats)
    else:
        from .speed import run_bench

        figures = run_bench(
            args.profile or "seed",
            images=args.images,
            gen_images=args.gen_images,
            new_tokens=args.new_tokens,
            repeats=args.repeats,
            device=args.device,
            extract_images=args.extract_images,
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0
