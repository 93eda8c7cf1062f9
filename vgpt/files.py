"""Files and folders that appear whole or not at all, and paths as a reader should see them.

Everything vgpt writes for later (a bridge, a checkpoint, a feature cache, a data folder, a result)
is written aside and renamed into place: a run killed at any moment leaves the old version or the
new one, never half of one. Paths inside the repository are saved and printed relative to it, so a
run folder reads the same on every machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .config import REPO_ROOT


def repo_relative(name):
    """A path inside this repository as a path relative to it; anything else (a Hub id, a path
    elsewhere, None) as it is."""
    if name and Path(name).is_absolute() and Path(name).is_relative_to(REPO_ROOT):
        return Path(name).relative_to(REPO_ROOT).as_posix()
    return None if name is None else str(name)


@contextlib.contextmanager
def new_folder(final: str | Path) -> Iterator[Path]:
    """`with new_folder(path) as work:` fill `work`; on success it replaces `path` (renames are
    atomic on one file system: the old folder is moved aside first, deleted once the new one is in
    place); on an error the half-written `work` is removed and `path` is left as it was."""
    final = Path(final)
    work, old = final.with_name(f".{final.name}.partial"), final.with_name(f".{final.name}.old")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    work.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file aside, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}.partial")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)
    return path
