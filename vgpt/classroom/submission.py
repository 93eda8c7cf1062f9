"""Grade one student's notebook: run the grading notebook in its own process and read each checker.

`grading_notebook` builds the notebook (the teacher's cells, the
student's exercise cells, a probe before each checker); `run_isolated` runs it
in a fresh kernel, started by a process of its own (`kernel_run`), in a new
temporary folder that holds a copy of the source folder's support files (never
its notebooks or solutions), with a per-notebook time limit. Whatever happens
there, a hang, a crash, a deleted folder, the grader gets back the cells that
finished and why the rest did not run; `verdicts` turns that into one row per
checker.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..paths import REPO_ROOT
from .exercise_cells import CHECKER, EXERCISE, LEFT_OUT, Check, function_name, grade_id, tags

KERNEL = "vgpt-grader"
GRACE = 30  # seconds past kernel start + time limit before the grader kills the run's processes itself


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


def probe_source(function: str) -> str:
    """A cell that reports whether the function exists when its checker runs, and whose module it is."""
    return (
        f"print(__import__('json').dumps({{'defined': {function!r} in globals(), "
        f"'module': str(getattr(globals().get({function!r}), '__module__', None) or '')}}))"
    )


def grading_notebook(source, student):
    """The source notebook with the student's exercise cells (by grade_id) and a probe before each checker.

    Returns the notebook, the role of each cell index (for messages), where each
    checker's probe and checker cells are, and the exercise ids the student lacks.
    """
    theirs = {}
    for cell in student.cells if student is not None else []:
        if cell.cell_type == "code" and grade_id(cell):
            theirs.setdefault(grade_id(cell), cell.source)
    nb = nbformat.v4.new_notebook(metadata=source.metadata)
    roles, where, missing, exercise = {}, {}, set(), None
    for cell in source.cells:
        cell = nbformat.from_dict(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if EXERCISE in tags(cell):
            exercise = function_name(cell, "source")
            if grade_id(cell) in theirs:
                cell.source = theirs[grade_id(cell)]
            else:  # never the teacher's solution
                missing.add(grade_id(cell))
                cell.source = f"# {grade_id(cell)}: no such exercise cell in the submission"
            roles[len(nb.cells)] = f"the exercise cell of {exercise}"
        elif CHECKER in tags(cell):
            nb.cells.append(nbformat.v4.new_code_cell(probe_source(exercise)))
            roles[len(nb.cells) - 1] = roles[len(nb.cells)] = f"the checker of {exercise}"
            where[grade_id(cell)] = (len(nb.cells) - 1, len(nb.cells))
        nb.cells.append(cell)
    for index, cell in enumerate(nb.cells):  # nbformat 4.5 wants an id on every cell; older sources have none
        cell.setdefault("id", f"grading-{index}")
    return nb, roles, where, missing


def _copy_support(source: Path | None, work: Path) -> None:
    """The source folder minus notebooks, solutions and caches: data files a notebook may open by relative path."""
    if source is None:
        work.mkdir()
        return
    shutil.copytree(
        source, work, ignore=lambda folder, names: [n for n in names if n in LEFT_OUT or n.endswith(".ipynb")]
    )


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_isolated(nb, support: Path | None, timeout: float, startup_timeout: float) -> dict:
    """Run `nb` with cwd = a fresh copy of `support`; return {"events": [...], "killed": bool, "log": str}.

    The run gets `startup_timeout` to start its kernel and `timeout` for its
    cells; past both plus GRACE, its process and the kernel's process group
    (with anything the submission started there) are killed.
    """
    with tempfile.TemporaryDirectory(prefix="vgpt-grade-", ignore_cleanup_errors=True) as tmp:
        tmp = Path(tmp)
        work, report, log = tmp / "work", tmp / "report.jsonl", tmp / "log.txt"
        _copy_support(support, work)
        nbformat.write(nb, tmp / "grading.ipynb")
        spec = tmp / "jupyter" / "kernels" / KERNEL
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "vgpt grader",
                    "language": "python",
                }
            )
        )
        # no IPython startup files or kernel connection files shared between runs
        # what the notebooks write (vgpt.course.notebook.RUNS) goes to the run's own folder too
        env = dict(
            os.environ,
            IPYTHONDIR=str(tmp / "ipython"),
            JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
            VGPT_RUNS=str(work / "runs"),
        )
        # the kernel imports this copy of vgpt (REPO_ROOT is the folder that holds it)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(tmp / "jupyter"), env.get("JUPYTER_PATH")) if p)
        command = [
            sys.executable,
            "-m",
            "vgpt.classroom.kernel_run",
            str(tmp / "grading.ipynb"),
            str(work),
            str(report),
            "--timeout",
            str(timeout),
            "--startup-timeout",
            str(startup_timeout),
            "--kernel",
            KERNEL,
        ]
        with open(log, "wb") as sink:
            proc = subprocess.Popen(
                command,
                cwd=work,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=startup_timeout + timeout + GRACE)
                killed = False
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                killed = True
        events = []
        if report.is_file():
            for line in report.read_text(errors="replace").splitlines():
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # the last line of a killed run may be cut short
        for event in events:
            if event.get("event") == "kernel":
                _kill_group(int(event["pid"]))  # the kernel has its own process group; anything left in it goes
        text = log.read_text(errors="replace") if log.is_file() else ""
        return {"events": events, "killed": killed, "log": text[-2000:], "limit": startup_timeout + timeout + GRACE}


def _message(text: str, error: dict | None) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    said = " / ".join(lines[-3:])
    if error is None:
        return said or "passed"
    if error["ename"] == "AssertionError" and not error["evalue"] and said:
        return said
    return " ".join(p for p in (said, f"{error['ename']}: {error['evalue']}".rstrip(": ")) if p)


def _stopped(run: dict, roles: dict, timeout: float) -> str:
    """Why the cells after the last reported one never ran."""
    last = next((e for e in reversed(run["events"]) if e.get("event") in ("timeout", "died", "nostart")), {})
    kind, where = last.get("event"), roles.get(last.get("index"), f"cell {last.get('index')}")
    if kind == "timeout":
        return f"time limit: the notebook ran past {timeout:g} s (stopped in {where})"
    if kind == "died":
        return f"kernel died in {where} (os._exit, a crash, or out of memory)"
    if kind == "nostart":
        return f"kernel did not start: {last.get('reason')}"
    if run["killed"]:
        return f"time limit: the grader stopped the run after {run['limit']:g} s"
    said = [line for line in run["log"].splitlines() if line.strip() and "WARNING" not in line]
    return f"grader error: the run ended without a report ({said[-1] if said else 'and said nothing'})"


def verdicts(
    student: str, notebook: str, checks: list[Check], run: dict, roles: dict, where: dict, missing: set, timeout: float
) -> list[Row]:
    """One row per checker: passed only if the checker cell ran without error on the student's own function."""
    cells = {e["index"]: e for e in run["events"] if e.get("event") == "cell"}
    rows = []
    for check in checks:
        probe_at, check_at = where[check.grade_id]
        passed = False
        if check.exercise_id in missing:
            message = f"never defined: the notebook has no exercise cell {check.exercise_id!r}"
        elif check_at not in cells:
            message = _stopped(run, roles, timeout)
        else:
            try:
                probe = json.loads(cells[probe_at]["text"].strip().splitlines()[-1])
            except (KeyError, IndexError, json.JSONDecodeError):
                probe = None
            if not isinstance(probe, dict):  # the probe's print was tampered with: leave it to the checker
                probe = {"defined": True, "module": ""}
            cell = cells[check_at]
            if str(probe.get("module")).split(".")[0] == "vgpt":
                message = (
                    f"refused: {check.exercise} is the package's own implementation ({probe['module']}), "
                    f"not the student's"
                )
            elif not probe.get("defined", True):
                message = f"never defined: NameError, {check.exercise} does not exist when its checker runs"
            else:
                passed = cell["error"] is None
                message = _message(cell["text"], cell["error"])
        rows.append(
            Row(student, notebook, check.exercise, passed, check.points if passed else 0.0, check.points, message)
        )
    return rows


def grade_notebook(
    student: str,
    name: str,
    source_nb,
    checks: list[Check],
    student_nb,
    support: Path | None,
    timeout: float,
    startup_timeout: float,
) -> list[Row]:
    """Build, run and read one (student, notebook)."""
    nb, roles, where, missing = grading_notebook(source_nb, student_nb)
    run = run_isolated(nb, support, timeout, startup_timeout)
    if any(e.get("event") == "nostart" for e in run["events"]):  # a kernel that never answered gets a second try
        run = run_isolated(nb, support, timeout, startup_timeout)
    return verdicts(student, name, checks, run, roles, where, missing, timeout)
