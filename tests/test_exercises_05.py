"""Notebook 05's checkers accept the worked solutions and name the usual wrong answers."""

import math

import pytest
import torch
from conftest import exercise_solution
from torch import nn

from vgpt.course.exercises import check_lora_conv1d, check_lora_forward
from vgpt.lora import LoRAConv1D

STEM = "05_lora_injection"

WRONG_FORWARD = {
    "missing the alpha / r scaling": lambda x, w, b, a, bb, alpha: x @ w + b + x @ a.T @ bb.T,
    "scaled by alpha alone": lambda x, w, b, a, bb, alpha: x @ w + b + (x @ a.T @ bb.T) * alpha,
    "upside down": lambda x, w, b, a, bb, alpha: x @ w + b + (x @ a.T @ bb.T) * (a.shape[0] / alpha),
    "the nn.Linear way": lambda x, w, b, a, bb, alpha: x @ w.T + b + (x @ a.T @ bb.T) * (alpha / a.shape[0]),
    "forgot the bias": lambda x, w, b, a, bb, alpha: x @ w + (x @ a.T @ bb.T) * (alpha / a.shape[0]),
}


def _wrapper(linear_shapes=False, scaling="alpha / r", b_init="zeros", a_init="random", freeze=True):
    """lora_conv1d with one mistake switched on."""

    def make(conv, r, alpha):
        class Wrapped(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = conv.requires_grad_(not freeze)
                fan_in, fan_out = conv.weight.shape
                if linear_shapes:  # read as nn.Linear's (out, in)
                    fan_out, fan_in = fan_in, fan_out
                self.lora_A = nn.Parameter(torch.empty(r, fan_in))
                self.lora_B = nn.Parameter(torch.zeros(fan_out, r))
                if a_init == "random":
                    nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
                else:
                    nn.init.zeros_(self.lora_A)
                if b_init == "random":
                    nn.init.kaiming_uniform_(self.lora_B, a=math.sqrt(5))
                self.scaling = {"alpha / r": alpha / r, "none": 1.0, "alpha": alpha}[scaling]

            def forward(self, x):
                return self.conv(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

        return Wrapped()

    return make


WRONG_WRAPPERS = {
    "A/B shapes swapped": _wrapper(linear_shapes=True),
    "missing the alpha / r scaling": _wrapper(scaling="none"),
    "scaled by alpha alone": _wrapper(scaling="alpha"),
    "lora_B must start at zero": _wrapper(b_init="random"),
    "both start at zero": _wrapper(a_init="zeros"),
    "the wrapped Conv1D still trains": _wrapper(freeze=False),
}


def test_lora_forward_accepts_the_worked_solution(capsys):
    assert check_lora_forward(exercise_solution(STEM, "lora_forward")) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", list(WRONG_FORWARD))
def test_lora_forward_names_the_mistake(mistake, capsys):
    assert check_lora_forward(WRONG_FORWARD[mistake]) is False
    assert mistake in capsys.readouterr().out


def test_lora_conv1d_accepts_the_worked_solution(capsys):
    assert check_lora_conv1d(exercise_solution(STEM, "lora_conv1d")) is True
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize("mistake", list(WRONG_WRAPPERS))
def test_lora_conv1d_names_the_mistake(mistake, capsys):
    assert check_lora_conv1d(WRONG_WRAPPERS[mistake]) is False
    assert mistake in capsys.readouterr().out


def test_lora_conv1d_refuses_the_package(capsys):
    assert check_lora_conv1d(LoRAConv1D) is False
    assert "vgpt's own" in capsys.readouterr().out
