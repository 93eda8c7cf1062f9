"""A project check, the hook of the capstone (notebook 10): the learner's greedy loop decoding the shipped tiny
captioner inside a sandbox that holds the package, judged here by the exact match of the captions it makes;
the part must pass its own exercise first, where the package is absent."""

import csv

import nbformat
from classroom_fixtures import exercise, needs_sandbox
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_exercises import exercise_solution

from vgpt.__main__ import main
from vgpt.classroom.exercise_cells import worked_solution
from vgpt.config import REPO_ROOT

STEM = "10_capstone_sketch"
GREEDY = next(
    c.source
    for c in nbformat.read(REPO_ROOT / "notebooks" / "07_generation.ipynb", 4).cells
    if c.metadata.get("nbgrader", {}).get("grade_id") == "07_generation-greedy_with_kv_cache"
)
BORROWED = (  # passes in the package's sandbox; its exercise, graded without the package, catches it
    "import importlib\n\n\ndef greedy_with_kv_cache(lm, prefix, eos, max_new_tokens):\n"
    "    return importlib.import_module('vgpt.generate').greedy(lm, prefix, eos, max_new_tokens)\n"
)


def capstone(folder):
    folder.mkdir()
    cell = exercise("greedy_with_kv_cache", GREEDY)
    cell.metadata["nbgrader"]["grade_id"] = f"{STEM}-greedy_with_kv_cache"
    checker = new_code_cell(
        "from vgpt.course.exercises.projects import check_captioner_with_my_greedy\n\n"
        "assert check_captioner_with_my_greedy(greedy_with_kv_cache)",
        metadata={"tags": ["checker"], "nbgrader": {"grade": True, "solution": False, "locked": True, "points": 3,
                                                    "grade_id": f"{STEM}-check-captioner", "schema_version": 3}},
    )  # fmt: skip
    nb = new_notebook(cells=[new_markdown_cell("# Your captioner"), cell, checker])
    nbformat.write(nb, folder / f"{STEM}.ipynb")
    return folder


def test_a_project_is_judged_by_its_metric_and_its_part_must_pass_alone_first(tmp_path):
    needs_sandbox()
    source = capstone(tmp_path / "notebooks")
    assert main(["classroom", "release", str(tmp_path / "class"), "--source", str(source)]) == 0
    released = nbformat.read(tmp_path / "class" / f"{STEM}.ipynb", 4)
    own = worked_solution(nbformat.read(source / f"{STEM}.ipynb", 4).cells[1], STEM)
    for student, code in (("own-loop", own), ("borrowed", BORROWED)):
        (tmp_path / student).mkdir()
        nb = nbformat.from_dict(released)
        nb.cells[1].source = code
        nbformat.write(nb, tmp_path / student / f"{STEM}.ipynb")
    grades = tmp_path / "grades.csv"
    args = ["classroom", "grade", str(tmp_path / "own-loop"), str(tmp_path / "borrowed"), "--source", str(source)]
    assert main([*args, "--out", str(grades), "--jobs", "2"]) == 0
    with open(grades, newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["own-loop"]["points"] == "3", rows["own-loop"]
    assert "Correct! (1 cases; exact match 96.7% on 60 test scenes" in rows["own-loop"]["message"]
    assert rows["borrowed"]["points"] == "0"
    assert rows["borrowed"]["message"].startswith("the part must pass its own exercise first, graded without the")
    assert "ModuleNotFoundError: No module named 'vgpt.generate'" in rows["borrowed"]["message"]


def test_the_borrowed_loop_would_pass_the_project_alone(capsys):
    """Why the gate: in the notebook, where the package is there, the borrowed loop makes the right captions."""
    from vgpt.course.exercises.projects import check_captioner_with_my_greedy

    space = {}
    exec(BORROWED, space)  # noqa: S102
    assert check_captioner_with_my_greedy(space["greedy_with_kv_cache"]) is True
    assert check_captioner_with_my_greedy(exercise_solution("07_generation", "greedy_with_kv_cache")) is True
