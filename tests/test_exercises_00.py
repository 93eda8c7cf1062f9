"""Notebook 00's checkers accept the worked solutions and name the usual mistakes."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import exercise_solution

from vgpt import lora
from vgpt.course.exercises import check_count_parameters, check_next_token_loss

STEM = "00_two_alien_models"


def test_count_parameters_accepts_the_worked_solution(capsys):
    assert check_count_parameters(exercise_solution(STEM, "count_parameters")) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda m, trainable_only=False: sum(t.numel() for t in m.state_dict().values()), "counts the state_dict"),
        (
            lambda m, trainable_only=False: sum(p.numel() for _, p in m.named_parameters(remove_duplicate=False)),
            "tied weight was counted twice",
        ),
        (
            lambda m, trainable_only=False: (
                sum(p.numel() for p in m.parameters()) + sum(b.numel() for b in m.buffers())
            ),
            "Buffers counted as parameters",
        ),
        (lambda m, trainable_only=False: sum(p.numel() for p in m.parameters()), "frozen parameters were counted too"),
        (
            lambda m, trainable_only=False: sum(p.numel() for p in m.parameters() if p.requires_grad != trainable_only),
            "That is the trainable count",
        ),
        (
            lambda m, trainable_only=False: sum(
                p.numel() for p in m.parameters() if not (trainable_only and p.requires_grad)
            ),
            "instead of the trainable ones",
        ),
        (lambda m, trainable_only=False: (1, 2), "expected one number"),
    ],
)
def test_count_parameters_names_the_mistake(wrong, message, capsys):
    assert check_count_parameters(wrong) is False
    assert message in capsys.readouterr().out


def test_count_parameters_refuses_vgpts_own(capsys):
    assert check_count_parameters(lora.count_parameters) is False
    assert "vgpt's own" in capsys.readouterr().out


def _right(logits, ids, mask):
    real = mask[:, 1:].bool()
    return F.cross_entropy(logits[:, :-1][real], ids[:, 1:][real])


def test_next_token_loss_accepts_the_worked_solution_and_a_tensor_answer(capsys):
    assert check_next_token_loss(exercise_solution(STEM, "next_token_loss")) is True
    assert check_next_token_loss(_right) is True  # a 0-d tensor is a number too
    assert capsys.readouterr().out.count("Correct!") == 2


def _per_row(logits, ids, mask):
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none")
    real = mask[:, 1:].bool()
    return torch.stack([row[keep].mean() for row, keep in zip(nll, real, strict=True)]).mean()


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda lg, ids, m: F.cross_entropy(lg[m.bool()], ids[m.bool()]), "No shift"),
        (
            lambda lg, ids, m: F.cross_entropy(lg[:, 1:][m[:, :-1].bool()], ids[:, :-1][m[:, :-1].bool()]),
            "Shifted the wrong way",
        ),
        (
            lambda lg, ids, m: F.cross_entropy(lg[:, :-1].reshape(-1, lg.shape[-1]), ids[:, 1:].reshape(-1)),
            "Padding was counted",
        ),
        (
            lambda lg, ids, m: F.cross_entropy(lg[:, :-1][m[:, :-1].bool()], ids[:, 1:][m[:, :-1].bool()]),
            "Kept by the input's mask",
        ),
        (lambda lg, ids, m: _right(lg, ids, m) / math.log(2), "in bits"),
        (
            lambda lg, ids, m: F.cross_entropy(
                lg[:, :-1][m[:, 1:].bool()], ids[:, 1:][m[:, 1:].bool()], reduction="sum"
            ),
            "sum over predicted tokens",
        ),
        (_per_row, "Each caption was averaged first"),
        (
            lambda lg, ids, m: -lg[:, :-1].gather(-1, ids[:, 1:, None])[..., 0][m[:, 1:].bool()].mean(),
            "Logits are not log-probabilities",
        ),
        (
            lambda lg, ids, m: F.cross_entropy(lg[:, :-1].transpose(1, 2), ids[:, 1:], reduction="none"),
            "expected one number",
        ),
    ],
)
def test_next_token_loss_names_the_mistake(wrong, message, capsys):
    assert check_next_token_loss(wrong) is False
    assert message in capsys.readouterr().out


def test_next_token_loss_says_when_it_is_not_written_yet(capsys):
    def stub(logits, ids, mask):
        raise NotImplementedError

    assert check_next_token_loss(stub) is False
    assert "not written yet" in capsys.readouterr().out
