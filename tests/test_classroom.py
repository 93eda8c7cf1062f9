"""`python -m vgpt classroom`: the release hides the solutions; grading survives a class of broken submissions.

The teacher's notebook is made up here (two exercises, `add` and
`warmup_cosine`, checked by tests/classroom_checkers.py, shipped beside it as a
support file), and so is the class: one student per way a submission goes wrong.
"""

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from vgpt.app.cli import main
from vgpt.classroom.exercise_cells import ClassroomError, checks_of
from vgpt.classroom.release import release
from vgpt.classroom.submission import grading_notebook, verdicts

HERE = Path(__file__).resolve().parent
STEM = "01_sums"
ADD = '''def add(a, b):
    """The sum of two numbers."""
    ### BEGIN SOLUTION
    total = a + b
    return total
    ### END SOLUTION'''
WARMUP = '''def warmup_cosine(step, total, warmup):
    """Learning-rate multiplier: linear warmup, then cosine decay to 0."""
    ### BEGIN SOLUTION
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    ### END SOLUTION'''
SOLUTION_CODE = ("total = a + b", "(step + 1) / warmup", "math.cos(math.pi")
TIMEOUT = 15  # seconds per notebook: the looping student's cost


def exercise(name, source):
    cell = new_code_cell(
        source,
        metadata={
            "tags": ["exercise"],
            "nbgrader": {
                "grade": False,
                "solution": True,
                "locked": False,
                "task": False,
                "schema_version": 3,
                "grade_id": f"{STEM}-{name}",
            },
        },
    )
    cell.outputs, cell.execution_count = [new_output("stream", name="stdout", text="solution ran\n")], 3
    return cell


def checker(name):
    cell = new_code_cell(
        f"from classroom_checkers import check_{name}\nassert check_{name}({name})",
        metadata={
            "tags": ["checker"],
            "nbgrader": {
                "grade": True,
                "solution": False,
                "locked": True,
                "task": False,
                "points": 1,
                "schema_version": 3,
                "grade_id": f"{STEM}-check-{name}",
            },
        },
    )
    cell.outputs, cell.execution_count = [new_output("stream", name="stdout", text=f"{name}: Correct!\n")], 4
    return cell


