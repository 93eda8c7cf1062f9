"""Stage 04: the joint attention mask over [visual prefix | caption], padding and position ids.

    attention_mask (B, N + T): ones over the N prefix slots, then the text's own mask
    attention_bias (B, L, L):  0 where query i may attend to key j, -inf where it may not

GPT-2 is causal, so a caption token already sees every prefix slot before it: the prefix is the
first N positions, and the mask only has to say which slots are padding. Training pads on the
right (padding comes after every real token, so nothing real ever attends to it). Batched
generation pads on the left, so that every row's next token lands at the same place; then the
position ids must skip the padding, or the shorter rows would start at position 3 instead of 0.

The model hands GPT-2 the full (B, 1, L, L) bias, from `attention_bias` (notebook 04's exercise, so
a learner's own can stand in): with `prefix_lm` the image slots see the whole image as well, not
only the slots before them (a "prefix-LM" mask); the caption stays causal either way.
"""

from __future__ import annotations

import torch


def joint_attention_mask(text_mask: torch.Tensor, n_prefix: int) -> torch.Tensor:
    """(B, T) text mask -> (B, N + T): the whole prefix is visible, padding is not."""
    prefix = torch.ones(text_mask.shape[0], n_prefix, dtype=text_mask.dtype, device=text_mask.device)
    return torch.cat([prefix, text_mask], dim=1)


def attention_bias(mask: torch.Tensor) -> torch.Tensor:
    """(B, L) mask, 1 on real slots -> (B, L, L) float: 0.0 where query i may attend to key j
    (j <= i and j is real), -inf elsewhere."""
    length = mask.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=mask.device).tril()  # (L, L): j <= i
    allowed = causal & mask.bool()[:, None, :]  # (B, L, L): no query attends to a padded key
    return torch.zeros(allowed.shape, device=mask.device).masked_fill(~allowed, float("-inf"))


def open_prefix(bias: torch.Tensor, n_prefix: int) -> torch.Tensor:
    """A (B, L, L) causal bias -> the prefix-LM one: the first `n_prefix` slots also see each other
    (the image, read both ways); the rest keep their rows."""
    bias = bias.clone()
    bias[:, :n_prefix, :n_prefix] = 0.0
    return bias


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """(B, L) -> 0, 1, 2, ... counted over real slots only; padding gets 0 (it is never attended)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def left_pad(embeds: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of different lengths (each (L_i, D)) -> left-padded (B, L, D), mask (B, L), position ids (B, L)."""
    width = max(e.shape[0] for e in embeds)
    out = embeds[0].new_zeros(len(embeds), width, embeds[0].shape[-1])
    mask = torch.zeros(len(embeds), width, dtype=torch.long, device=embeds[0].device)
    for i, e in enumerate(embeds):
        out[i, width - e.shape[0] :] = e
        mask[i, width - e.shape[0] :] = 1
    return out, mask, position_ids(mask)


def attention_matrix(mask: torch.Tensor) -> torch.Tensor:
    """One sample's (L,) mask -> the (L, L) matrix of who attends to whom: row i, column j is 1 where
    position i may attend to position j (causal, j <= i, and j is not padding). For pictures."""
    length = mask.shape[-1]
    return torch.ones(length, length, dtype=torch.long).tril() * mask.long().view(1, length)
