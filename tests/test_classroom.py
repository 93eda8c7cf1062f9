"""`python -m vgpt classroom`: the release hides the solutions and checks the conventions; the grader's
reading of submissions and of what a sandbox reports. (The class of cheats: test_classroom_class.py; the
sandbox itself: test_classroom_sandbox.py; the real course: test_classroom_course.py.)"""

import json
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from classroom_fixtures import (
    ADD,
    ADD_OK,
    SOLUTION_CODE,
    STEM,
    WARMUP,
    WARMUP_OK,
    as_colab_download,
    fill,
    teacher_folder,
)

from vgpt.__main__ import main
from vgpt.classroom import grade as grading
from vgpt.classroom import sandbox
from vgpt.classroom.exercise_cells import ClassroomError, checks_of
from vgpt.classroom.grade import Task, verdict_of
from vgpt.classroom.release import release
from vgpt.classroom.sandbox import Limits
from vgpt.classroom.submission import exercise_cell, match, refusal
from vgpt.course.exercises import wire


def test_release_stubs_solutions_and_leaves_the_solutions_folder_out(tmp_path):
    source = teacher_folder(tmp_path / "notebooks")
    assert main(["classroom", "release", str(tmp_path / "class"), "--source", str(source)]) == 0
    out = tmp_path / "class"
    assert sorted(p.name for p in out.iterdir()) == [f"{STEM}.ipynb", "classroom_checkers.py", "numbers.txt"]
    nb = nbformat.read(out / f"{STEM}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "SOLUTION" not in code and not [line for line in SOLUTION_CODE if line in code]
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    assert cells[f"{STEM}-add"].source.splitlines() == [
        "def add(a, b):",
        '    """The sum of two numbers."""',
        "    # YOUR CODE HERE",
        "    raise NotImplementedError()",
    ]
    teacher = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nbformat.read(source / f"{STEM}.ipynb", 4).cells
    }
    for gid in (f"{STEM}-add", f"{STEM}-warmup_cosine", f"{STEM}-check-add"):
        assert cells[gid].outputs == [] and cells[gid].execution_count is None
        assert cells[gid].metadata["nbgrader"] == teacher[gid].metadata["nbgrader"]
    assert nb.cells[1].outputs[0]["text"] == "True\n"  # the teacher's other outputs stay
    assert "`### BEGIN SOLUTION`" in nb.cells[0].source  # prose that quotes the markers is prose
    for gid, call in ((f"{STEM}-add", "add(1, 2)"), (f"{STEM}-warmup_cosine", "warmup_cosine(0, 10, 2)")):
        space = {}
        exec(cells[gid].source, space)  # noqa: S102 (the released stub, run to see it raise)
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
        (lambda cells: setattr(cells[4], "source", "assert add(2, 3) == 5"), "must import its checker and assert it"),
        (
            lambda cells: setattr(cells[4], "source", "from math import isclose as check_add\nassert check_add(add)"),
            "check_add in math is not a vgpt Checker",
        ),
        (
            lambda cells: setattr(cells[4], "source", "from no_such_module import check_add\nassert check_add(add)"),
            "the checker's module no_such_module does not import",
        ),
    ],
)
def test_release_refuses_notebooks_that_break_the_conventions(tmp_path, change, words):
    source = teacher_folder(tmp_path / "notebooks")
    nb = nbformat.read(source / f"{STEM}.ipynb", 4)
    change(nb.cells)
    nbformat.write(nb, source / f"{STEM}.ipynb")
    with pytest.raises(ClassroomError, match=re.escape(words)):
        release(source, tmp_path / "class")
    assert not (tmp_path / "class").exists()


def test_release_refuses_a_worked_solution_that_needs_another_cell(tmp_path):
    """Exercise cells are graded alone: a solution that relies on the notebook's `import math` cell fails."""
    leaning = WARMUP.replace("import math\n\n\n", "")
    source = teacher_folder(tmp_path / "notebooks", warmup_source=leaning)
    with pytest.raises(ClassroomError) as raised:
        release(source, tmp_path / "class")
    message = str(raised.value)
    assert (
        f"{STEM}.ipynb, cell 6 ({STEM}-warmup_cosine): the worked solution does not pass when graded alone" in message
    )
    assert "NameError: name 'math' is not defined" in message and "must stand alone" in message
    assert not (tmp_path / "class").exists()


