"""Folders that appear whole or not at all: write into a side folder, then rename it into place."""

from __future__ import annotations

import shutil
from pathlib import Path


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
