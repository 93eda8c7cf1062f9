"""`python -m vgpt COMMAND` (or `vgpt COMMAND`): the command line. Every command has --help.

The front door of the package, and the one module that imports the rings around the core: each ring
adds its own commands (`add_commands`), this module adds `profile` and runs what was asked. Errors a
user can fix (bad arguments, missing files, an unreachable Hub) end as one line on stderr and exit
code 2, not a traceback. What a command needs beyond its parser (torch, transformers and peft, several
seconds to load) is imported when it runs, so that --help and a mistyped argument answer at once.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from .app.commands import add_commands as app_commands
from .bench.commands import add_commands as bench_commands
from .classroom.commands import add_commands as classroom_commands
from .config import UserError
from .files import repo_relative
from .scale.commands import add_commands as recipe_commands
from .world.commands import add_commands as world_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vgpt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    world_commands(sub)
    recipe_commands(sub)
    bench_commands(sub)
    classroom_commands(sub)
    app_commands(sub)
    p = sub.add_parser(
        "profile",
        help="show which profile would be used, and why",
        description="Resolve a profile name (or VGPT_PROFILE, or auto) and print its values.",
    )
    p.add_argument(
        "name", nargs="?", default=None, help="auto, seed, seed-plus or tiny (default: VGPT_PROFILE or auto)"
    )
    p.set_defaults(func=show_profile)
    return parser


def _flat(values: dict, prefix: str = ""):
    """Nested settings as (dotted name, value) pairs, paths inside the repository made relative."""
    for key, value in values.items():
        if isinstance(value, dict) and key != "notes":
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", repo_relative(value) if isinstance(value, str) else value


def show_profile(args: argparse.Namespace) -> int:
    from .loading import resolve_profile

    profile, reason = resolve_profile(args.name)
    print(f"profile: {profile.name} ({reason})")
    for key, value in _flat(asdict(profile)):
        print(f"  {key:<28} {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from .scale.threads import use_cpu_threads

        use_cpu_threads()  # as many threads as the cores other programs leave free
        return args.func(args)
    except UserError as err:
        print(f"vgpt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vgpt {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
