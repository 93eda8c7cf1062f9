"""The checkers of notebook 07's exercises."""

from __future__ import annotations

import torch

from .grading import Wrong, grade, same


def check_top_k_filter(fn) -> bool:
    """`fn(logits (B, V), k) -> (B, V)`: the k largest logits of each row kept as they are,
    every other one set to -inf (so softmax gives it probability 0)."""
    torch.manual_seed(0)

    def run(k):
        def case(f):
            logits = torch.randn(3, 11)
            got = f(logits.clone(), k)
            keep = logits >= logits.topk(k, dim=-1).values[:, -1:]
            expected = logits.masked_fill(~keep, float("-inf"))
            if not torch.is_tensor(got) or got.shape != logits.shape:
                raise Wrong(f"expected a tensor of shape {tuple(logits.shape)}, in the original order")
            if not torch.equal(torch.isinf(got), ~keep):
                raise Wrong(f"with k={k} each row must keep exactly its {k} largest logits")
            same(got[keep], expected[keep], "the kept logits (unchanged)")

        return case

    return grade("top_k_filter", fn, [("k = 1", run(1)), ("k = 4", run(4)), ("k = V", run(11))])
