"""What a student handed in: whose it is, which notebook is which, which cell is each exercise, and what
the grader refuses before running anything.

Notebooks come as students download them: from Jupyter, or from Colab and
Drive ("Download .ipynb"), where the file may be renamed ("Copy of 03_...")
and carry Colab's metadata, cells without ids, an older nbformat minor
version, outputs. A student's notebook is matched to the teacher's by file
name, else by the exercise grade_ids it holds, else by a name that contains
the teacher's; an exercise cell by its grade_id, else (metadata lost on the
way) by the last code cell that defines the function at its top level.

Only exercise cells are graded, each alone: nothing else a student wrote
runs. A cell that does not parse, or that imports vgpt (the package ships
every stage's implementation; the exercise is to write it), is refused here
with the reason, and never reaches the sandbox.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .exercise_cells import LEFT_OUT, Check, ClassroomError, defines, grade_id, read_notebook, source_of


@dataclass
class Row:
    """One line of grades.csv: one checker of one notebook of one student."""

    student: str
    notebook: str
    exercise: str
    passed: bool
    points: float  # earned
    max_points: float
    message: str


def notebooks_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.ipynb") if not set(p.relative_to(folder).parts) & set(LEFT_OUT))


def submissions(paths: list[Path], stems: set[str]) -> dict[str, list[Path]]:
    """Student name -> notebooks. A folder is one student (its name); a lone notebook is the student named by
    its file, or by its folder when the file keeps the source notebook's name (`alice/03_prefix.ipynb`)."""
    found: dict[str, list[Path]] = {}
    for path in map(Path, paths):
        if path.is_dir():
            student, notebooks = path.resolve().name, notebooks_in(path)
        elif path.is_file() and path.suffix == ".ipynb":
            student, notebooks = (path.resolve().parent.name if path.stem in stems else path.stem), [path]
        else:
            raise ClassroomError(f"{path}: not a folder of notebooks or an .ipynb file")
        if student in found:
            raise ClassroomError(f"{path}: a second submission named {student!r}; give each student one folder")
        found[student] = notebooks
    return found


def read_all(paths: list[Path]) -> dict[Path, object]:
    """Each notebook, or the ClassroomError that says why it is unreadable."""
    read = {}
    for path in paths:
        try:
            read[path] = read_notebook(path)
        except ClassroomError as err:
            read[path] = err
    return read


def match(stem: str, checks: list[Check], notebooks: dict[Path, object]):
    """The student's notebook for a source notebook (or the error reading it, or None): the same file name,
    else one holding its exercise cells' grade_ids, else one whose name contains the source's."""
    ids = {c.exercise_id for c in checks}
    readable = {p: nb for p, nb in notebooks.items() if not isinstance(nb, ClassroomError)}
    for rule in (
        lambda p, nb: p.name == f"{stem}.ipynb",
        lambda p, nb: nb is not None and bool(ids & {grade_id(c) for c in nb.cells}),
        lambda p, nb: stem in p.stem,
    ):
        picked = [p for p in notebooks if rule(p, readable.get(p))]
        if picked:
            return notebooks[picked[0]]
    return None


def exercise_cell(nb, check: Check) -> str | None:
    """The source of the student's exercise cell for `check`: by grade_id, else the last code cell that
    defines the function (Colab or an editor may drop cell metadata)."""
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and grade_id(cell) == check.exercise_id:
            return source_of(cell)
    defining = [c for c in nb.cells if defines(c, check.exercise)]
    return source_of(defining[-1]) if defining else None


def refusal(source: str, function: str) -> str | None:
    """Why an exercise cell is not run at all, or None: it does not parse, or it imports vgpt."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        line = (err.text or "").strip()
        hint = " (an IPython magic or shell line: exercise cells are plain Python)" if line[:1] in "%!" else ""
        return f"refused: the exercise cell does not parse: {err.msg} on line {err.lineno}{hint}"
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name == "vgpt" or name.startswith("vgpt."):
                return (
                    f"refused: the exercise cell imports vgpt (line {node.lineno}: {ast.unparse(node)}); the package "
                    f"holds every stage's implementation, and the exercise is to write {function} yourself"
                )
    return None
