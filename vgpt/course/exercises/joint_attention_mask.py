"""The checkers of notebook 04's exercises."""

from __future__ import annotations

import torch

from ...masks import position_ids_from_mask
from .grading import Wrong, grade, same


def check_position_ids(fn) -> bool:
    """`fn(mask (B, L)) -> position ids (B, L)` for left-padded rows: 0, 1, 2, ... over the real slots.
    What the padding slots get does not matter (nothing attends to them)."""
    def run(mask, what):
        def case(f):
            got, expected = f(mask), position_ids_from_mask(mask)
            if not torch.is_tensor(got) or got.shape != mask.shape:
                raise Wrong(f"expected a tensor of shape {tuple(mask.shape)}")
            real = mask.bool()
            same(got[real], expected[real], f"positions of the real slots ({what})")
        return case

    return grade("position_ids", fn, [
        ("no padding", run(torch.ones(1, 5, dtype=torch.long), "one full row")),
        ("left padding", run(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]), "three rows"))])
