"""A class of made-up submissions graded through `python -m vgpt classroom grade`: honest right and wrong
answers, and one student per way to cheat or to break the grading. Every cheat scores 0 with its reason,
every honest answer what it deserves, and nothing outside the grader's own folder changes.

Bounded so that the test itself is safe where the limits would fail: the memory bomb stops at 4 GiB, the
fork bomb at 64 sleeping processes, the endless output at the limit or after 10 s.
"""

import csv
import hashlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from classroom_fixtures import ADD_OK, STEM, WARMUP_OK, as_colab_download, fill, needs_sandbox, teacher_folder

from vgpt.__main__ import main
from vgpt.config import REPO_ROOT

TIMEOUT = 5  # seconds per exercise: the looping student's cost
STUB = "def warmup_cosine(step, total, warmup):\n    # YOUR CODE HERE\n    raise NotImplementedError()"

CLASS = {  # student: (add cell, warmup_cosine cell); None: the cell deleted. {SOURCE}, {PEER}, ... filled in below
    "honest": (ADD_OK, WARMUP_OK),
    "wrong": ("def add(a, b):\n    return a - b", "def warmup_cosine(step, total, warmup):\n    return 1.0"),
    "half-done": (ADD_OK, STUB),
    "prints-correct": (
        'print("add: Correct! (1 cases)")\n\ndef add(a, b):\n    print("add: Correct! (1 cases)")\n    return 0',
        WARMUP_OK,
    ),
    "replaces-modules": (
        "import math, sys, types\nimport torch\n"
        "sys.modules['classroom_checkers'] = types.SimpleNamespace(check_add=lambda fn: True)\n"
        "sys.modules['vgpt.course.exercises.grading'] = types.SimpleNamespace()\n"
        "torch.allclose = lambda *a, **k: True\nmath.isclose = lambda *a, **k: True\n\n"
        "def add(a, b):\n    return 4",
        WARMUP_OK,
    ),
    "patches-checker": (
        "import importlib\ngrading = importlib.import_module('vgpt.course.exercises.grading')\n"
        "grading.Checker.judge = lambda self, results: None\n\ndef add(a, b):\n    return 4",
        "from vgpt.course.exercises import grading\n\ndef warmup_cosine(step, total, warmup):\n    return 1.0",
    ),
    "patches-grader": (  # its report forged: whatever it claims, the grader judges the data
        "import sys\nwire = sys.modules['vgpt.course.exercises.wire']\nreal = wire.pack\n"
        "wire.pack = lambda value: real({'defined': True, 'module': '', "
        "'results': [{'passed': True, 'message': 'add: Correct!'}]})\n\ndef add(a, b):\n    return 4",
        "import sys\nrunner = sys.modules['vgpt.classroom.runner']\n"
        "open(runner.__file__, 'a').write('\\n# patched\\n')\n" + WARMUP_OK,
    ),
    "exits-early": ("import sys\nsys.exit(0)\n" + ADD_OK, "import os\nos._exit(0)\n" + WARMUP_OK),
    "reads-solutions": (
        "import json\nfor path in ({SOURCE_NOTEBOOK!r}, {REPO_NOTEBOOK!r}):\n"
        "    cells = json.load(open(path))['cells']\n"
        "    for cell in cells:\n        if 'exercise' in cell['metadata'].get('tags', []):\n"
        "            exec(''.join(cell['source']))",
        "import json\npeer = json.load(open({PEER!r}))\n" + WARMUP_OK,
    ),
    "writes-grades": (
        "open({GRADES!r}, 'a').write('writes-grades,01_sums,add,1,1,add: Correct!\\n')\n" + ADD_OK,
        "open('/tmp/notes.txt', 'w').write('my own scratch file')\n" + WARMUP_OK,
    ),
    "memory-bomb": (
        "hoard = []\nfor _ in range(16):  # 4 GiB at most\n    hoard.append(bytearray(256 << 20))\n" + ADD_OK,
        WARMUP_OK,
    ),
    "fork-bomb": (
        "import os, time\nfor _ in range(64):  # at most 64 sleepers\n    if os.fork() == 0:\n"
        "        time.sleep(20)\n        os._exit(0)\n" + ADD_OK,
        WARMUP_OK,
    ),
    "endless-output": (
        "import time\nstart = time.monotonic()\nwhile time.monotonic() - start < 10:\n    print('spam ' * 2000)\n"
        + ADD_OK,
        WARMUP_OK,
    ),
    "deletes-files": (
        "import shutil\nfor path in ({SOURCE!r}, {PEER_FOLDER!r}, {REPO_NOTEBOOKS!r}, {CANARY!r}):\n"
        "    shutil.rmtree(path, ignore_errors=True)\nshutil.rmtree('/sandbox')\n" + ADD_OK,
        WARMUP_OK,
    ),
    "kills-parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + ADD_OK, WARMUP_OK),
    "opens-socket": (
        "import socket\nsocket.create_connection(('127.0.0.1', {PORT}), timeout=2)\n" + ADD_OK,
        "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)\n" + WARMUP_OK,
    ),
    "loops-forever": (
        ADD_OK,
        "def warmup_cosine(step, total, warmup):\n    return 1.0\n\nimport time\nwhile True:\n"
        "    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass",
    ),
    "leaves-a-process": ("import subprocess\nsubprocess.Popen(['sleep', '313.25'])\n" + ADD_OK, WARMUP_OK),
    "uses-the-package": (
        "from vgpt import schedule\n\ndef add(a, b):\n    return a + b",
        "import importlib\nwarmup_cosine = importlib.import_module('vgpt.train').warmup_cosine",
    ),
    "renamed": ("def addition(a, b):\n    return a + b", None),
    "segfault": (ADD_OK, "import ctypes\nctypes.string_at(0)\n" + WARMUP_OK),
}

