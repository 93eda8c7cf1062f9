"""Hand the notebooks out to a class (`release`) and grade what comes back (`grade`).

`release` writes the student version of the notebooks folder: each exercise's
solution replaced by a stub that raises NotImplementedError, exercise and
checker outputs cleared, `solutions/` left out (see `exercise_cells`).

`grade` runs every (student, notebook) in its own process, temporary folder and
fresh kernel, with a time limit, and writes one row per checker: a submission
that hangs, kills its kernel, deletes its folder, never defines the function or
hands back the package's own implementation gets 0 and the reason, and the
others are graded as if it were not there (see `submission`). This isolates
students from each other and from crashes. It is NOT a sandbox: a hostile
submission runs with the grading user's rights and can read or change whatever
that user can. Grade untrusted code in a throwaway container or account.
"""

from __future__ import annotations

import csv
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from ..paths import REPO_ROOT, swap_into_place
from .exercise_cells import LEFT_OUT, ClassroomError, checks_of, grade_id, read_notebook, release_notebook
from .submission import Row, grade_notebook

CSV_COLUMNS = ("student", "notebook", "exercise", "passed", "points", "message")


def default_source() -> Path:
    """The teacher's notebooks: `notebooks/` of the repository this package runs from."""
    source = REPO_ROOT / "notebooks"
    if not source.is_dir():
        raise ClassroomError(f"no notebooks folder at {source}; pass the teacher's notebooks with --source DIR")
    return source


def _notebooks(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if not set(p.relative_to(folder).parts) & set(LEFT_OUT))


def release(source: Path, out: Path) -> list[Path]:
    """Write the student version of `source` (a notebooks folder) into the new folder `out`.

    Every notebook is released in memory first, so a bad one leaves nothing
    written; then the folder appears whole (written aside, renamed into place).
    `solutions/`, checkpoints and caches are left out; everything else is copied.
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
        for path in _notebooks(source)
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(source, work, dirs_exist_ok=True, ignore=lambda _, names: [n for n in names if n in LEFT_OUT])
        for relative, nb in released.items():
            nbformat.write(nb, work / relative)
        if out.exists():
            out.rmdir()
        swap_into_place(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return [out / relative for relative in released]


def submissions(paths: list[Path], stems: set[str]) -> dict[str, list[Path]]:
    """Student name -> notebooks. A folder is one student (its name); a lone notebook is the student named by
    its file, or by its folder when the file keeps the source notebook's name (`alice/03_prefix.ipynb`)."""
    found: dict[str, list[Path]] = {}
    for path in map(Path, paths):
        if path.is_dir():
            student, notebooks = path.resolve().name, _notebooks(path)
        elif path.is_file() and path.suffix == ".ipynb":
            student, notebooks = (path.resolve().parent.name if path.stem in stems else path.stem), [path]
        else:
            raise ClassroomError(f"{path}: not a folder of notebooks or an .ipynb file")
        if student in found:
            raise ClassroomError(f"{path}: a second submission named {student!r}; give each student one folder")
        found[student] = notebooks
    return found


def _match(stem: str, exercise_ids: set[str], notebooks: dict[Path, object]):
    """The student's notebook for a source notebook: same file name, else one holding its exercise cells."""
    named = [p for p in notebooks if p.name == f"{stem}.ipynb"]
    holding = [
        p
        for p, nb in notebooks.items()
        if not isinstance(nb, ClassroomError) and exercise_ids & {grade_id(c) for c in nb.cells}
    ]
    pick = (named or holding)[:1]
    return notebooks[pick[0]] if pick else None


def grade(
    paths: list[Path],
    source: Path | None = None,
    timeout: float = 300,
    startup_timeout: float = 180,
    jobs: int = 1,
    progress=None,
) -> list[Row]:
    """Grade each submission against the teacher's `source` notebooks; one Row per (student, notebook, checker).

    Source notebooks that no submission contains are left out (hand out one
    notebook a week, grade that one). Runs go `jobs` at a time.
    """
    source = Path(source) if source is not None else default_source()
    if not source.is_dir():
        raise ClassroomError(f"{source}: no such notebooks folder")
    sources = {}
    for path in sorted(source.glob("*.ipynb")):
        nb = read_notebook(path)
        if checks := checks_of(nb, path.name):
            sources[path.stem] = (nb, checks)
    if not sources:
        raise ClassroomError(f"{source}: no notebook with checker cells (cells tagged 'checker')")
    tasks = []
    for student, notebooks in submissions(paths, set(sources)).items():
        read = {}
        for path in notebooks:
            try:
                read[path] = read_notebook(path)
            except ClassroomError as err:
                read[path] = err
        for stem, (_, checks) in sources.items():
            tasks.append((student, stem, _match(stem, {c.exercise_id for c in checks}, read)))
    handed_in = {stem for _, stem, theirs in tasks if theirs is not None}

    def one(task) -> list[Row]:
        student, stem, theirs = task
        nb, checks = sources[stem]
        start = time.monotonic()
        if isinstance(theirs, ClassroomError) or theirs is None:
            reason = f"notebook unreadable: {theirs}" if theirs is not None else "notebook not submitted"
            rows = [Row(student, stem, c.exercise, False, 0.0, c.points, reason) for c in checks]
        else:
            rows = grade_notebook(student, stem, nb, checks, theirs, source, timeout, startup_timeout)
        if progress:
            progress(
                f"{student} {stem}: {sum(r.points for r in rows):g}/{sum(r.max_points for r in rows):g} "
                f"({time.monotonic() - start:.0f} s)"
            )
        return rows

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # threads only wait: each run is a process
        graded = pool.map(one, [t for t in tasks if t[1] in handed_in])
        return [row for rows in graded for row in rows]


def write_csv(rows: list[Row], path: Path) -> None:
    """grades.csv, written aside and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with open(part, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow([r.student, r.notebook, r.exercise, int(r.passed), f"{r.points:g}", r.message])
    os.replace(part, path)


def summary(rows: list[Row]) -> str:
    """Students x notebooks, points earned / possible, and a total column."""
    students = list(dict.fromkeys(r.student for r in rows))
    notebooks = list(dict.fromkeys(r.notebook for r in rows))
    earned, possible = {}, {}
    for r in rows:
        for key in ((r.student, r.notebook), (r.student, "total")):
            earned[key] = earned.get(key, 0.0) + r.points
            possible[key] = possible.get(key, 0.0) + r.max_points
    columns = notebooks + ["total"]
    table = [["student"] + columns] + [
        [s] + [f"{earned[s, n]:g}/{possible[s, n]:g}" if (s, n) in earned else "-" for n in columns] for s in students
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table)


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
