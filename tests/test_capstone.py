"""The capstone (notebook 10) on the course's own worked solutions: the eleven parts, taken from the exercise
cells of notebooks 01-08 as a learner who solved them wrote them, train a captioner equal to the last bit to
the package's; one broken part is named, and only that one, by the diagnosis and by the project check."""

import re

import pytest
import torch
from notebook_exercises import exercise_solution

from vgpt.course import capstone
from vgpt.course.exercises.projects import CAPSTONE_EXACT_MATCH
from vgpt.course.parts import PARTS
from vgpt.loading import load_profile

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def frozen():
    return load_profile("tiny", verbose=False)


@pytest.fixture(scope="module")
def solved():
    """{name: function}: every part as its notebook's worked solution."""
    return {p.name: exercise_solution(p.notebook, p.name) for p in PARTS}


def sees_ahead(mask):
    """Notebook 04's slip: padding blocked, causality forgotten."""
    blocked = ~mask.bool()[:, None, :].expand(-1, mask.shape[1], -1)
    return torch.zeros(blocked.shape).masked_fill(blocked, float("-inf"))


def test_the_worked_solutions_train_the_package_captioner_to_the_last_bit(frozen, solved, capsys):
    side = capstone.side_by_side(frozen, solved, progress=False)
    assert side.bits() and all(side.bits().values()), side.bits()
    assert side.identical
    assert side.mine.watch.wrong() == []
    assert set(side.mine.parts) == {p.name for p in PARTS}
    test = side.mine.scores["test"]["exact_match"]
    assert test >= CAPSTONE_EXACT_MATCH, test  # what the project check asks of a captioner
    said = "\n".join(side.diagnosis())
    assert "DIFFERS" not in said and "RAISED" not in said, said


def test_a_broken_attention_bias_is_named_and_fails_the_project(frozen, solved, capsys):
    broken = capstone.side_by_side(frozen, {**solved, "attention_bias": sees_ahead}, progress=False)
    assert not broken.identical
    assert broken.mine.watch.wrong() == ["attention_bias"]
    said = "\n".join(broken.diagnosis())
    assert re.search(r"^attention_bias +DIFFERS", said, re.M) and "a later one" in said, said
    assert broken.mine.scores["test"]["exact_match"] < CAPSTONE_EXACT_MATCH  # the slip fails the project
    graded = capstone.graded({**solved, "attention_bias": sees_ahead})
    assert graded["wrong"] and graded["wrong"][0].startswith("attention_bias: ")
