"""Notebook 08's checkers accept the worked solutions in the notebook, and name the usual mistakes."""

import math
from collections import Counter

import pytest
from conftest import exercise_solution

from vgpt import metrics
from vgpt.course.exercises import check_cider_d, check_clipped_precision
from vgpt.course.exercises.evaluation import _cider

STEM = "08_evaluation_and_demo"


def grams(words, n):
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def test_clipped_precision_accepts_the_worked_solution(capsys):
    assert check_clipped_precision(exercise_solution(STEM, "clipped_precision")) is True
    assert "Correct!" in capsys.readouterr().out


def unclipped(c, refs, n):
    found = sum(v for g, v in grams(c, n).items() if any(g in grams(r, n) for r in refs))
    return found / max(1, sum(grams(c, n).values()))


def per_word(c, refs, n):
    most = Counter()
    for r in refs:
        most |= grams(r, n)
    return sum(min(v, most[g]) for g, v in grams(c, n).items()) / max(1, len(c))


def summed_references(c, refs, n):
    total = sum((grams(r, n) for r in refs), Counter())
    return sum(min(v, total[g]) for g, v in grams(c, n).items()) / max(1, sum(grams(c, n).values()))


@pytest.mark.parametrize("wrong, message", [
    (unclipped, "not clipped"),
    (per_word, "divided by the number of words"),
    (summed_references, "all references added up"),
])  # fmt: skip
def test_clipped_precision_names_the_mistake(wrong, message, capsys):
    assert check_clipped_precision(wrong) is False
    out = capsys.readouterr().out
    assert "not yet" in out and message in out, out


def test_clipped_precision_refuses_the_package_and_a_stub(capsys):
    from vgpt.course.exercises.evaluation import _clipped

    assert check_clipped_precision(_clipped) is False
    assert "vgpt's own" in capsys.readouterr().out

    def stub(candidate, references, n):
        raise NotImplementedError

    assert check_clipped_precision(stub) is False
    assert "not written yet" in capsys.readouterr().out


def test_cider_d_accepts_the_worked_solution(capsys):
    assert check_cider_d(exercise_solution(STEM, "cider_d")) is True
    assert "Correct!" in capsys.readouterr().out


def test_the_checkers_own_cider_equals_vgpt_metrics():
    hyps = [["a", "red", "red", "circle"], ["a", "blue", "square", "at", "the", "top"]]
    refs = [[["a", "red", "circle"], ["the", "red", "circle"]], [["a", "blue", "square"]]]
    expected = metrics.cider_d([" ".join(h) for h in hyps], [[" ".join(r) for r in rs] for rs in refs])
    assert math.isclose(_cider(hyps, refs), expected, rel_tol=1e-12)


def variant(**options):
    return lambda hyps, refs: _cider(hyps, refs, **options)


@pytest.mark.parametrize("wrong, message", [
    (variant(tfidf=False), "no tf-idf weighting"),
    (variant(clip=False), "not clipped"),
    (variant(penalty=False), "no length penalty"),
    (variant(scale=1.0), "on a 0-1 scale"),
    (variant(scale=100.0), "times 100, as papers print it"),
    (variant(df_per="reference"), "document frequency counted per reference"),
    (variant(refs_mean=False), "summed over an image's references"),
    (variant(penalty=False, clip=False), "plain CIDEr"),
])  # fmt: skip
def test_cider_d_names_the_mistake(wrong, message, capsys):
    assert check_cider_d(wrong) is False
    out = capsys.readouterr().out
    assert "not yet" in out and message in out, out


def test_cider_d_explains_log_of_zero(capsys):
    def no_max(hyps, refs):
        df = Counter()
        for rs in refs:
            df.update({g for r in rs for n in range(1, 5) for g in grams(r, n)})
        return sum(math.log(len(refs)) - math.log(df[g]) for h in hyps for g in grams(h, 1))  # df 0: log(0)

    assert check_cider_d(no_max) is False
    assert "log(0)" in capsys.readouterr().out


def test_cider_d_refuses_vgpt_metrics(capsys):
    assert check_cider_d(metrics.cider_d) is False
    assert "vgpt's own" in capsys.readouterr().out
