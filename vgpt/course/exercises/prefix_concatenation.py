"""The checkers of notebook 03's exercises."""

from __future__ import annotations

import torch

from ...prefix import caption_labels
from .grading import grade, same


def check_caption_labels(fn) -> bool:
    """`fn(ids (B, T), text_mask (B, T), n_prefix) -> labels (B, N + T)`: -100 on the prefix and on
    padding, the token id elsewhere, set by position."""
    eos = 0

    def run(ids, mask, n, what):
        def case(f):
            same(f(ids, mask, n), caption_labels(ids, mask, n), what)
        return case

    ids = torch.tensor([[5, 6, 7, eos], [8, eos, eos, eos]])  # row 2: its own end-of-text, then padding
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    inside = torch.tensor([[9, eos, 4, eos]])  # a caption containing the pad id in its middle
    return grade("caption_labels", fn, [
        ("two padded captions, 3 prefix slots", run(ids, mask, 3, "labels")),
        ("end-of-text is also the pad id", run(ids, mask, 1, "labels (the first end-of-text of row 2 "
                                                            "is a label: the model must learn to stop)")),
        ("a pad id inside a caption", run(inside, torch.ones_like(inside), 2, "labels"))])
