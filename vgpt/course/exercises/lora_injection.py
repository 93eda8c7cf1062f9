"""The checkers of notebook 05's exercises."""

from __future__ import annotations

import torch

from .grading import grade, same


def check_lora_forward(fn) -> bool:
    """`fn(x, weight (in, out), bias, A (r, in), B (out, r), alpha) -> y`: a GPT-2 Conv1D layer
    (y = x W + b) plus the LoRA detour (alpha / r) x A^T B^T."""
    torch.manual_seed(0)

    def run(r, alpha, what):
        def case(f):
            x, w, b = torch.randn(2, 3, 6), torch.randn(6, 4), torch.randn(4)
            a, bb = torch.randn(r, 6), torch.randn(4, r)
            expected = x @ w + b + (x @ a.T @ bb.T) * (alpha / r)
            same(f(x, w, b, a, bb, alpha), expected, what, atol=1e-4)
        return case

    def starts_as_base(f):
        x, w, b = torch.randn(1, 2, 6), torch.randn(6, 4), torch.randn(4)
        same(f(x, w, b, torch.randn(2, 6), torch.zeros(4, 2), 4), x @ w + b, "output with B = 0 (the base layer)")

    return grade("lora_forward", fn, [("B = 0", starts_as_base), ("r 2, alpha 4", run(2, 4, "output")),
                                       ("r 3, alpha 3", run(3, 3, "output (scaling alpha / r = 1)"))])