EXPECTED = {  # student: {exercise: (points, words the message must hold)}
    "honest": {"add": (1, "add: Correct! (1 cases)"), "warmup_cosine": (1, "warmup_cosine: Correct! (5 cases)")},
    "wrong": {"add": (0, "subtracts instead of adding"), "warmup_cosine": (0, "gave 1.0, expected 0.5")},
    "half-done": {"add": (1, "Correct!"), "warmup_cosine": (0, "warmup_cosine: not written yet")},
    "prints-correct": {"add": (0, "add(2, 3) gave 0, expected 5"), "warmup_cosine": (1, "Correct!")},
    "replaces-modules": {"add": (0, "add(2, 3) gave 4, expected 5"), "warmup_cosine": (1, "Correct!")},
    "patches-checker": {
        "add": (0, "the exercise cell raised ModuleNotFoundError: No module named 'vgpt.course.exercises.grading'"),
        "warmup_cosine": (0, "refused: the exercise cell imports vgpt (line 1: from vgpt.course.exercises import"),
    },
    "patches-grader": {
        "add": (0, "add(2, 3) gave {'passed': True, 'message': 'add: Correct!'}, expected 5"),
        "warmup_cosine": (0, ("raised PermissionError: [Errno 13]", "raised OSError: [Errno 30] Read-only")),
    },
    "exits-early": {
        "add": (0, "the exercise cell raised SystemExit: 0"),
        "warmup_cosine": (0, "ended early: warmup_cosine's process exited before reporting (exit code 0"),
    },
    "reads-solutions": {
        "add": (0, "the exercise cell raised FileNotFoundError"),
        "warmup_cosine": (0, "the exercise cell raised FileNotFoundError"),
    },
    "writes-grades": {"add": (0, "the exercise cell raised FileNotFoundError"), "warmup_cosine": (1, "Correct!")},
    "memory-bomb": {"add": (0, "memory limit: the exercise cell ran out of memory"), "warmup_cosine": (1, "Correct!")},
    "fork-bomb": {
        "add": (0, "process limit: the exercise cell could not start another process"),
        "warmup_cosine": (1, "Correct!"),
    },  # fmt: skip
    "endless-output": {
        "add": (0, "output limit: the exercise cell wrote past 16 MB"),
        "warmup_cosine": (1, "Correct!"),
    },
    "deletes-files": {"add": (0, "the exercise cell raised OSError"), "warmup_cosine": (1, "Correct!")},
    "kills-parent": {"add": (0, "stopped: the sandbox ended while add ran"), "warmup_cosine": (1, "Correct!")},
    "opens-socket": {
        "add": (0, "the exercise cell raised ConnectionRefusedError"),
        "warmup_cosine": (0, "the exercise cell raised OSError: [Errno 101] Network is unreachable"),
    },
    "loops-forever": {"add": (1, "Correct!"), "warmup_cosine": (0, f"time limit: warmup_cosine ran past {TIMEOUT} s")},
    "leaves-a-process": {"add": (1, "Correct!"), "warmup_cosine": (1, "Correct!")},
    "uses-the-package": {
        "add": (0, "refused: the exercise cell imports vgpt (line 1: from vgpt import schedule)"),
        "warmup_cosine": (0, "the exercise cell raised ModuleNotFoundError: No module named 'vgpt.train'"),
    },
    "renamed": {
        "add": (0, "never defined: the exercise cell defines no add (it defines addition)"),
        "warmup_cosine": (0, f"never defined: the notebook has no exercise cell '{STEM}-warmup_cosine'"),
    },
    "segfault": {"add": (1, "Correct!"), "warmup_cosine": (0, "crashed: warmup_cosine's process died of SIGSEGV")},
    "colab": {"add": (1, "Correct!"), "warmup_cosine": (1, "Correct!")},
    "lone-notebook": {"add": (1, "Correct!"), "warmup_cosine": (1, "Correct!")},
    "cut-short": {"add": (0, "notebook unreadable"), "warmup_cosine": (0, "notebook unreadable")},
    "nothing": {"add": (0, "notebook not submitted"), "warmup_cosine": (0, "notebook not submitted")},
}


