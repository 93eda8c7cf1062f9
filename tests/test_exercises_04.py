"""Notebook 04's checkers accept the worked solutions and name the usual wrong answers."""

import pytest
import torch
from notebook_exercises import exercise_solution

from vgpt import masks
from vgpt.course.exercises import check_attention_bias, check_position_ids

STEM = "04_joint_attention_mask"


def _allowed(mask, tri="lower", keys=True, rows=False):
    length = mask.shape[-1]
    ones = torch.ones(length, length, dtype=torch.bool)
    allowed = (ones.tril() if tri == "lower" else ones.triu() if tri == "upper" else ones).expand(
        mask.shape[0], length, length
    )
    if keys:
        allowed = allowed & mask.bool()[:, None, :]
    if rows:
        allowed = allowed & mask.bool()[:, :, None]
    return allowed


def _bias(allowed, blocked=float("-inf")):
    return torch.zeros(allowed.shape).masked_fill(~allowed, blocked)


WRONG_BIAS = {
    "0 instead of -inf": lambda mask: _allowed(mask).float(),
    "boolean mask": lambda mask: _allowed(mask),
    "forgot causality": lambda mask: _bias(_allowed(mask, tri="none")),
    "causality the wrong way round": lambda mask: _bias(_allowed(mask, tri="upper")),
    "padding rows vs columns": lambda mask: _bias(_allowed(mask, keys=False, rows=True)),
    "forgot the padding": lambda mask: _bias(_allowed(mask, keys=False)),
    "finite bias": lambda mask: _bias(_allowed(mask), blocked=-1.0),
}

WRONG_IDS = {
    "float position ids": lambda mask: (mask.cumsum(-1) - 1).clamp(min=0).float(),
    "counted from the start of the row": lambda mask: torch.arange(mask.shape[1]).expand_as(mask),
    "off by one": lambda mask: mask.long().cumsum(-1),
    "negative position ids": lambda mask: mask.long().cumsum(-1) - 1,
}


def test_attention_bias_accepts_the_worked_solution_and_the_dtype_minimum(capsys):
    assert check_attention_bias(exercise_solution(STEM, "attention_bias")) is True
    assert "Correct!" in capsys.readouterr().out
    hugging_face_style = lambda mask: _bias(_allowed(mask), torch.finfo(torch.float32).min)[:, None]  # (B, 1, L, L)
    assert check_attention_bias(hugging_face_style) is True


@pytest.mark.parametrize("mistake", list(WRONG_BIAS))
def test_attention_bias_names_the_mistake(mistake, capsys):
    assert check_attention_bias(WRONG_BIAS[mistake]) is False
    out = capsys.readouterr().out
    assert "not yet" in out
    if mistake != "finite bias":
        assert mistake in out
    else:
        assert "finite bias" in out and "only dims them" in out


def test_attention_bias_refuses_the_package(capsys):
    assert check_attention_bias(masks.attention_matrix) is False
    assert "vgpt's own" in capsys.readouterr().out


def test_position_ids_accepts_the_worked_solution(capsys):
    assert check_position_ids(exercise_solution(STEM, "position_ids")) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", list(WRONG_IDS))
def test_position_ids_names_the_mistake(mistake, capsys):
    assert check_position_ids(WRONG_IDS[mistake]) is False
    assert mistake in capsys.readouterr().out


def test_float_position_ids_really_crash_gpt2():
    """The checker's reason for refusing float ids holds: GPT-2's lookup refuses them."""
    from transformers import GPT2Config, GPT2Model

    model = GPT2Model(GPT2Config(n_layer=1, n_embd=8, n_head=2, n_positions=8, vocab_size=10))
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(RuntimeError, match="Long, Int"):
        model(input_ids=ids, position_ids=torch.arange(3).float()[None])


def test_position_ids_refuses_the_package(capsys):
    assert check_position_ids(masks.position_ids) is False
    assert "vgpt's own" in capsys.readouterr().out
