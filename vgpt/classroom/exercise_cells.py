"""Exercise and checker cells: how the notebooks mark them, and the student version of a notebook.

The notebooks mark their exercises the nbgrader way, so one source yields the
student release, the solutions and the grading, with or without nbgrader:

- an EXERCISE cell (tag `exercise`, nbgrader `solution: true`, grade_id
  `<notebook>-<function>`) defines one function whose body, the solution,
  sits between `### BEGIN SOLUTION` and `### END SOLUTION`. It stands alone:
  apart from the imports at its top it uses nothing defined elsewhere in the
  notebook, because the grader runs it alone (the release checks this by
  grading every worked solution);
- its CHECKER cell follows it (tag `checker`, nbgrader `grade: true`,
  `locked: true`, `points`, grade_id `<notebook>-check-<function>`), imports
  a checker and asserts it on the function:
  `from vgpt.course.exercises import check_patchify` / `assert check_patchify(patchify)`;
- the CHECK_MY_WORK cell (tag `check-my-work`), last in the notebook, runs
  every checker of the notebook and prints a table;
- a PROJECT's checker cell (tags `checker` and `project`, nbgrader as a
  checker's) needs no exercise cell of its own: its checker's parts are
  exercises of other notebooks (`Checker.parts`), which the grader takes from
  the student's notebooks of them. It asserts the checker on a name:
  `from vgpt.course.exercises.projects import check_my_captioner` /
  `assert check_my_captioner(my_parts)`.

Markers are code: a markdown cell may quote them, a code cell's marker line is a marker.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..config import UserError

EXERCISE, CHECKER, CHECK_MY_WORK, PROJECT = "exercise", "checker", "check-my-work", "project"
MARKER = re.compile(r"^(?P<indent>[ \t]*)#+[ \t]*(?P<kind>BEGIN|END) SOLUTION[ \t]*$")
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's own stub
LEFT_OUT = ("solutions", ".ipynb_checkpoints", "__pycache__", ".pytest_cache")  # never released or copied


class ClassroomError(UserError):
    """Bad input a teacher can fix: names the notebook, the cell and the problem."""


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def source_of(cell) -> str:
    """A cell's source as one string (nbformat keeps a list of lines in files, as Colab writes them)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def function_name(cell, where: str) -> str:
    """The name the exercise cell defines: its first top-level `def`."""
    found = re.search(r"^def\s+([A-Za-z_]\w*)\s*\(", source_of(cell), re.MULTILINE)
    if not found:
        raise ClassroomError(f"{where}: the exercise cell defines no function (no top-level `def name(...)`)")
    return found.group(1)


def defines(cell, function: str) -> bool:
    """Whether a code cell defines `function` at its top level (`def function(`)."""
    found = re.search(rf"^def\s+{re.escape(function)}\s*\(", source_of(cell), re.MULTILINE)
    return cell.get("cell_type") == "code" and found is not None


