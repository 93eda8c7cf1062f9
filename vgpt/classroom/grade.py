"""Grade what comes back: every exercise cell run alone in a sandbox, judged by the grader.

For each student, one sandbox (`sandbox.py`) runs all of the student's
exercise cells, each in a process of its own (`runner.py`): the cell, then
the student's function on each case of its checker, inputs handed over as
data. What comes back is data too (`wire`); the grader judges it against the
answers it computed itself (`vgpt.course.exercises.grading.Checker.judge`),
so nothing the student's code does, print "Correct!", patch the checker or
the runner, exit early, can change a verdict: it can only change the data it
reports, which then has to be right.

A sandbox that dies or goes silent (the student's code killed the runner,
hung past the time) costs the exercise it was in: the grader starts a fresh
one for the exercises after it. One row per (student, notebook, exercise).
"""

from __future__ import annotations

import base64
import csv
import importlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import REPO_ROOT
from ..course.exercises import calls, wire
from ..course.exercises.grading import Checker, Verdict
from . import sandbox
from .exercise_cells import Check, ClassroomError, checks_of, defines, read_notebook, source_of
from .sandbox import Limits
from .submission import Row, exercise_cell, match, read_all, refusal, submissions

CSV_COLUMNS = ("student", "notebook", "exercise", "passed", "points", "message")
GRACE = 15  # seconds the grader waits past the runner's own limits before it stops a silent sandbox
NO_SANDBOX_WARNING = (
    "WARNING: grading WITHOUT a sandbox (--no-sandbox): each student's code runs as you, with your files, "
    "your network and your processes in reach; it can read the worked solutions and the other submissions "
    "and change the grades. Use it only for code you trust."
)


def default_source() -> Path:
    """The teacher's notebooks: `notebooks/` of the repository this package runs from."""
    source = REPO_ROOT / "notebooks"
    if not source.is_dir():
        raise ClassroomError(f"no notebooks folder at {source}; pass the teacher's notebooks with --source DIR")
    return source


@dataclass(frozen=True)
class Task:
    """One exercise cell of one student, to run and judge."""

    student: str
    notebook: str
    check: Check
    source: str  # the student's exercise cell
    key: str  # the checker's, in the inputs
    gate: str | None = None  # set for a check a project requires first: the project's key (no row of its own)
    part: str | None = None  # that check's function, defined in the same cell (a capstone's cell defines them all)
    cells: dict | None = None  # a project of parts: part -> its exercise cell; the function is {part: function}

    @property
    def function(self) -> str:
        return self.part or self.check.exercise


def load_checker(check: Check, folder: Path) -> Checker:
    """The Checker a checker cell names, imported here in the grader (the source folder first on the path,
    for a teacher's own checker module beside the notebooks)."""
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module(check.module)
    except Exception as err:  # noqa: BLE001 (a teacher's module may fail any way)
        raise ClassroomError(f"{check.where}: the checker's module {check.module} does not import "
                             f"({type(err).__name__}: {err})") from None  # fmt: skip
    finally:
        sys.path.remove(str(folder))
    checker = getattr(module, check.checker, None)
    if not isinstance(checker, Checker):
        raise ClassroomError(
            f"{check.where}: {check.checker} in {check.module} is not a vgpt Checker (cases, a call and a judge: "
            f"vgpt/course/exercises/grading.py), so the grader cannot judge it outside the student's process"
        )
    unknown = {case.call for case in checker.cases()} - set(calls.CALLS)
    if unknown:
        raise ClassroomError(f"{check.where}: {check.checker} calls the function with {', '.join(sorted(unknown))}, "
                             f"which the sandbox does not have (vgpt/course/exercises/calls.py)")  # fmt: skip
    return checker


def source_notebooks(source: Path) -> dict[str, tuple[object, list[Check]]]:
    """Stem -> (notebook, checks) for every notebook of `source` with checker cells."""
    found = {}
    for path in sorted(Path(source).glob("*.ipynb")):
        nb = read_notebook(path)
        if checks := checks_of(nb, path.name):
            found[path.stem] = (nb, checks)
    if not found:
        raise ClassroomError(f"{source}: no notebook with checker cells (cells tagged 'checker')")
    return found


