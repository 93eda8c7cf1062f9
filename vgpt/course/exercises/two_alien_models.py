"""The checkers of notebook 00's exercises."""

from __future__ import annotations

import torch
from torch import nn

from .grading import equal_number, grade


def check_count_parameters(fn) -> bool:
    """`fn(module, trainable_only=False) -> int`: numbers in the module's parameters, each tensor once."""
    torch.manual_seed(0)

    def plain(f):
        equal_number(f(nn.Linear(3, 4)), 16, "Linear(3, 4) (weight 4 x 3 + bias 4)")

    def frozen(f):
        m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        m[0].requires_grad_(False)
        equal_number(f(m), 26, "all parameters of Linear(3,4) + Linear(4,2)")
        equal_number(f(m, trainable_only=True), 10, "trainable only, with the first layer frozen")

    def buffers_and_sharing(f):
        shared = nn.Linear(2, 2)
        m = nn.Sequential(shared, nn.BatchNorm1d(2), shared)  # a tied layer, and buffers that are not weights
        equal_number(f(m), 10, "a layer used twice (count it once) + BatchNorm (buffers are not parameters)")

    return grade("count_parameters", fn, [("a Linear layer", plain), ("a half-frozen model", frozen),
                                           ("tied weights and buffers", buffers_and_sharing)])
