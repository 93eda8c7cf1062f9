"""Naming a wrong answer: compare it with the wrong answers a checker knows, and show small tensors whole.

A checker computes, beside the right answer, the answers that the usual
mistakes give on the same input (labels set by token id, a missing scaling,
rows instead of columns...). When the student's answer equals one of them,
the message names that mistake instead of pointing at an index.
"""

from __future__ import annotations

import torch

from .grading import Wrong
from .wire import kind


def matches(got, expected: torch.Tensor, atol: float = 1e-5) -> bool:
    """Same shape and values (infinities equal to themselves), whatever the dtypes."""
    if not torch.is_tensor(got) or got.shape != expected.shape:
        return False
    return bool(torch.allclose(got.double(), expected.double(), atol=atol, rtol=1e-4))


def show(t: torch.Tensor) -> str:
    """A small tensor whole (as nested lists), a large one by its shape."""
    if t.numel() <= 64:
        return str(t.tolist())
    return f"a tensor of shape {tuple(t.shape)}"


def name_the_mistake(
    got, expected: torch.Tensor, what: str, known: list[tuple[torch.Tensor, str]], atol: float = 1e-5
) -> None:
    """Return if `got` equals `expected`; else raise `Wrong` naming the first known mistake it equals,
    or saying what differs (small tensors printed whole)."""
    if not torch.is_tensor(got):
        raise Wrong(f"expected a tensor for {what}, got {kind(got)}")
    if matches(got, expected, atol):
        return
    for wrong, message in known:
        if matches(got, wrong, atol):
            raise Wrong(message)
    if got.shape != expected.shape:
        raise Wrong(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    raise Wrong(f"{what} is {show(got)}, expected {show(expected)}")