def teacher_folder(folder: Path, add_source: str = ADD) -> Path:
    """notebooks/ as a teacher has it: the notebook with solutions, a support file, a data file, solutions/."""
    folder.mkdir(parents=True)
    setup = new_code_cell("import math\nprint(math.pi > 3)")
    setup.outputs = [new_output("stream", name="stdout", text="True\n")]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Sums\n\nTwo small exercises."),
            setup,
            new_markdown_cell("## Exercise: add"),
            exercise("add", add_source),
            checker("add"),
            new_markdown_cell("## Exercise: a schedule"),
            exercise("warmup_cosine", WARMUP),
            checker("warmup_cosine"),
            new_code_cell("print('the end')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nb.nbformat_minor = 4  # like the repository's notebooks: nbformat 4.4, cells without ids
    for cell in nb.cells:
        del cell["id"]
    nbformat.write(nb, folder / f"{STEM}.ipynb")
    shutil.copy(HERE / "classroom_checkers.py", folder)
    (folder / "numbers.txt").write_text("2 3\n")
    (folder / "solutions").mkdir()
    (folder / "solutions" / f"{STEM}.py").write_text("def add(a, b):\n    return a + b\n")
    return folder


def test_release_stubs_solutions_and_leaves_the_solutions_folder_out(tmp_path):
    source = teacher_folder(tmp_path / "notebooks")
    assert main(["classroom", "release", str(tmp_path / "class"), "--source", str(source)]) == 0
    out = tmp_path / "class"
    assert sorted(p.name for p in out.iterdir()) == [f"{STEM}.ipynb", "classroom_checkers.py", "numbers.txt"]
    text = (out / f"{STEM}.ipynb").read_text()
    assert "SOLUTION" not in text and not [code for code in SOLUTION_CODE if code in text]
    nb = nbformat.read(out / f"{STEM}.ipynb", as_version=4)
    nbformat.validate(nb)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    add = cells[f"{STEM}-add"]
    assert add.source.splitlines() == [
        "def add(a, b):",
        '    """The sum of two numbers."""',
        "    # YOUR CODE HERE",
        "    raise NotImplementedError()",
    ]
    for grade_id in (f"{STEM}-add", f"{STEM}-warmup_cosine", f"{STEM}-check-add"):
        assert cells[grade_id].outputs == [] and cells[grade_id].execution_count is None
        assert (
            cells[grade_id].metadata["nbgrader"]
            == nbformat.read(source / f"{STEM}.ipynb", 4)
            .cells[[c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells].index(grade_id)]
            .metadata["nbgrader"]
        )
    assert nb.cells[1].outputs[0]["text"] == "True\n"  # the teacher's other outputs stay
    for grade_id, call in ((f"{STEM}-add", "add(1, 2)"), (f"{STEM}-warmup_cosine", "warmup_cosine(0, 10, 2)")):
        space = {}
        exec(cells[grade_id].source, space)  # noqa: S102 (the released stub, run to see it raise)
        with pytest.raises(NotImplementedError):
            eval(call, space)


def test_release_refuses_unbalanced_markers_and_writes_nothing(tmp_path, capsys):
    unclosed = ADD.replace("    ### END SOLUTION", "")
    source = teacher_folder(tmp_path / "notebooks", add_source=unclosed)
    assert main(["classroom", "release", str(tmp_path / "class"), "--source", str(source)]) == 2
    err = capsys.readouterr().err
    assert f"{STEM}.ipynb, cell 3 ({STEM}-add)" in err and "never closed" in err
    assert not (tmp_path / "class").exists()

    doubled = ADD.replace("    total = a + b", "    ### END SOLUTION\n    ### END SOLUTION")
    shutil.rmtree(source)
    teacher_folder(source, add_source=doubled)
    with pytest.raises(ClassroomError, match="END SOLUTION on line 5 without a BEGIN"):
        release(source, tmp_path / "class")
    assert not (tmp_path / "class").exists()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda cells: setattr(cells[4], "source", "check_add(add)"),
            "cell 4: checker '01_sums-check-add' does not assert",
        ),
        (lambda cells: cells[7].metadata.nbgrader.update(grade_id=f"{STEM}-check-add"), "is used twice"),
        (lambda cells: cells.pop(3), "cell 3: checker '01_sums-check-add' has no exercise cell before it"),
        (lambda cells: setattr(cells[3], "source", "add = lambda a, b: a + b"), "defines no function"),
        (
            lambda cells: cells[4].metadata.nbgrader.pop("grade_id"),
            "cell 4: this checker cell needs an nbgrader grade_id",
        ),
        (lambda cells: setattr(cells[1], "source", "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), "not tagged"),
    ],
)
def test_release_refuses_notebooks_that_break_the_conventions(tmp_path, change, words):
    source = teacher_folder(tmp_path / "notebooks")
    nb = nbformat.read(source / f"{STEM}.ipynb", 4)
    change(nb.cells)
    nbformat.write(nb, source / f"{STEM}.ipynb")
    with pytest.raises(ClassroomError, match=re.escape(words)):
        release(source, tmp_path / "class")


