"""Notebook 03's checkers accept the worked solutions and name the usual wrong answers."""

import pytest
import torch
from conftest import exercise_solution

from vgpt import prefix
from vgpt.course.exercises import check_caption_labels, check_prefix_inputs

STEM = "03_prefix_concatenation"


def _labels(ids, mask, n, text):
    return torch.cat([torch.full((ids.shape[0], n), -100), text], dim=1)


WRONG_LABELS = {
    "labels set by token id lose the end-of-text label": lambda ids, mask, n: _labels(
        ids, mask, n, ids.masked_fill(ids == 0, -100)
    ),
    "shifted labels": lambda ids, mask, n: torch.cat(
        [_labels(ids, mask, n, ids.masked_fill(mask == 0, -100))[:, 1:], torch.full((ids.shape[0], 1), -100)], 1
    ),
    "forgot the prefix": lambda ids, mask, n: ids.masked_fill(mask == 0, -100),
    "padding is scored": lambda ids, mask, n: _labels(ids, mask, n, ids),
    "torch.float32": lambda ids, mask, n: _labels(ids, mask, n, ids.masked_fill(mask == 0, -100)).float(),
}


def _inputs(labels_fn=None, order="prefix first", embeds_without_prefix=False):
    def fn(prefix_, ids, mask, embedding):
        tokens = embedding(ids)
        parts = [prefix_, tokens] if order == "prefix first" else [tokens, prefix_]
        embeds = tokens if embeds_without_prefix else torch.cat(parts, 1)
        n = prefix_.shape[1]
        labels = labels_fn(ids, mask, n) if labels_fn else _labels(ids, mask, n, ids.masked_fill(mask == 0, -100))
        return embeds, labels

    return fn


WRONG_INPUTS = {
    "labels set by token id lose the end-of-text label": _inputs(
        WRONG_LABELS["labels set by token id lose the end-of-text label"]
    ),
    "shifted labels": _inputs(WRONG_LABELS["shifted labels"]),
    "forgot the prefix: the labels": _inputs(WRONG_LABELS["forgot the prefix"]),
    "forgot the prefix: inputs_embeds": _inputs(embeds_without_prefix=True),
    "the prefix is after the caption": _inputs(order="caption first"),
    "return two things": lambda prefix_, ids, mask, embedding: torch.cat([prefix_, embedding(ids)], 1),
}


def test_caption_labels_accepts_the_worked_solution(capsys):
    assert check_caption_labels(exercise_solution(STEM, "caption_labels")) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", list(WRONG_LABELS))
def test_caption_labels_names_the_mistake(mistake, capsys):
    assert check_caption_labels(WRONG_LABELS[mistake]) is False
    assert mistake in capsys.readouterr().out


def test_caption_labels_refuses_the_package_and_a_stub(capsys):
    assert check_caption_labels(prefix.caption_labels) is False
    assert "vgpt's own" in capsys.readouterr().out

    def stub(ids, mask, n):
        raise NotImplementedError

    assert check_caption_labels(stub) is False
    assert "not written yet" in capsys.readouterr().out


def test_prefix_inputs_accepts_the_worked_solution(capsys):
    assert check_prefix_inputs(exercise_solution(STEM, "prefix_inputs")) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", list(WRONG_INPUTS))
def test_prefix_inputs_names_the_mistake(mistake, capsys):
    assert check_prefix_inputs(WRONG_INPUTS[mistake]) is False
    assert mistake in capsys.readouterr().out


def test_prefix_inputs_refuses_the_package(capsys):
    assert check_prefix_inputs(prefix.concat_prefix) is False
    assert "vgpt's own" in capsys.readouterr().out