class Grading:
    """One grading: the checkers and their inputs, the runner view, the sandboxes' slots."""

    def __init__(self, folder: Path, checkers: dict[str, Checker], isolated: bool, limits: Limits, hide: list[Path]):
        self.folder, self.checkers, self.isolated, self.limits, self.hide = folder, checkers, isolated, limits, hide
        for sub in ("inputs", "jobs"):
            (folder / sub).mkdir()
        self.views = {view: sandbox.write_view(folder / f"view-{view}", view) for view in ("exercises", "package")}
        inputs = {key: [[c.call, c.args, c.kwargs] for c in checker.cases()] for key, checker in checkers.items()}
        (folder / "inputs" / "inputs.bin").write_bytes(wire.dumps(inputs))
        sandbox.readable(folder)
        self.slots: queue.Queue[int] = queue.Queue()
        self.count = 0
        self.lock = threading.Lock()

    def job_folder(self, exercises: list[dict]) -> Path:
        with self.lock:
            self.count += 1
            job = self.folder / "jobs" / str(self.count)
        job.mkdir()
        limits = self.limits.for_runner()
        (job / "job.json").write_text(json.dumps({"limits": limits, "isolated": self.isolated, "exercises": exercises}))
        sandbox.readable(job)
        return job

    def run_sandbox(self, exercises: list[dict], slot: int, view: str) -> tuple[list[dict], str]:
        """Run one sandbox on `exercises`: its events, and how it ended ("" when it said it was done)."""
        job, inputs, package = self.job_folder(exercises), self.folder / "inputs", view == "package"
        if self.isolated:
            uid = sandbox.slot_uid(slot)
            argv, env = sandbox.command(self.views[view], job, inputs, uid, self.hide, self.limits, package), None
        else:
            argv, env = sandbox.plain_command(self.views[view], job, inputs, package)
        log = job / "stderr.txt"
        with open(log, "wb") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
        lines: queue.Queue = queue.Queue()
        cap = self.limits.report * 4 // 3 + 4096  # a result's base64 and its JSON

        def read() -> None:
            total = 0
            for line in iter(lambda: proc.stdout.readline(cap + 1), b""):
                total += len(line)
                if len(line) > cap or not line.endswith(b"\n") or total > cap * (len(exercises) + 1):
                    lines.put(("oversized", None))
                    return
                lines.put(("line", line))
            lines.put(("end", None))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        events, ended = [], ""
        deadline = time.monotonic() + self.limits.startup
        try:
            while True:
                try:
                    what, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    ended = "silent"
                    break
                if what != "line":
                    ended = "oversized" if what == "oversized" else "ended"
                    break
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # not the runner's: nothing in the sandbox decides anything by writing here
                if not isinstance(event, dict):
                    continue
                events.append(event)
                if event.get("event") == "done":
                    break
                index = event.get("index")
                if event.get("event") == "start" and isinstance(index, int) and 0 <= index < len(exercises):
                    deadline = time.monotonic() + float(exercises[index]["seconds"]) + GRACE
                else:
                    deadline = time.monotonic() + GRACE
        finally:
            if proc.poll() is None:
                proc.kill()  # bwrap's child dies with it (--die-with-parent), and the sandbox's processes with that
            proc.wait()
            reader.join(timeout=5)
        if ended == "ended":
            said = log.read_bytes()[-2000:].decode(errors="replace").strip().splitlines()
            ended = f"ended (exit code {proc.returncode})" + (f": {said[-1]}" if said else "")
        shutil.rmtree(job, ignore_errors=True)
        return events, ended

    def run_student(self, tasks: list[Task]) -> list[tuple]:
        """One outcome per task: ("result", data), ("stopped", reason, detail), ("lost", how) or
        ("nostart", why): one sandbox for the exercises, one for the project checks if there are any."""
        outcomes: list[tuple | None] = [None] * len(tasks)
        slot = self.slots.get()
        try:
            for view in ("exercises", "package"):
                mine = [i for i, t in enumerate(tasks) if self.checkers[t.key].view == view]
                for i, outcome in zip(mine, self.run_view([tasks[i] for i in mine], slot, view) if mine else []):
                    outcomes[i] = outcome
        finally:
            self.slots.put(slot)
        return outcomes

    def seconds(self, task: Task) -> float:
        return self.checkers[task.key].seconds or self.limits.seconds

    def run_view(self, tasks: list[Task], slot: int, view: str) -> list[tuple]:
        """The outcomes of `tasks` in sandboxes of `view`: a sandbox that ends early costs the exercise it was
        in; the exercises after it get a fresh one."""
        outcomes: dict[int, tuple] = {}
        remaining, tries = list(range(len(tasks))), 0
        while remaining:
            exercises = [{"function": tasks[i].function, "source": tasks[i].source, "checker": tasks[i].key,
                          "seconds": self.seconds(tasks[i])} | ({"cells": tasks[i].cells} if tasks[i].cells else {})
                         for i in remaining]  # fmt: skip
            events, ended = self.run_sandbox(exercises, slot, view)
            ready, current = False, None
            for event in events:
                index = event.get("index")
                if event.get("event") == "ready":
                    ready = True
                if not isinstance(index, int) or not 0 <= index < len(remaining):
                    continue
                task = remaining[index]
                if event.get("event") == "start":
                    current = task
                elif event.get("event") == "result" and task not in outcomes:
                    outcomes[task] = ("result", event.get("blob"))
                elif event.get("event") == "stopped" and task not in outcomes:
                    outcomes[task] = ("stopped", str(event.get("reason")), str(event.get("detail")))
            if not ended:
                break
            before = len(outcomes)
            if current is not None and current not in outcomes:
                outcomes[current] = ("lost", ended)
            if len(outcomes) == before:  # no exercise reached: the sandbox itself failed; once more, then give up
                tries += 1
                if tries < 2:
                    continue
                for task in remaining:
                    outcomes.setdefault(task, ("nostart" if not ready else "lost", ended))
                break
            # the exercises after the last one reached run again, in a fresh sandbox
            last = max(t for t in remaining if t in outcomes)
            for task in remaining:
                if task < last:
                    outcomes.setdefault(task, ("lost", ended))
            remaining = [t for t in remaining if t > last]
        return [outcomes.get(i, ("lost", "no report")) for i in range(len(tasks))]


