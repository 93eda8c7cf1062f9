"""The checkers of notebook 01's exercises."""

from __future__ import annotations

import torch
from torch import nn

from .grading import grade, same


def _patches(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    b, c, h, w = pixels.shape
    grid = pixels.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, C, H/p, W/p, p, p)
    return grid.permute(0, 2, 3, 1, 4, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def check_patchify(fn) -> bool:
    """`fn(pixels (B, C, H, W), patch) -> (B, P, C * patch * patch)`, patches row by row, each
    flattened channel-first, as a ViT's patch embedding (a strided convolution) reads them."""
    torch.manual_seed(0)

    def square(f):
        x = torch.randn(2, 3, 8, 8)
        same(f(x, 4), _patches(x, 4), "patches of a 2 x 3 x 8 x 8 batch, patch 4")

    def wide(f):
        x = torch.arange(3 * 4 * 12, dtype=torch.float).view(1, 3, 4, 12)
        same(f(x, 2), _patches(x, 2), "patches of a wide 4 x 12 image, patch 2 (row order matters)")

    def like_the_conv(f):
        conv = nn.Conv2d(3, 5, kernel_size=4, stride=4, bias=False)
        x = torch.randn(1, 3, 8, 12)
        expected = conv(x).flatten(2).transpose(1, 2)  # (1, P, 5)
        same(f(x, 4) @ conv.weight.reshape(5, -1).T, expected, "patches times the conv's weights", atol=1e-4)

    return grade("patchify", fn, [("a square image", square), ("a wide image", wide),
                                   ("the patch embedding", like_the_conv)])
