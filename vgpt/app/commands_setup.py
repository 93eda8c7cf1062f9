"""The handlers of `python -m vgpt build-tiny` and `python -m vgpt profile`: the tiny models built or
checked, and the profile a machine would use, with its values."""

from __future__ import annotations

import json

from ..errors import UsageError
from ..paths import repo_relative


def build_tiny(args) -> int:
    from ..world import build as tiny

    if args.check:
        if not (args.out / "manifest.json").is_file():
            raise UsageError(
                f"no tiny models at {args.out} (manifest.json missing); build them with `python -m vgpt build-tiny`"
            )
        result = tiny.check_tiny(args.out)
        return 0 if result["passed"] else 1
    recipe = tiny.TinyRecipe.fast() if args.fast else tiny.TinyRecipe()
    recipe.seed = args.seed
    manifest = tiny.build_tiny(args.out, recipe, enforce_gates=not args.fast)
    print(json.dumps(manifest["quality"], indent=2))
    return 0


def _flat(values: dict, prefix: str = ""):
    """Nested settings as (dotted name, value) pairs, paths inside the repository made relative."""
    for key, value in values.items():
        if isinstance(value, dict) and key != "notes":
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", repo_relative(value) if isinstance(value, str) else value


def show_profile(args) -> int:
    from dataclasses import asdict

    from ..loading import resolve_profile

    profile, reason = resolve_profile(args.name)
    print(f"profile: {profile.name} ({reason})")
    for key, value in _flat(asdict(profile)):
        print(f"  {key:<28} {value}")
    return 0