def place(cell: str | None, places: dict[str, str]) -> str | None:
    """The cell with {NAME!r} and {NAME} replaced by the test's paths and port."""
    for name, value in places.items():
        cell = cell and cell.replace(f"{{{name}!r}}", repr(value)).replace(f"{{{name}}}", value)
    return cell


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under the folders, by path, with the hash of its bytes."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in folders
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded once through the CLI: rows by student and exercise, stdout, stderr, seconds, and what
    the test watched: a listening socket, the files outside the grader's folder."""
    needs_sandbox()
    root = tmp_path_factory.mktemp("classroom")
    source = teacher_folder(root / "notebooks")
    assert main(["classroom", "release", str(root / "class"), "--source", str(source)]) == 0
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0)
    canary = root / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("untouched")
    grades = root / "grades.csv"
    places = {
        "SOURCE": str(source),
        "SOURCE_NOTEBOOK": str(source / f"{STEM}.ipynb"),
        "REPO_NOTEBOOK": str(REPO_ROOT / "notebooks" / "06_training.ipynb"),
        "REPO_NOTEBOOKS": str(REPO_ROOT / "notebooks"),
        "PEER": str(root / "honest" / f"{STEM}.ipynb"),
        "PEER_FOLDER": str(root / "honest"),
        "GRADES": str(grades),
        "CANARY": str(canary),
        "PORT": str(listener.getsockname()[1]),
    }
    submissions = []
    for student, (add, warmup) in CLASS.items():
        cells = {"add": place(add, places), "warmup_cosine": place(warmup, places)}
        (root / student).mkdir()
        nbformat.write(fill(root / "class" / f"{STEM}.ipynb", **cells), root / student / f"{STEM}.ipynb")
        submissions.append(root / student)
    (root / "colab").mkdir()  # as downloaded from Colab: renamed, nbformat 4.0, no cell metadata but an id
    colab = as_colab_download(fill(root / "class" / f"{STEM}.ipynb", add=ADD_OK, warmup_cosine=WARMUP_OK))
    (root / "colab" / f"Copy of {STEM}.ipynb").write_text(json.dumps(colab, indent=1))
    nbformat.write(fill(root / "class" / f"{STEM}.ipynb", add=ADD_OK, warmup_cosine=WARMUP_OK),
                   root / "lone-notebook.ipynb")  # fmt: skip
    (root / "cut-short").mkdir()
    (root / "cut-short" / f"{STEM}.ipynb").write_text('{"cells": [')
    (root / "nothing").mkdir()
    submissions += [root / "colab", root / "lone-notebook.ipynb", root / "cut-short", root / "nothing"]
    outside = [source, canary, REPO_ROOT / "notebooks", REPO_ROOT / "vgpt", *[p for p in submissions if p.is_dir()]]
    before = snapshot(*outside) | {str(root / "lone-notebook.ipynb"): (root / "lone-notebook.ipynb").read_text()}
    temporary = {p.name for p in Path("/tmp").glob("vgpt-*")}
    start = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "vgpt", "classroom", "grade", *map(str, submissions), "--source", str(source),
         "--out", str(grades), "--timeout", str(TIMEOUT), "--jobs", "2"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert run.returncode == 0, run.stderr
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    listener.close()
    after = snapshot(*outside) | {str(root / "lone-notebook.ipynb"): (root / "lone-notebook.ipynb").read_text()}
    with open(grades, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ("student", "notebook", "exercise", "passed", "points", "message")
        table = list(reader)
    rows = {}
    for row in table:
        rows.setdefault(row["student"], {})[row["exercise"]] = row
    reasons = "\n".join(f"{r['student']:<18} {r['exercise']:<14} {r['points']}  {r['message']}" for r in table)
    print(run.stdout, run.stderr, reasons, f"graded in {elapsed:.0f} s", sep="\n")
    return {
        "rows": rows,
        "table": table,
        "stdout": run.stdout,
        "elapsed": elapsed,
        "connected": connected,
        "changed": sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k)),
        "temporary": {p.name for p in Path("/tmp").glob("vgpt-*")} - temporary,
    }