def _memory_error(value) -> bool:
    """A MemoryError, or torch's allocator failing, anywhere in a result."""
    if isinstance(value, wire.Raised):
        return value.is_a("MemoryError") or any(
            words in value.message for words in ("can't allocate memory", "Cannot allocate memory", "bad_alloc")
        )
    return isinstance(value, dict) and any(_memory_error(v) for v in value.values())


def _output_error(value) -> bool:
    """A write past RLIMIT_FSIZE: Python ignores SIGXFSZ, so the write fails with EFBIG instead."""
    if isinstance(value, wire.Raised):
        return value.is_a("OSError") and "File too large" in value.message
    return isinstance(value, dict) and any(_output_error(v) for v in value.values())


def _process_error(value) -> bool:
    """fork() or a new thread refused (EAGAIN): the process limit."""
    if isinstance(value, wire.Raised):
        return value.is_a("BlockingIOError") or "can't start new thread" in value.message
    return isinstance(value, dict) and any(_process_error(v) for v in value.values())


def verdict_of(task: Task, outcome: tuple, checker: Checker, limits: Limits) -> Verdict:
    """The verdict on one task from what its sandbox reported."""
    function, mb, seconds = task.function, limits.output >> 20, checker.seconds or limits.seconds
    kind = outcome[0]
    if kind == "stopped":
        reason, detail = outcome[1], outcome[2]
        return Verdict(False, {
            "time": f"time limit: {function} ran past {seconds:g} s (its cell and its cases together)",
            "cpu": f"CPU limit: {function} used more than {limits.cpu or seconds:g} s of CPU time ({detail})",
            "output": f"output limit: {function} wrote past {mb} MB to one file, what it prints included ({detail})",
            "report": f"output limit: {function}'s answers came to more than {limits.report >> 20} MB ({detail})",
            "signal": f"crashed: {function}'s process died of {detail} (a crash, or memory it could not get)",
            "exit": f"ended early: {function}'s process exited before reporting ({detail}: os._exit, or a crash)",
        }.get(reason, f"stopped: {reason} ({detail})"))  # fmt: skip
    if kind == "lost":
        return Verdict(False, f"stopped: the sandbox ended while {function} ran ({outcome[1]}): its code killed "
                              f"the grader's process or the sandbox, or went silent past the time limit")  # fmt: skip
    if kind == "nostart":
        return Verdict(False, f"sandbox did not start (tried twice; not the student's doing): {outcome[1]}")
    try:
        data = wire.loads(base64.b64decode(outcome[1] or "", validate=True))
        if not isinstance(data, dict):
            raise ValueError("not a report")
    except (ValueError, TypeError) as err:
        return Verdict(False, f"report unreadable: what came back from {function}'s sandbox is not a report ({err})")
    part = data.get("part")  # a project's part whose own cell went wrong
    function, cell = (
        (part, f"the exercise cell of {part}") if isinstance(part, str) else (function, "the exercise cell")
    )
    if isinstance(data.get("cell"), wire.Raised):
        err = data["cell"]
        if _memory_error(err):
            return Verdict(False, f"memory limit: {cell} ran out of memory ({err.type_name})")
        if _output_error(err):
            return Verdict(False, f"output limit: {cell} wrote past {mb} MB to one file, what it prints "
                                  f"included ({err.message})")  # fmt: skip
        if _process_error(err):
            return Verdict(False, f"process limit: {cell} could not start another process (the sandbox "
                                  f"allows {limits.processes} processes and threads): {err.message}")  # fmt: skip
        hint = " (an exercise cell is graded alone: import or define what it uses in the cell itself)"
        return Verdict(False, f"{cell} raised {err.type_name}: {err.message}"
                              + (hint if err.is_a("NameError") else ""))  # fmt: skip
    if data.get("defined") is not True:
        names = data.get("names") if isinstance(data.get("names"), list) else []
        defined = f" (it defines {', '.join(map(str, names))})" if names else ""
        return Verdict(False, f"never defined: {cell} defines no {function}{defined}")
    module = str(data.get("module", ""))
    if module == "vgpt" or module.startswith("vgpt."):
        return Verdict(False, f"refused: {function} is the package's own implementation ({module}), not the student's")
    results = data.get("results") if isinstance(data.get("results"), list) else []
    verdict = checker.judge(results)
    if not verdict.passed and any(_memory_error(r) for r in results):
        return Verdict(False, f"memory limit: {function} ran out of memory under the sandbox's "
                              f"{limits.memory >> 20} MB per process ({verdict.message})")  # fmt: skip
    if not verdict.passed and any(_output_error(r) for r in results):
        return Verdict(False, f"output limit: {function} wrote past {mb} MB to one file, what it prints included "
                              f"({verdict.message})")  # fmt: skip
    if not verdict.passed and any(_process_error(r) for r in results):
        return Verdict(False, f"process limit: {function} could not start another process (the sandbox allows "
                              f"{limits.processes} processes and threads; {verdict.message})")  # fmt: skip
    return verdict