def read_notebook(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # noqa: BLE001 (not JSON, not a notebook, unreadable: all one to a teacher)
        raise ClassroomError(f"{path}: not a readable notebook ({err.__class__.__name__}: {err})") from None


# ------------------------------------------------------------------ release


def strip_solutions(source: str, where: str, keep: bool = False) -> str:
    """Each `### BEGIN SOLUTION` ... `### END SOLUTION` block -> the stub, at the marker's indentation;
    with `keep`, the block's own lines instead (the worked solution, markers dropped)."""
    out, opened = [], None
    for number, line in enumerate(source.splitlines(), start=1):
        marker = MARKER.match(line)
        if marker is None:
            if opened is None or keep:
                out.append(line)
        elif marker["kind"] == "BEGIN":
            if opened is not None:
                raise ClassroomError(
                    f"{where}: BEGIN SOLUTION on line {number} inside the block opened on line "
                    f"{opened} (unbalanced solution markers)"
                )
            opened = number
            if not keep:
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


def worked_solution(cell, where: str) -> str:
    """The exercise cell as the teacher wrote it, markers dropped: what the release grades."""
    return strip_solutions(source_of(cell), where, keep=True)


def release_notebook(nb, name: str):
    """The student version of one notebook: solutions stubbed, exercise, checker and check-my-work outputs
    cleared."""
    checks_of(nb, name)  # a notebook the grader would refuse is not handed out either
    nb = nbformat.from_dict(nb)  # a copy
    for index, cell in enumerate(nb.cells):
        where = f"{name}, cell {index}" + (f" ({grade_id(cell)})" if grade_id(cell) else "")
        if cell.cell_type != "code":
            if EXERCISE in tags(cell):
                raise ClassroomError(f"{where}: an exercise cell must be a code cell")
            continue  # prose may quote the markers
        has_marker = any(MARKER.match(line) for line in cell.source.splitlines())
        if EXERCISE in tags(cell):
            if not has_marker:
                raise ClassroomError(
                    f"{where}: an exercise cell must be a code cell with its solution between "
                    f"### BEGIN SOLUTION and ### END SOLUTION"
                )
            cell.source = strip_solutions(cell.source, where)
            if re.search(r"(BEGIN|END) SOLUTION", cell.source):
                raise ClassroomError(
                    f"{where}: 'BEGIN/END SOLUTION' text left after release; write the markers "
                    f"alone on their lines as `### BEGIN SOLUTION`"
                )
        elif has_marker:
            raise ClassroomError(
                f"{where}: solution markers in a cell not tagged 'exercise' (it would be released with its solution)"
            )
        if {EXERCISE, CHECKER, CHECK_MY_WORK} & set(tags(cell)):
            cell.outputs, cell.execution_count = [], None
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
    module: str  # where the checker is imported from: `from MODULE import CHECKER`
    checker: str  # its name, `check_patchify`
    where: str  # "<notebook>, cell <index>": for the teacher's messages
    solution: str  # the worked solution (the exercise cell, markers dropped); never shown to a student
    project: bool = False  # a project's check: its parts are other notebooks' exercises (`Checker.parts`)


def checker_of(source: str, function: str | None, where: str, gid: str) -> tuple[str, str, str]:
    """(module, name, the name it is asserted on) of the checker a checker cell asserts on `function` (on
    any one name, for a project's cell: `function` None): the cell must be `from MODULE import check_NAME`
    and `assert check_NAME(function)`."""
    if not re.search(r"\bassert\b", source):
        raise ClassroomError(f"{where}: checker {gid!r} does not assert, so it could never fail")
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise ClassroomError(f"{where}: checker {gid!r} does not parse ({err.msg}, line {err.lineno})") from None
    imported = {a.asname or a.name: node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for a in node.names if node.module}  # fmt: skip
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and isinstance(node.test, ast.Call) and isinstance(node.test.func, ast.Name):
            name, args = node.test.func.id, node.test.args
            if len(args) == 1 and isinstance(args[0], ast.Name) and function in (None, args[0].id) and name in imported:
                return imported[name], name, args[0].id
    on = function or "the project's parts"
    raise ClassroomError(
        f"{where}: checker {gid!r} must import its checker and assert it on {on}: "
        f"`from MODULE import check_NAME` then `assert check_NAME({function or 'my_parts'})`"
    )


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
            solution = worked_solution(cell, f"{where} ({grade_id(cell)})")
            exercise = (function_name(cell, where), grade_id(cell), solution, where)
        elif PROJECT in tags(cell):
            module, checker, name = checker_of(source_of(cell), None, where, grade_id(cell))
            points = float(cell.metadata.get("nbgrader", {}).get("points", 1))
            found.append(Check(grade_id(cell), name, "", points, module, checker, where, "", project=True))
        else:
            if exercise is None:
                raise ClassroomError(f"{where}: checker {grade_id(cell)!r} has no exercise cell before it")
            module, checker, _ = checker_of(source_of(cell), exercise[0], where, grade_id(cell))
            points = float(cell.metadata.get("nbgrader", {}).get("points", 1))
            found.append(Check(grade_id(cell), exercise[0], exercise[1], points, module, checker, exercise[3],
                               exercise[2]))  # fmt: skip
    return found