@pytest.mark.parametrize("student", list(EXPECTED))
def test_each_submission_gets_its_grade_and_the_reason(graded, student):
    rows = graded["rows"]
    assert set(rows[student]) == {"add", "warmup_cosine"}
    for name, (points, words) in EXPECTED[student].items():
        row = rows[student][name]
        assert (int(row["passed"]), float(row["points"])) == (points, float(points)), row
        assert any(w in row["message"] for w in ((words,) if isinstance(words, str) else words)), row
        assert row["notebook"] == STEM


def test_every_cheat_scores_nothing_for_its_cheat_and_every_row_has_a_reason(graded):
    assert len(graded["table"]) == 2 * len(EXPECTED)  # nobody added a row: writes-grades' line is not there
    assert all(row["message"] for row in graded["table"])
    forged = [r for r in graded["table"] if r["student"] == "writes-grades" and r["exercise"] == "add"]
    assert [r["points"] for r in forged] == ["0"]


def test_nothing_outside_the_grader_s_folder_changed_and_nothing_is_left_behind(graded):
    assert graded["changed"] == []  # deletes-files removed nothing, patches-grader patched no file
    assert graded["temporary"] == set()
    assert not graded["connected"]  # opens-socket never reached the machine's loopback
    left = subprocess.run(["pgrep", "-f", "sleep 313.25"], capture_output=True, text=True, check=False)
    assert left.stdout == "", "a process the submission started outlived the grading"
    sandboxes = subprocess.run(["pgrep", "-f", "/sandbox/start.py"], capture_output=True, text=True, check=False)
    assert sandboxes.stdout == "", "a sandbox's process (the fork bomb's sleepers, say) outlived the grading"


def test_the_class_is_graded_in_bounded_time_with_a_table(graded):
    # 25 sandboxes two at a time, a few seconds each, one exercise that uses its whole limit, one restart
    assert graded["elapsed"] < 120, graded["elapsed"]
    lines = graded["stdout"].splitlines()
    assert lines[0].split() == ["student", STEM, "total"]
    table = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.split() and line.split()[0] in EXPECTED}
    assert table["honest"] == ["2/2", "2/2"] and table["wrong"] == ["0/2", "0/2"] and table["nothing"] == ["0/2", "0/2"]
    assert f"{2 * len(EXPECTED)} grades written" in graded["stdout"]