def grade(
    paths: list[Path],
    source: Path | None = None,
    *,
    isolated: bool = True,
    limits: Limits | None = None,
    jobs: int = 1,
    out: Path | None = None,
    progress=None,
) -> list[Row]:
    """Grade each submission against the teacher's `source` notebooks; one Row per (student, notebook, checker).

    Source notebooks that no submission contains are left out (hand out one
    notebook a week, grade that one). `isolated`: in bubblewrap, refused where
    it does not run (say `isolated=False`, --no-sandbox, to run anyway).
    Students go `jobs` at a time.
    """
    source = Path(source) if source is not None else default_source()
    if not source.is_dir():
        raise ClassroomError(f"{source}: no such notebooks folder")
    limits = limits or Limits()
    if isolated and (why := sandbox.probe()):
        raise ClassroomError(f"no sandbox for the students' code: {why}. Install bubblewrap "
                             f"(apt-get install bubblewrap), or pass --no-sandbox to grade code you trust")  # fmt: skip
    sources = source_notebooks(source)
    students = submissions(paths, set(sources))
    rows: dict[tuple[str, str], list[Row]] = {}
    tasks: dict[str, list[Task]] = {}
    checkers: dict[str, Checker] = {}
    for student, notebooks in students.items():
        read = read_all(notebooks)
        for stem, (_, checks) in sources.items():
            theirs = match(stem, checks, read)
            for check in checks:
                row = Row(student, stem, check.exercise, False, 0.0, check.points, "")
                rows.setdefault((student, stem), []).append(row)
                if theirs is None:
                    row.message = "notebook not submitted"
                elif isinstance(theirs, ClassroomError):
                    row.message = f"notebook unreadable: {theirs}"
                elif check.project:
                    cells = student_parts(check, theirs, read, sources, source, checkers)
                    if isinstance(cells, str):
                        row.message = cells
                    else:
                        tasks.setdefault(student, []).extend(
                            tasks_of(student, stem, check, "", source, checkers, cells)
                        )
                elif (cell := exercise_cell(theirs, check)) is None:
                    row.message = f"never defined: the notebook has no exercise cell {check.exercise_id!r}"
                elif why := refusal(cell, check.exercise):
                    row.message = why
                else:
                    tasks.setdefault(student, []).extend(tasks_of(student, stem, check, cell, source, checkers))
    handed_in = {stem for (student, stem), rs in rows.items() if any(r.message != "notebook not submitted" for r in rs)}
    hide = [source, *map(Path, paths)] + ([Path(out).resolve().parent] if out else [])
    with tempfile.TemporaryDirectory(prefix="vgpt-grade-") as tmp:
        grading = Grading(Path(tmp), checkers, isolated, limits, hide)
        for slot in range(max(1, jobs)):
            grading.slots.put(slot)

        judging = threading.Lock()  # one judge at a time: a tokenizer, say, is not for two threads at once

        def one(student: str) -> None:
            start = time.monotonic()
            mine = tasks.get(student, [])
            outcomes = grading.run_student(mine) if mine else []
            with judging:
                judged = list(verdicts(mine, outcomes, checkers, limits))
            for task, verdict in judged:
                for row in rows[(student, task.notebook)]:
                    if row.exercise == task.check.exercise:
                        row.passed, row.message = verdict.passed, verdict.message
                        row.points = task.check.points if verdict.passed else 0.0
            if progress:
                mine_rows = [r for (s, stem), rs in rows.items() if s == student and stem in handed_in for r in rs]
                earned, possible = sum(r.points for r in mine_rows), sum(r.max_points for r in mine_rows)
                progress(f"{student}: {earned:g}/{possible:g} ({time.monotonic() - start:.0f} s)")

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # threads only wait: each sandbox is a process
            list(pool.map(one, list(students)))
    return [replace(r) for (student, stem), rs in rows.items() if stem in handed_in for r in rs]


