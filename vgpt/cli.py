"""`python -m vgpt COMMAND`: the project's command line. Every command has --help.

Errors a user can fix (bad arguments, missing files, an unreachable Hub) end
as one line on stderr and a non-zero exit code, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .profiles import TINY_DIR, ProfileUnavailable
from .tiny import GateError


class UsageError(Exception):
    """A problem the user can fix; printed as one line."""


def _build_tiny(args) -> int:
    from . import tiny

    if args.check:
        if not (args.out / "manifest.json").is_file():
            raise UsageError(f"no tiny models at {args.out} (manifest.json missing); "
                             f"build them with `python -m vgpt build-tiny`")
        result = tiny.check_tiny(args.out)
        return 0 if result["passed"] else 1
    recipe = tiny.TinyRecipe.fast() if args.fast else tiny.TinyRecipe()
    recipe.seed = args.seed
    manifest = tiny.build_tiny(args.out, recipe, enforce_gates=not args.fast)
    print(json.dumps(manifest["quality"], indent=2))
    return 0


def _profile(args) -> int:
    from dataclasses import asdict

    from .profiles import resolve_profile

    profile, reason = resolve_profile(args.name)
    print(f"profile: {profile.name} ({reason})")
    for key, value in asdict(profile).items():
        print(f"  {key:<20} {value}")
    return 0


def _demo(args) -> int:
    from .demo import run_demo

    if args.quick:
        run_demo(args.out, n_train=2000, n_eval=100, epochs=1, seed=args.seed, cache_root=args.cache)
    else:
        run_demo(args.out, n_train=args.train_scenes, epochs=args.epochs, seed=args.seed, cache_root=args.cache)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vgpt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("build-tiny", help="build (or --check) the tiny profile's pretrained models",
                       description="Train the tiny tokenizer, GPT-2 and CLIP vision tower on "
                                   "Shapes World and write them, with a manifest, to --out.")
    p.add_argument("--out", type=Path, default=TINY_DIR, help="output folder (default: %(default)s)")
    p.add_argument("--fast", action="store_true",
                   help="seconds-long build with tiny step counts; quality gates reported, not enforced")
    p.add_argument("--check", action="store_true",
                   help="do not build: reload the models in --out offline and re-measure their quality gates")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=_build_tiny)

    p = sub.add_parser("demo", help="the main job: train and evaluate a captioner on Shapes World, offline",
                       description="On the tiny profile: cache features, train the bridge, caption the test "
                                   "and compositional splits, and write a run folder with the bridge, "
                                   "metrics.json, loss.png and captions.png.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    p.add_argument("--train-scenes", type=int, default=20_000, help="training scenes (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the tiny profile's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a small, one-epoch run for smoke tests (about a minute)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("profile", help="show which profile would be used, and why",
                       description="Resolve a profile name (or VGPT_PROFILE, or auto) and print its values.")
    p.add_argument("name", nargs="?", default=None, help="auto, seed or tiny (default: VGPT_PROFILE or auto)")
    p.set_defaults(func=_profile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ProfileUnavailable, ValueError, FileNotFoundError, GateError) as err:
        print(f"vgpt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vgpt {args.command}: interrupted", file=sys.stderr)
        return 130
