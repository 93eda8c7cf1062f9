"""Naming a wrong number: the answers that the usual mistakes give, compared with the student's.

The counterpart of `mistakes.py` for exercises whose answer is one number (a
parameter count, a loss, a scale factor): a checker computes the right number
and the numbers that known mistakes give on the same input, and the message
names the mistake whose number the student's answer equals.
"""

from __future__ import annotations

import math

import torch

from .grading import Wrong
from .mistakes import show
from .wire import kind


def one_number(got, what: str) -> float:
    """`got` as a float if it is one number (a Python number or a one-element tensor), else `Wrong`."""
    if torch.is_tensor(got) and got.numel() == 1:
        return float(got)
    if isinstance(got, (int, float)) and not isinstance(got, bool):
        return float(got)
    shown = show(got) if torch.is_tensor(got) else repr(got)
    raise Wrong(f"expected one number for {what}, got {kind(got)} {shown}")


def name_the_number(got: float, expected: float, known: list[tuple[float, str]], on: str = "", tol=1e-5) -> None:
    """Return if `got` is `expected`; else raise `Wrong` naming the first known mistake that gives `got`.
    `on` describes the input where that helps (small tensors whole)."""
    if math.isclose(got, expected, rel_tol=tol, abs_tol=tol):
        return
    for wrong, message in known:
        if math.isclose(got, wrong, rel_tol=tol, abs_tol=tol):
            raise Wrong(f"got {got:g}{on}. {message}")
    raise Wrong(f"got {got:g}, expected {expected:g}{on}")
