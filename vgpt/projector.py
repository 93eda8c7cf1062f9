"""Stage 02: map vision features into GPT-2's embedding space.

    features (B, N, Dv) --projector--> prefix embeddings (B, N, Dt)

The seed uses one Linear(1024 -> 768). The MLP variant (Linear, GELU, Linear)
is LLaVA-1.5's. CLIP's hidden states are far larger than GPT-2's token
embeddings (a few units per coordinate against about 0.1), so the output is
scaled at initialization to the size of the language model's own
embeddings: the prefix starts out looking, in magnitude, like text.
"""

from __future__ import annotations

import torch
from torch import nn


def build_projector(kind: str, vision_width: int, text_width: int, hidden: int | None = None) -> nn.Module:
    """`linear`: Linear(Dv -> Dt). `mlp`: Linear(Dv -> H), GELU, Linear(H -> Dt), H = Dt by default."""
    if kind == "linear":
        return nn.Linear(vision_width, text_width)
    if kind == "mlp":
        hidden = hidden or text_width
        return nn.Sequential(nn.Linear(vision_width, hidden), nn.GELU(), nn.Linear(hidden, text_width))
    raise ValueError(f"unknown projector {kind!r}; choose 'linear' or 'mlp'")


@torch.no_grad()
def match_embedding_scale(projector: nn.Module, features: torch.Tensor, token_embeddings: torch.Tensor) -> float:
    """Rescale the projector's last layer so that projected `features` have the
    RMS of `token_embeddings`. Returns the factor applied."""
    last = [m for m in projector.modules() if isinstance(m, nn.Linear)][-1]
    out = projector(features.float())
    factor = float(token_embeddings.float().pow(2).mean().sqrt() / out.pow(2).mean().sqrt().clamp_min(1e-8))
    last.weight.mul_(factor)
    last.bias.mul_(factor)
    return factor