def test_release_refuses_a_folder_in_use(tmp_path, capsys):
    source = teacher_folder(tmp_path / "notebooks")
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "mine.txt").write_text("keep me")
    assert main(["classroom", "release", str(tmp_path / "class"), "--source", str(source)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert main(["classroom", "release", str(source / "out"), "--source", str(source)]) == 2
    assert (tmp_path / "class" / "mine.txt").read_text() == "keep me"


def test_grading_notebook_takes_only_exercise_cells_from_the_student(tmp_path):
    source = nbformat.read(teacher_folder(tmp_path / "notebooks") / f"{STEM}.ipynb", 4)
    student = nbformat.from_dict(source)
    student.cells[3].source = "def add(a, b):\n    return 42"
    student.cells[4].source = "pass  # the checker, edited away"
    student.cells[1].source = "import os; os._exit(1)"
    del student.cells[6]  # the warmup_cosine exercise
    nb, roles, where, missing = grading_notebook(source, student)
    text = "\n".join(c.source for c in nb.cells)
    assert "return 42" in text and "edited away" not in text and "os._exit" not in text
    assert "assert check_add(add)" in text and "assert check_warmup_cosine(warmup_cosine)" in text
    assert missing == {f"{STEM}-warmup_cosine"} and not [code for code in SOLUTION_CODE if code in text]
    assert nb.nbformat_minor == 5 and len({c.get("id") for c in nb.cells} - {None}) == len(nb.cells)  # 4.5: ids
    nbformat.validate(nb)
    probe, check = where[f"{STEM}-check-add"]
    assert nb.cells[check].source.endswith("assert check_add(add)") and "'add' in globals()" in nb.cells[probe].source
    assert roles[check] == "the checker of add"


def fill(released: Path, **sources) -> nbformat.NotebookNode:
    """A student's copy of the released notebook with their exercise cells (None: the cell deleted)."""
    nb = nbformat.read(released, 4)
    for cell in nb.cells:
        name = cell.metadata.get("nbgrader", {}).get("grade_id", "").removeprefix(f"{STEM}-")
        if name in sources:
            cell.source = sources[name]
    nb.cells = [c for c in nb.cells if c.source is not None]
    return nb


ADD_OK = "def add(a, b):\n    return a + b"
WARMUP_OK = "import math\n\n" + WARMUP.replace("    ### BEGIN SOLUTION\n", "").replace("    ### END SOLUTION", "")
CLASS = {  # student: (add cell, warmup_cosine cell); None: the cell deleted
    "alice": (ADD_OK, WARMUP_OK),
    "bob": (
        (
            "import subprocess\nbackground = subprocess.Popen(['sleep', '300'])\n"  # left running, for the grader
            "open(PID_FILE, 'w').write(str(background.pid))\n\ndef add(a, b):\n    return a - b"
        ),
        WARMUP_OK,
    ),
    "carol": (
        ADD_OK,
        (
            "def warmup_cosine(step, total, warmup):\n    return 1.0\n\nimport time\nwhile True:\n"
            "    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass"
        ),
    ),
    "dave": ("import os\nos._exit(1)", WARMUP_OK),
    "erin": (
        (
            "import os, shutil\nfor name in os.listdir('.'):\n"
            "    shutil.rmtree(name) if os.path.isdir(name) else os.remove(name)\n\n" + ADD_OK
        ),
        WARMUP_OK,
    ),
    "frank": ("def addition(a, b):\n    return a + b", None),
    "grace": (ADD_OK, "from vgpt.schedule import warmup_cosine"),
    "heidi": (ADD_OK, "import ctypes\nctypes.string_at(0)  # a segfault"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once through the CLI: rows by student and exercise, stdout, stderr, seconds."""
    root = tmp_path_factory.mktemp("classroom")
    source = teacher_folder(root / "notebooks")
    assert main(["classroom", "release", str(root / "class"), "--source", str(source)]) == 0
    submissions = []
    for student, (add, warmup) in CLASS.items():
        add = add.replace("PID_FILE", repr(str(root / "bob.pid")))
        nb = fill(root / "class" / f"{STEM}.ipynb", add=add, warmup_cosine=warmup)
        if student == "bob":  # bob edits the checkers away too: they always come from the source
            for cell in nb.cells:
                if "checker" in cell.metadata.get("tags", []):
                    cell.source = "pass"
        folder = root if student == "grace" else root / student  # grace hands in a lone notebook
        folder.mkdir(exist_ok=True)
        path = folder / (f"{student}.ipynb" if student == "grace" else f"{STEM}.ipynb")
        nbformat.write(nb, path)
        submissions.append(path if student == "grace" else folder)
    (root / "ivan").mkdir()
    (root / "ivan" / f"{STEM}.ipynb").write_text('{"cells": [')  # cut short
    (root / "judy").mkdir()  # handed in nothing
    submissions += [root / "ivan", root / "judy"]
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    start = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vgpt",
            "classroom",
            "grade",
            *map(str, submissions),
            "--source",
            str(source),
            "--out",
            str(root / "grades.csv"),
            "--timeout",
            str(TIMEOUT),
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert run.returncode == 0, run.stderr
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before  # erin emptied her own copy only
    with open(root / "grades.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ("student", "notebook", "exercise", "passed", "points", "message")
        rows = {}
        for row in reader:
            rows.setdefault(row["student"], {})[row["exercise"]] = row
    print(run.stdout, run.stderr, f"graded in {elapsed:.0f} s", sep="\n")
    return rows, run.stdout, elapsed, int((root / "bob.pid").read_text())


EXPECTED = {  # student: {exercise: (passed, words the message must hold)}
    "alice": {"add": (1, "add: Correct!"), "warmup_cosine": (1, "Correct! (5 cases)")},
    "bob": {"add": (0, "subtracts instead of adding"), "warmup_cosine": (1, "Correct!")},
    "carol": {
        "add": (1, "Correct!"),
        "warmup_cosine": (
            0,
            (f"time limit: the notebook ran past {TIMEOUT} s (stopped in the exercise cell of warmup_cosine)"),
        ),
    },
    "dave": {
        "add": (0, "kernel died in the exercise cell of add"),
        "warmup_cosine": (0, "kernel died in the exercise cell of add"),
    },
    "erin": {
        "add": (0, "No module named 'classroom_checkers'"),
        "warmup_cosine": (0, "No module named 'classroom_checkers'"),
    },
    "frank": {
        "add": (0, "never defined: NameError, add does not exist"),
        "warmup_cosine": (0, f"never defined: the notebook has no exercise cell '{STEM}-warmup_cosine'"),
    },
    "grace": {
        "add": (1, "Correct!"),
        "warmup_cosine": (0, ("refused: warmup_cosine is the package's own implementation (vgpt.schedule)")),
    },
    "heidi": {"add": (1, "Correct!"), "warmup_cosine": (0, "kernel died in the exercise cell of warmup_cosine")},
    "ivan": {"add": (0, "notebook unreadable"), "warmup_cosine": (0, "notebook unreadable")},
    "judy": {"add": (0, "notebook not submitted"), "warmup_cosine": (0, "notebook not submitted")},
}


@pytest.mark.parametrize("student", list(EXPECTED))
def test_each_submission_gets_its_grade_and_the_reason(graded, student):
    rows, _, _, _ = graded
    assert set(rows[student]) == {"add", "warmup_cosine"}
    for name, (passed, words) in EXPECTED[student].items():
        row = rows[student][name]
        assert (int(row["passed"]), float(row["points"])) == (passed, float(passed)), row
        assert words in row["message"], row
        assert row["notebook"] == STEM


def test_the_class_is_graded_in_bounded_time_with_a_table(graded):
    _, stdout, elapsed, _ = graded
    # 8 kernels (a few seconds each), two at a time, and one notebook that uses its whole time limit
    assert elapsed < 8 * 15 + TIMEOUT, elapsed
    lines = stdout.splitlines()
    assert lines[0].split() == ["student", STEM, "total"]
    table = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.split() and line.split()[0] in EXPECTED}
    assert table["alice"] == ["2/2", "2/2"] and table["bob"] == ["1/2", "1/2"] and table["judy"] == ["0/2", "0/2"]
    assert "20 grades written" in stdout


def test_processes_a_submission_leaves_running_are_killed(graded):
    pid = graded[3]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    assert "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()  # a zombie nobody has reaped yet


@pytest.mark.parametrize(
    ("events", "killed", "words"),
    [
        (
            [{"event": "nostart", "reason": "RuntimeError: Kernel didn't respond in 180 seconds"}],
            False,
            "kernel did not start: RuntimeError",
        ),
        ([{"event": "kernel", "pid": 1}], True, "time limit: the grader stopped the run after 225 s"),
        ([], False, "grader error: the run ended without a report (Traceback: boom)"),
    ],
)
def test_a_run_that_stops_early_names_the_reason(tmp_path, events, killed, words):
    source = nbformat.read(teacher_folder(tmp_path / "notebooks") / f"{STEM}.ipynb", 4)
    _, roles, where, missing = grading_notebook(source, source)
    run = {"events": events, "killed": killed, "log": "Traceback: boom\n[IPKernelApp] WARNING | tcp", "limit": 225}
    rows = verdicts("zoe", STEM, checks_of(source, STEM), run, roles, where, missing, TIMEOUT)
    assert [(r.exercise, r.passed, r.points, r.max_points) for r in rows] == [
        ("add", False, 0.0, 1.0),
        ("warmup_cosine", False, 0.0, 1.0),
    ]
    assert all(words in r.message for r in rows), rows


def test_notebook_runs_go_where_the_grader_points_them(tmp_path):
    """Each graded notebook writes its runs (bridges, caches) into its own folder, via VGPT_RUNS."""
    run = subprocess.run(
        [sys.executable, "-c", "from vgpt.course.notebook import RUNS; print(RUNS)"],
        env=dict(os.environ, VGPT_RUNS=str(tmp_path / "runs")),
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == str(tmp_path / "runs")


@pytest.mark.parametrize("command", [["classroom"], ["classroom", "release"], ["classroom", "grade"]])
def test_classroom_commands_have_help(command):
    run = subprocess.run(
        [sys.executable, "-m", "vgpt", *command, "--help"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0 and "usage: python -m vgpt classroom" in run.stdout
    if command[-1] == "grade":
        assert "NOT A SECURITY SANDBOX" in run.stdout
