"""Every exercise checker accepts its solution and rejects the usual wrong answers and the bare stub."""

from collections import Counter

import pytest
from notebook_exercises import exercise_solution

from vgpt.course import exercises


def stub(*args, **kwargs):
    raise NotImplementedError


def _grams(words, n):
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


WRONG = {
    "clipped_precision": [
        lambda c, refs, n: (
            sum(min(v, max(_grams(r, n)[g] for r in refs)) for g, v in _grams(c, n).items()) / max(1, len(c))
        ),
        lambda c, refs, n: (
            sum(1 for g in _grams(c, n).elements() if any(g in _grams(r, n) for r in refs))
            / max(1, sum(_grams(c, n).values()))
        ),
    ],
}
NOTEBOOK = {
    "clipped_precision": "08_evaluation_and_demo",
}


@pytest.mark.parametrize("name", list(NOTEBOOK))
def test_checker_accepts_the_solution_and_rejects_wrong_answers(name, capsys):
    check = getattr(exercises, f"check_{name}")
    assert check(exercise_solution(NOTEBOOK[name], name)) is True
    assert "Correct!" in capsys.readouterr().out
    for wrong in WRONG[name]:
        assert check(wrong) is False, f"{name}: a wrong answer passed"
        assert "not yet" in capsys.readouterr().out
    assert check(stub) is False
    assert "not written yet" in capsys.readouterr().out