def grade_solutions(source: Path, isolated: bool) -> list[tuple[Check, Verdict]]:
    """Every worked solution of `source` graded alone, as a student's cell would be: the convention that an
    exercise cell stands alone, checked on the real notebooks."""
    sources = source_notebooks(source)
    checkers, tasks = {}, []
    for stem, (_, checks) in sources.items():
        for check in checks:
            cells = worked_parts(check, sources, source, checkers) if check.project else None
            tasks += tasks_of("worked solutions", stem, check, check.solution, source, checkers, cells)
    limits = Limits()
    with tempfile.TemporaryDirectory(prefix="vgpt-release-") as tmp:
        grading = Grading(Path(tmp), checkers, isolated, limits, [source])
        grading.slots.put(0)
        outcomes = grading.run_student(tasks)
    return [(t.check, verdict) for t, verdict in verdicts(tasks, outcomes, checkers, limits)]


def tasks_of(
    student: str,
    stem: str,
    check: Check,
    cell: str,
    source: Path,
    checkers: dict[str, Checker],
    cells: dict[str, str] | None = None,
) -> list[Task]:
    """The task of one exercise cell, and before it those of the checks its checker requires first (a
    project's part, checked in the exercises' sandbox, on its own cell where `cells` holds the project's
    parts); the checkers they need, loaded into `checkers`."""
    key = checker_key(check, source, checkers)
    gates = []
    for number, required in enumerate(checkers[key].requires):
        checkers.setdefault(f"{key}|requires|{number}", required)
        gate_cell = cells[required.name] if cells else cell
        gates.append(Task(student, stem, check, gate_cell, f"{key}|requires|{number}", gate=key, part=required.name))
    return [*gates, Task(student, stem, check, cell, key, cells=cells)]


