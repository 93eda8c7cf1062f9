"""Exercise and checker cells: how the notebooks mark them, and the student version of a notebook.

The notebooks mark their exercises the nbgrader way, so one source yields the
student release, the solutions and the grading, with or without nbgrader:

- an EXERCISE cell (tag `exercise`, nbgrader `solution: true`, grade_id
  `<notebook>-<function>`) defines one function whose body, the solution,
  sits between `### BEGIN SOLUTION` and `### END SOLUTION`;
- its CHECKER cell follows it (tag `checker`, nbgrader `grade: true`,
  `locked: true`, `points`, grade_id `<notebook>-check-<function>`) and
  asserts a checker: `assert check_patchify(patchify)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..errors import UserError

EXERCISE, CHECKER = "exercise", "checker"
MARKER = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*(?P<kind>BEGIN|END) SOLUTION[ \t]*$")
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's own stub
LEFT_OUT = ("solutions", ".ipynb_checkpoints", "__pycache__", ".pytest_cache")  # never released or copied


class ClassroomError(UserError):
    """Bad input a teacher can fix: names the notebook, the cell and the problem."""


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def function_name(cell, where: str) -> str:
    """The name the exercise cell defines: its first top-level `def`."""
    found = re.search(r"^def\s+([A-Za-z_]\w*)\s*\(", cell.source, re.MULTILINE)
    if not found:
        raise ClassroomError(f"{where}: the exercise cell defines no function (no top-level `def name(...)`)")
    return found.group(1)


def read_notebook(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 (not JSON, not a notebook, unreadable: all one to a teacher)
        raise ClassroomError(f"{path}: not a readable notebook ({err.__class__.__name__}: {err})") from None


# ------------------------------------------------------------------ release


def strip_solutions(source: str, where: str) -> str:
    """Each `### BEGIN SOLUTION` ... `### END SOLUTION` block -> the stub, at the marker's indentation."""
    out, opened = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = MARKER.match(line)
        if marker is None:
            if opened is None:
                out.append(line)
        elif marker["kind"] == "BEGIN":
            if opened is not None:
                raise ClassroomError(
                    f"{where}: BEGIN SOLUTION on line {number} inside the block opened on line "
                    f"{opened} (unbalanced solution markers)"
                )
            opened = number
            out.extend(marker["indent"] + stub for stub in STUB)
        else:
            if opened is None:
                raise ClassroomError(
                    f"{where}: END SOLUTION on line {number} without a BEGIN SOLUTION before it "
                    f"(unbalanced solution markers)"
                )
            opened = None
    if opened is not None:
        raise ClassroomError(f"{where}: BEGIN SOLUTION on line {opened} is never closed (unbalanced solution markers)")
    return "\n".join(out)


def release_notebook(nb, name: str):
    """The student version of one notebook: solutions stubbed, exercise and checker outputs cleared."""
    checks_of(nb, name)  # a notebook the grader would refuse is not handed out either
    nb = nbformat.from_dict(nb)  # a copy
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}" + (f" ({grade_id(cell)})" if grade_id(cell) else "")
        has_marker = any(MARKER.match(line) for line in cell.source.splitlines())
        if EXERCISE in tags(cell):
            if cell.cell_type != "code" or not has_marker:
                raise ClassroomError(
                    f"{where}: an exercise cell must be a code cell with its solution between "
                    f"### BEGIN SOLUTION and ### END SOLUTION"
                )
            cell.source = strip_solutions(cell.source, where)
        elif has_marker:
            raise ClassroomError(
                f"{where}: solution markers in a cell not tagged 'exercise' (it would be released with its solution)"
            )
        if cell.cell_type == "code" and {EXERCISE, CHECKER} & set(tags(cell)):
            cell.outputs, cell.execution_count = [], None
        if re.search(r"(BEGIN|END) SOLUTION", cell.source):
            raise ClassroomError(
                f"{where}: 'BEGIN/END SOLUTION' text left after release; write the markers "
                f"alone on their lines as `### BEGIN SOLUTION`"
            )
    nbformat.validate(nb)
    return nb


# ------------------------------------------------------------------ grading


@dataclass(frozen=True)
class Check:
    """One checker cell of a source notebook and the exercise it grades."""

    grade_id: str  # the checker's
    exercise: str  # the function's name
    exercise_id: str  # the exercise cell's grade_id
    points: float


def checks_of(nb, name: str) -> list[Check]:
    """The checker cells of a source notebook, each tied to the exercise cell before it."""
    found, exercise, seen = [], None, set()
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}"
        if not {EXERCISE, CHECKER} & set(tags(cell)):
            continue
        if not grade_id(cell):
            raise ClassroomError(
                f"{where}: this {'/'.join(set(tags(cell)) & {EXERCISE, CHECKER})} cell needs an nbgrader grade_id"
            )
        if grade_id(cell) in seen:
            raise ClassroomError(f"{where}: grade_id {grade_id(cell)!r} is used twice")
        seen.add(grade_id(cell))
        if EXERCISE in tags(cell):
            exercise = (function_name(cell, where), grade_id(cell))
        else:
            if exercise is None:
                raise ClassroomError(f"{where}: checker {grade_id(cell)!r} has no exercise cell before it")
            if not re.search(r"\bassert\b", cell.source):
                raise ClassroomError(f"{where}: checker {grade_id(cell)!r} does not assert, so it could never fail")
            points = float(cell.metadata.get("nbgrader", {}).get("points", 1))
            found.append(Check(grade_id(cell), exercise[0], exercise[1], points))
    return found
