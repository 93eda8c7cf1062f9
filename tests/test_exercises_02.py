"""Notebook 02's checkers accept the worked solutions and name the usual mistakes."""

import pytest
import torch
import torch.nn.functional as F
from conftest import exercise_solution

from vgpt.course.exercises import check_mlp_projector, check_rms_scale
from vgpt.course.exercises.projector import _mlp
from vgpt.projector import match_embedding_scale

STEM = "02_projector"


def test_mlp_projector_accepts_the_worked_solution_and_the_modules(capsys):
    assert check_mlp_projector(exercise_solution(STEM, "mlp_projector")) is True

    def with_modules(x, w1, b1, w2, b2):  # F.linear computes x @ w.T + b
        return F.linear(torch.nn.GELU()(F.linear(x, w1, b1)), w2, b2)

    assert check_mlp_projector(with_modules) is True
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, w1, b1, w2, b2: F.gelu(x @ w1 + b1) @ w2 + b2, "without their transpose"),
        (lambda x, w1, b1, w2, b2: (x @ w1.T + b1) @ w2.T + b2, "no activation between the layers"),
        (lambda x, w1, b1, w2, b2: F.relu(x @ w1.T + b1) @ w2.T + b2, "ReLU instead of GELU"),
        (lambda x, w1, b1, w2, b2: F.gelu(x @ w1.T + b1, approximate="tanh") @ w2.T + b2, "tanh approximation"),
        (lambda x, w1, b1, w2, b2: F.gelu(F.gelu(x @ w1.T + b1) @ w2.T + b2), "after the second layer too"),
        (lambda x, w1, b1, w2, b2: F.gelu(x @ w1.T) @ w2.T, "biases b1 and b2 are missing"),
        (lambda x, w1, b1, w2, b2: F.gelu(x @ w1.T + b1), "only the first layer"),
        (lambda x, w1, b1, w2, b2: (F.gelu(x @ w1.T + b1) @ w2.T + b2)[:, :1], "has shape"),
    ],
)
def test_mlp_projector_names_the_mistake(wrong, message, capsys):
    assert check_mlp_projector(wrong) is False
    assert message in capsys.readouterr().out


def test_mlp_projector_explains_a_shape_error_by_the_weight_layout(capsys):
    def untransposed(x, w1, b1, w2, b2):
        if w1.shape[0] != w1.shape[1]:
            return F.gelu(x @ w1 + b1) @ w2 + b2  # raises: (.., Dv) @ (H, Dv)
        return F.gelu(x @ w1.T + b1) @ w2.T + b2  # right on the square case

    assert check_mlp_projector(untransposed) is False
    assert "nn.Linear stores its weight as (out, in)" in capsys.readouterr().out


def test_mlp_projector_refuses_vgpts_own(capsys):
    assert check_mlp_projector(_mlp) is False
    assert "vgpt's own" in capsys.readouterr().out


def test_rms_scale_accepts_the_worked_solution_and_a_tensor_answer(capsys):
    assert check_rms_scale(exercise_solution(STEM, "rms_scale")) is True
    assert check_rms_scale(lambda p, t: t.pow(2).mean().sqrt() / p.pow(2).mean().sqrt()) is True
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda p, t: (t.std() / p.std()).item(), "ratio of standard deviations"),
        (lambda p, t: (p.pow(2).mean().sqrt() / t.pow(2).mean().sqrt()).item(), "Upside down"),
        (lambda p, t: (t.pow(2).mean() / p.pow(2).mean()).item(), "square root is missing"),
        (lambda p, t: (t.abs().mean() / p.abs().mean()).item(), "mean absolute values"),
        (lambda p, t: (t.norm(dim=-1).mean() / p.norm(dim=-1).mean()).item(), "mean vector lengths"),
        (lambda p, t: t.pow(2).mean(-1).sqrt() / p.pow(2).mean(-1).sqrt().mean(), "expected one number"),
    ],
)
def test_rms_scale_names_the_mistake(wrong, message, capsys):
    assert check_rms_scale(wrong) is False
    assert message in capsys.readouterr().out


def test_rms_scale_refuses_vgpts_own(capsys):
    assert check_rms_scale(match_embedding_scale) is False
    assert "vgpt's own" in capsys.readouterr().out