def checker_key(check: Check, source: Path, checkers: dict[str, Checker]) -> str:
    """The key of the check's checker in `checkers`, loaded there if it is not yet."""
    key = f"{check.module}:{check.checker}"
    if key not in checkers:
        checkers[key] = load_checker(check, source)
    return key


def _part_checks(checker: Checker, sources: dict, where: str) -> dict[str, tuple[str, Check | None]]:
    """part -> (its notebook, the teacher's exercise check of it there, or None if the teacher has none)."""
    found = {}
    for name, stem in checker.parts.items():
        checks = sources.get(stem, (None, []))[1]
        found[name] = (stem, next((c for c in checks if c.exercise == name and not c.project), None))
    if not found:
        raise ClassroomError(f"{where}: the project's checker {checker.name!r} names no parts (Checker.parts)")
    return found


def worked_parts(check: Check, sources: dict, source: Path, checkers: dict[str, Checker]) -> dict[str, str]:
    """A project's parts as the teacher's notebooks hold them: each part's worked solution."""
    checker = checkers[checker_key(check, source, checkers)]
    cells = {}
    for name, (stem, part) in _part_checks(checker, sources, check.where).items():
        if part is None:
            raise ClassroomError(f"{check.where}: the project's part {name} is an exercise of {stem}, and the "
                                 f"notebooks in {source} have no exercise cell of it")  # fmt: skip
        cells[name] = part.solution
    return cells


def student_parts(check: Check, theirs, read: dict, sources: dict, source: Path, checkers: dict) -> dict | str:
    """A project's parts as the student handed them in: a part defined in the project's own notebook (the
    student's override), else the exercise cell of it in the student's notebook of that exercise. Or why
    the project cannot be graded, as its row's message."""
    checker = checkers[checker_key(check, source, checkers)]
    cells = {}
    for name, (stem, part) in _part_checks(checker, sources, check.where).items():
        here = [c for c in theirs.cells if defines(c, name)]
        if here:
            cell = source_of(here[-1])
        elif part is None:
            return f"never defined: {name} is an exercise of {stem}, which the teacher's notebooks do not hold"
        else:
            nb = match(stem, sources[stem][1], read)
            if nb is None:
                return f"not graded: your part {name} comes from your {stem}, which was not handed in"
            if isinstance(nb, ClassroomError):
                return f"not graded: your {stem}, where your part {name} is, is unreadable: {nb}"
            cell = exercise_cell(nb, part)
            if cell is None:
                return f"never defined: your {stem} has no exercise cell {part.exercise_id!r} ({name})"
        if why := refusal(cell, name):
            return f"your part {name} ({stem}): {why}"
        cells[name] = cell
    return cells


def verdicts(tasks: list[Task], outcomes: list[tuple], checkers: dict[str, Checker], limits: Limits):
    """(task, verdict) for every task that has a row: a project's verdict is its part's first verdict that
    failed, if one did."""
    failed_gates: dict[tuple, Verdict] = {}
    for task, outcome in zip(tasks, outcomes, strict=True):
        verdict = verdict_of(task, outcome, checkers[task.key], limits)
        if task.gate is not None:
            if not verdict.passed:
                failed_gates.setdefault((task.notebook, task.check.grade_id), verdict)
            continue
        gate = failed_gates.get((task.notebook, task.check.grade_id))
        if gate is not None:
            verdict = Verdict(False, f"the part must pass its own exercise first, graded without the package: "
                                     f"{gate.message}")  # fmt: skip
        yield task, verdict


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