def test_release_refuses_a_folder_in_use(tmp_path, capsys):
    source = teacher_folder(tmp_path / "notebooks")
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "mine.txt").write_text("keep me")
    assert main(["classroom", "release", str(tmp_path / "class"), "--source", str(source)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert main(["classroom", "release", str(source / "out"), "--source", str(source)]) == 2
    assert (tmp_path / "class" / "mine.txt").read_text() == "keep me"


def test_only_the_exercise_cells_are_taken_and_a_colab_download_is_read(tmp_path):
    source = nbformat.read(teacher_folder(tmp_path / "notebooks") / f"{STEM}.ipynb", 4)
    checks = checks_of(source, STEM)
    mine = fill(tmp_path / "notebooks" / f"{STEM}.ipynb", add="def add(a, b):\n    return 42", warmup_cosine=None)
    mine.cells[4].source = "pass  # the checker, edited away"
    assert exercise_cell(mine, checks[0]) == "def add(a, b):\n    return 42"
    assert exercise_cell(mine, checks[1]) is None  # deleted: never the teacher's solution instead
    colab = tmp_path / "Copy of 01_sums.ipynb"
    colab.write_text(json.dumps(as_colab_download(fill(tmp_path / "notebooks" / f"{STEM}.ipynb", add=ADD_OK))))
    read = nbformat.read(colab, 4)
    assert read.nbformat_minor == 0 and "nbgrader" not in json.dumps(read)
    assert match(STEM, checks, {colab: read}) is read  # by name: it contains the teacher's
    assert exercise_cell(read, checks[0]).strip() == ADD_OK  # by the function it defines
    assert "### BEGIN SOLUTION" in exercise_cell(read, checks[1])  # the teacher's own, as the student kept it


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("from vgpt.train import warmup_cosine", "refused: the exercise cell imports vgpt (line 1: from vgpt"),
        (
            "import math\nimport vgpt.train as s\n\ndef warmup_cosine(a, b, c):\n    return s.warmup_cosine(a, b)",
            "(line 2: import vgpt.train as s)",
        ),
        ("def warmup_cosine(step, total, warmup):\n    return (", "refused: the exercise cell does not parse"),
        ("%time x = 1\ndef warmup_cosine(s, t, w):\n    return 1", "an IPython magic or shell line"),
    ],
)
def test_a_cell_is_refused_unrun_when_it_imports_vgpt_or_does_not_parse(cell, words):
    assert words in refusal(cell, "warmup_cosine")


def test_honest_cells_are_not_refused():
    assert refusal(WARMUP_OK, "warmup_cosine") is None
    assert refusal("import vgptx\nfrom .vgpt import y\ndef f(): return 'vgpt'", "f") is None


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        (("stopped", "time", "ran past 5 s"), "time limit: add ran past 60 s"),
        (("stopped", "cpu", "SIGXCPU"), "CPU limit: add used more than 60 s of CPU time (SIGXCPU)"),
        (("stopped", "output", "SIGXFSZ"), "output limit: add wrote past 16 MB to one file"),
        (("stopped", "report", "40000000 bytes"), "output limit: add's answers came to more than 32 MB"),
        (("stopped", "signal", "SIGSEGV"), "crashed: add's process died of SIGSEGV"),
        (("stopped", "exit", "exit code 0"), "ended early: add's process exited before reporting (exit code 0"),
        (("lost", "ended (exit code -9)"), "stopped: the sandbox ended while add ran (ended (exit code -9))"),
        (("nostart", "ended (exit code 1): bwrap: oops"), "sandbox did not start (tried twice; not the student's"),
        (("result", "not base64!"), "report unreadable"),
        (("result", ""), "report unreadable"),
    ],
)
def test_what_a_sandbox_reports_becomes_a_verdict_with_its_reason(tmp_path, outcome, words):
    check = checks_of(nbformat.read(teacher_folder(tmp_path / "nb") / f"{STEM}.ipynb", 4), STEM)[0]
    checker = grading.load_checker(check, tmp_path / "nb")
    verdict = verdict_of(Task("zoe", STEM, check, ADD_OK, "k"), outcome, checker, Limits())
    assert not verdict.passed and words in verdict.message, verdict.message


