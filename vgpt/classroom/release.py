"""Hand the notebooks out to a class: the student version of a notebooks folder.

`release` writes every notebook with each exercise's solution replaced by a
stub that raises NotImplementedError, exercise, checker and check-my-work
outputs cleared, `solutions/` left out (see `exercise_cells`). Before it
writes anything it grades every worked solution alone, the way the grader
will grade a student's cell: a solution that needs another cell of its
notebook (an import, a helper) fails there, and the release names it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from ..files import new_folder
from . import sandbox
from .exercise_cells import LEFT_OUT, ClassroomError, read_notebook, release_notebook
from .grade import grade_solutions
from .submission import notebooks_in


def release(source: Path, out: Path) -> list[Path]:
    """Write the student version of `source` (a notebooks folder) into the new folder `out`.

    Every notebook is released in memory and every worked solution graded
    first, so a bad one leaves nothing written; then the folder appears whole
    (written aside, renamed into place). `solutions/`, checkpoints and caches
    are left out; everything else is copied.
    """
    source, out = Path(source).resolve(), Path(out).resolve()
    if not source.is_dir():
        raise ClassroomError(f"{source}: no such notebooks folder")
    if out == source or source in out.parents or out in source.parents:
        raise ClassroomError(f"{out}: the release folder must lie outside {source}, and not contain it")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ClassroomError(f"{out} exists and is not an empty folder; choose a new one or remove it")
    released = {
        path.relative_to(source): release_notebook(read_notebook(path), str(path.relative_to(source)))
        for path in notebooks_in(source)
    }
    check_worked_solutions(source)
    with new_folder(out) as work:
        shutil.copytree(source, work, dirs_exist_ok=True, ignore=lambda _, names: [n for n in names if n in LEFT_OUT])
        for relative, nb in released.items():
            nbformat.write(nb, work / relative)
    return [out / relative for relative in released]


def check_worked_solutions(source: Path) -> None:
    """Refuse a release whose worked solutions do not pass when graded alone (in the sandbox where there is
    one; they are the teacher's own code, so a plain process where there is none)."""
    if not any(True for _ in Path(source).glob("*.ipynb")):
        return
    try:
        graded = grade_solutions(source, isolated=sandbox.probe() is None)
    except ClassroomError as err:
        if "no notebook with checker cells" in str(err):
            return
        raise
    for check, verdict in graded:
        if not verdict.passed:
            raise ClassroomError(
                f"{check.where} ({check.exercise_id}): the worked solution does not pass when graded alone, as a "
                f"student's cell will be: {verdict.message}. An exercise cell must stand alone: import or define "
                f"what it uses in the cell itself"
            )
