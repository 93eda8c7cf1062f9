"""Where things are, and folders that appear whole or not at all.

Paths inside the repository are saved and printed relative to it, so that a
run folder, a bridge or a notebook's output reads the same on every machine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_DIR = Path(os.environ.get("VGPT_TINY_DIR", REPO_ROOT / "data" / "tiny"))


def repo_relative(name):
    """A path inside this repository as a path relative to it; anything else (a Hub id, a path
    elsewhere, None) as it is."""
    if name and Path(name).is_absolute() and Path(name).is_relative_to(REPO_ROOT):
        return Path(name).relative_to(REPO_ROOT).as_posix()
    return None if name is None else str(name)


def swap_into_place(work: Path, final: Path) -> Path:
    """Replace `final` by the finished `work` folder; a crash leaves the old one or the new one.

    The old folder is moved aside first (renames are atomic on one file
    system) and deleted only once the new one is in place.
    """
    old = final.with_name(final.name + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    work.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final