def _result(data) -> tuple:
    import base64

    return ("result", base64.b64encode(wire.dumps(data)).decode())


@pytest.mark.parametrize(
    ("data", "passed", "words"),
    [
        ({"defined": True, "module": "__exercise__", "results": [5]}, True, "add: Correct! (1 cases)"),
        ({"defined": True, "module": "__exercise__", "results": [-1]}, False, "subtracts instead of adding"),
        ({"defined": True, "module": "__exercise__", "results": ["add: Correct!"]}, False, "gave 'add: Correct!'"),
        ({"defined": True, "module": "__exercise__", "results": [5, 5]}, False, "reported 2 results for 1 cases"),
        ({"defined": True, "module": "vgpt.train", "results": [5]}, False, "package's own implementation"),
        ({"defined": False, "names": ["addition"]}, False, "defines no add (it defines addition)"),
        ({"cell": wire.Raised.of(NameError("name 'np' is not defined"))}, False, "import or define what it uses"),
        ({"cell": wire.Raised.of(MemoryError())}, False, "memory limit: the exercise cell ran out of memory"),
        ({"cell": wire.Raised.of(BlockingIOError(11, "Resource temporarily unavailable"))}, False, "process limit"),
        (
            {"defined": True, "module": "", "results": [wire.Raised.of(MemoryError())]},
            False,
            "memory limit: add ran out",
        ),
        ({"passed": True}, False, "never defined"),
        ([1, 2], False, "report unreadable"),
    ],
)
def test_a_report_is_judged_by_the_grader_whatever_it_claims(tmp_path, data, passed, words):
    check = checks_of(nbformat.read(teacher_folder(tmp_path / "nb") / f"{STEM}.ipynb", 4), STEM)[0]
    checker = grading.load_checker(check, tmp_path / "nb")
    verdict = verdict_of(Task("zoe", STEM, check, ADD_OK, "k"), _result(data), checker, Limits())
    assert verdict.passed == passed and words in verdict.message, verdict.message


def test_without_bubblewrap_grading_is_refused_unless_no_sandbox(tmp_path, monkeypatch, capsys):
    source = teacher_folder(tmp_path / "notebooks")
    assert main(["classroom", "release", str(tmp_path / "class"), "--source", str(source)]) == 0
    (tmp_path / "ann").mkdir()
    nbformat.write(fill(tmp_path / "class" / f"{STEM}.ipynb", add=ADD_OK, warmup_cosine=WARMUP_OK),
                   tmp_path / "ann" / f"{STEM}.ipynb")  # fmt: skip
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    sandbox.probe.cache_clear()
    try:
        args = ["classroom", "grade", str(tmp_path / "ann"), "--source", str(source), "--out", str(tmp_path / "g.csv")]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "no sandbox for the students' code: bubblewrap is not installed" in err and "--no-sandbox" in err
        assert not (tmp_path / "g.csv").exists()
        assert main([*args, "--no-sandbox"]) == 0
        out, err = capsys.readouterr()
        assert err.count("WARNING: grading WITHOUT a sandbox") == 2  # before and after, around the progress lines
        assert re.search(r"^ann\s+2/2\s+2/2$", out, re.M), out
    finally:
        sandbox.probe.cache_clear()


@pytest.mark.parametrize("command", [["classroom"], ["classroom", "release"], ["classroom", "grade"]])
def test_classroom_commands_have_help(command):
    run = subprocess.run(
        [sys.executable, "-m", "vgpt", *command, "--help"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0 and "usage: python -m vgpt classroom" in run.stdout
    if command[-1] == "grade":
        assert (
            "bubblewrap" in run.stdout
            and "--no-sandbox" in run.stdout
            and "Use that only for code you trust" in run.stdout
        )
