"""Stage 03: put the visual prefix in front of the caption, and say what to learn.

    prefix (B, N, Dt) ++ token embeddings (B, T, Dt) -> inputs_embeds (B, N + T, Dt)
    labels (B, N + T): -100 on the prefix and on padding, the token id elsewhere

Labels are set **by position** (from the mask), never by token id. GPT-2 has
no padding token, so the usual trick pads with end-of-text; masking labels
"where id == pad" would then also mask the caption's own end-of-text, and a
model that never learns to stop loops until the length limit. Here every
caption ends with end-of-text, and that end-of-text is a label.

`prefix_inputs` is the whole stage, with the signature of notebook 03's exercise, so that a
learner's own can stand in for it in the model.
"""

from __future__ import annotations

import torch


def right_pad(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows of different lengths -> ids (B, T) padded on the right with `pad`, and mask (B, T)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


def tokenize_captions(tokenizer, captions: list[str], max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions -> ids (B, T) ending in end-of-text, right-padded, and their mask (B, T).

    A caption longer than `max_tokens` is cut so that end-of-text is still last.
    """
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rows = [tokenizer(c.strip(), add_special_tokens=False).input_ids[: max_tokens - 1] + [eos] for c in captions]
    return right_pad(rows, pad)


def caption_labels(ids: torch.Tensor, text_mask: torch.Tensor, n_prefix: int) -> torch.Tensor:
    """(B, N + T) labels: -100 on the N prefix slots and wherever the text mask is 0."""
    text = ids.masked_fill(text_mask == 0, -100)
    prefix = torch.full((ids.shape[0], n_prefix), -100, dtype=ids.dtype, device=ids.device)
    return torch.cat([prefix, text], dim=1)


def concat_prefix(prefix: torch.Tensor, token_embeds: torch.Tensor) -> torch.Tensor:
    """(B, N, Dt) and (B, T, Dt) -> (B, N + T, Dt)."""
    if prefix.shape[-1] != token_embeds.shape[-1]:
        raise ValueError(f"prefix width {prefix.shape[-1]} != token embedding width {token_embeds.shape[-1]}")
    return torch.cat([prefix.to(token_embeds.dtype), token_embeds], dim=1)


def prefix_inputs(prefix, ids, text_mask, embedding):
    """prefix (B, N, Dt), ids (B, T) right-padded, text_mask (B, T), embedding GPT-2's token table ->
    inputs_embeds (B, N + T, Dt) and labels (B, N + T): -100 on the prefix and on padding."""
    return concat_prefix(prefix, embedding(ids)), caption_labels(ids, text_mask, prefix.shape[1])
