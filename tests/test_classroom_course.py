"""The classroom on the course itself: `notebooks/` as shipped releases (every worked solution passing when
graded alone), the student version holds no solution, and what students hand back (the released stubs, a
notebook downloaded from Colab) is graded in the sandbox."""

import ast
import csv
import json
import re
from pathlib import Path

import nbformat
import pytest
from classroom_fixtures import needs_sandbox
from IPython.core.inputtransformer2 import TransformerManager

from vgpt.__main__ import main
from vgpt.classroom.exercise_cells import CHECK_MY_WORK, CHECKER, EXERCISE, MARKER, tags
from vgpt.config import REPO_ROOT
from vgpt.course.exercises import NOTEBOOKS

SOURCE = REPO_ROOT / "notebooks"
COLAB = Path(__file__).resolve().parent / "fixtures" / "colab" / "Copy of 04_joint_attention_mask.ipynb"
# each notebook's exercises: its checkers less a project's (the capstone's parts are other notebooks' exercises)
EXERCISES = {stem: [c for c in checkers if not c.parts] for stem, checkers in NOTEBOOKS.items()}


def solution_lines(nb) -> set[str]:
    """The lines of the worked solutions that appear nowhere else in the notebook: what must not be released."""
    inside, elsewhere = set(), set()
    for cell in nb.cells:
        opened = False
        for line in cell.source.splitlines():
            if cell.cell_type == "code" and MARKER.match(line):
                opened = MARKER.match(line)["kind"] == "BEGIN"
            elif len(line.strip()) > 12 and not line.strip().startswith("#"):
                (inside if opened and EXERCISE in tags(cell) else elsewhere).add(line.strip())
    return inside - elsewhere


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("course") / "handout"
    assert main(["classroom", "release", str(out)]) == 0
    return out


def test_the_course_releases_as_shipped_without_its_solutions(released):
    sources = sorted(p.name for p in SOURCE.glob("*.ipynb"))
    assert sorted(p.name for p in released.glob("*.ipynb")) == sources and not (released / "solutions").exists()
    stubbed = 0
    for name in sources:
        teacher, student = nbformat.read(SOURCE / name, 4), nbformat.read(released / name, 4)
        nbformat.validate(student)
        assert len(student.cells) == len(teacher.cells)
        released_lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
        released_lines |= {
            line.strip() for cell in student.cells for line in json.dumps(cell.get("outputs", [])).split("\\n")
        }
        assert not solution_lines(teacher) & released_lines, name
        for cell in student.cells:
            if cell.cell_type == "code":  # every code cell still parses (IPython's magics as IPython reads them)
                ast.parse(TransformerManager().transform_cell(cell.source))
                assert not any(MARKER.match(line) for line in cell.source.splitlines())
            if {EXERCISE, CHECKER, CHECK_MY_WORK} & set(tags(cell)):
                assert cell.outputs == [] and cell.execution_count is None
            if EXERCISE in tags(cell):
                assert cell.source.rstrip().endswith("raise NotImplementedError()")
                stubbed += 1
    assert stubbed == sum(len(checkers) for checkers in EXERCISES.values())


def test_the_released_stubs_and_a_colab_download_are_graded_in_the_sandbox(released, tmp_path):
    """A student who hands back the release untouched gets 'not written yet' for every exercise; one who
    downloaded notebook 04 from Colab (renamed, Colab's metadata, no nbgrader metadata, cells without ids,
    nbformat 4.0, outputs kept) gets each of its exercises judged."""
    needs_sandbox()
    (tmp_path / "untouched").mkdir()
    for path in released.glob("0*.ipynb"):
        (tmp_path / "untouched" / path.name).write_bytes(path.read_bytes())
    (tmp_path / "from-colab").mkdir()
    (tmp_path / "from-colab" / COLAB.name).write_bytes(COLAB.read_bytes())
    grades = tmp_path / "grades.csv"
    args = ["classroom", "grade", str(tmp_path / "untouched"), str(tmp_path / "from-colab"), "--out", str(grades)]
    assert main([*args, "--jobs", "2"]) == 0
    with open(grades, newline="") as f:
        rows = list(csv.DictReader(f))
    untouched = [r for r in rows if r["student"] == "untouched"]
    assert len(untouched) == sum(len(checkers) for stem, checkers in EXERCISES.items() if stem.startswith("0"))
    assert all(r["points"] == "0" and re.search(r": not written yet\.", r["message"]) for r in untouched), untouched
    colab = {r["exercise"]: r for r in rows if r["student"] == "from-colab" and r["notebook"].startswith("04_")}
    assert colab["attention_bias"]["points"] == "1" and "Correct! (3 cases)" in colab["attention_bias"]["message"]
    assert colab["position_ids"]["points"] == "0" and "off by one" in colab["position_ids"]["message"]
    others = [r for r in rows if r["student"] == "from-colab" and not r["notebook"].startswith("04_")]
    assert others and all(r["message"] == "notebook not submitted" for r in others)


@pytest.mark.parametrize("stem", [stem for stem, checkers in EXERCISES.items() if len(checkers) >= 2])
def test_check_my_work_ends_the_notebook_and_reads_half_done_work(released, stem, capsys):
    """The last cell runs every checker of its notebook: on the release, with one exercise cell run (its stub)
    and the other never run, it says so, row by row; run twice, it says the same; with the worked
    solutions, every row passes (the committed output)."""
    teacher, student = nbformat.read(SOURCE / f"{stem}.ipynb", 4), nbformat.read(released / f"{stem}.ipynb", 4)
    last = teacher.cells[-1]
    assert CHECK_MY_WORK in tags(last) and f'check_my_work("{stem}", globals())' in last.source
    committed = "".join(o["text"] for o in last.outputs)
    assert committed.splitlines()[-1] == f"{len(NOTEBOOKS[stem])} of {len(NOTEBOOKS[stem])} exercises pass: all done."
    first, *others = [c for c in student.cells if EXERCISE in tags(c)]
    namespace = {"__name__": "__main__"}
    exec(first.source, namespace)  # noqa: S102 (the released stub)
    outputs = []
    for _ in range(2):
        exec(student.cells[-1].source, namespace)  # noqa: S102
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    lines = outputs[0].splitlines()
    assert lines[0].split() == ["exercise", "passed", "message"]
    assert re.match(rf"{NOTEBOOKS[stem][0].name}\s+no\s+not written yet\.", lines[1])
    assert re.match(rf"{NOTEBOOKS[stem][1].name}\s+no\s+not defined: run its exercise cell first", lines[2])
    assert lines[-1] == f"0 of {len(NOTEBOOKS[stem])} exercises pass."
