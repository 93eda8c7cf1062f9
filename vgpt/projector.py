"""Stage 02: map vision features into GPT-2's embedding space.

    features (B, N, Dv) --projector--> prefix embeddings (B, N, Dt)

The seed uses one Linear(1024 -> 768). The MLP variant (Linear, GELU, Linear) is LLaVA-1.5's.
CLIP's hidden states are far larger than GPT-2's token embeddings (a few units per coordinate
against about 0.1), so the output is scaled at initialization to the size of the language model's
own embeddings: the prefix starts out looking, in magnitude, like text.

Both computations are plain functions of the weights, the signatures of notebook 02's exercises,
so that a learner's own `mlp_projector` or `rms_scale` can stand in for the package's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp_projector(features, w1, b1, w2, b2):
    """features (B, N, Dv), w1 (H, Dv), b1 (H,), w2 (Dt, H), b2 (Dt,) -> (B, N, Dt): Linear, GELU
    (exact), Linear, with the weights stored (out, in) as nn.Linear's."""
    return F.gelu(features @ w1.T + b1) @ w2.T + b2


def linear_projector(features, w, b):
    """features (B, N, Dv), w (Dt, Dv), b (Dt,) -> (B, N, Dt)."""
    return features @ w.T + b


class LinearProjector(nn.Linear):
    """Linear(Dv -> Dt), computed by `fn(features, w, b)` (`linear_projector` unless a learner's stands in)."""

    def __init__(self, vision_width: int, text_width: int, fn=None):
        super().__init__(vision_width, text_width)
        self.kind, self.fn = "linear", fn or linear_projector

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fn(features, self.weight, self.bias)


class MLPProjector(nn.Sequential):
    """Linear(Dv -> Dt), GELU, Linear(Dt -> Dt), computed by `fn(features, w1, b1, w2, b2)`
    (`mlp_projector` unless a learner's stands in)."""

    def __init__(self, vision_width: int, text_width: int, fn=None):
        super().__init__(nn.Linear(vision_width, text_width), nn.GELU(), nn.Linear(text_width, text_width))
        self.kind, self.fn = "mlp", fn or mlp_projector

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fn(features, self[0].weight, self[0].bias, self[2].weight, self[2].bias)


def build_projector(kind: str, vision_width: int, text_width: int, fn=None) -> nn.Module:
    """`linear` or `mlp`, its computation `fn` (the package's by default)."""
    if kind not in ("linear", "mlp"):
        raise ValueError(f"unknown projector {kind!r}; choose 'linear' or 'mlp'")
    return (LinearProjector if kind == "linear" else MLPProjector)(vision_width, text_width, fn)


def rms_scale(prefix, table) -> float:
    """prefix (B, N, D), table (V, D) -> RMS(table) / RMS(prefix), RMS(x) = sqrt(mean(x ** 2)) over all of x."""
    return (table.pow(2).mean().sqrt() / prefix.pow(2).mean().sqrt().clamp_min(1e-8)).item()


@torch.no_grad()
def match_embedding_scale(
    projector: nn.Module, features: torch.Tensor, token_embeddings: torch.Tensor, scale=rms_scale
) -> float:
    """Rescale the projector's last layer so that projected `features` have the RMS of
    `token_embeddings` (by `scale`, the factor's formula). Returns the factor applied."""
    last = [m for m in projector.modules() if isinstance(m, nn.Linear)][-1]
    factor = float(scale(projector(features.float()), token_embeddings.float()))
    last.weight.mul_(factor)
    last.bias.mul_(factor)
    return factor
