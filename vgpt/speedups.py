"""Performance: the training forward with less work, for the same loss and gradients (tests prove both).

Shared prefix. Flickr8k gives five captions per image. The plain forward (`VisionGPT2.forward`) runs
GPT-2 over the whole 257-token prefix once for every caption, and the head scores every slot,
although only the slots before a caption token have a label. Here each image is one row:

    row i:  [prefix of image i (N slots) | caption a's tokens | caption b's tokens | ...]  rows padded
    mask:   a prefix slot sees the slots before it; a caption token its image's whole prefix and the
            tokens before it in its own caption, never another caption; positions restart at N for each

so that one pass of GPT-2 over the rows gives every caption token exactly what the plain forward
gives it, and the prefix's keys and values are computed once and never copied. The head then runs
only on the rows that predict a caption token (slot N-1 predicts each caption's first). The lean
forward is the same with one caption per row. GPT-2's `gelu_new`, nine elementwise passes, becomes
torch's fused tanh GELU: the same formula in one kernel, to float rounding.

Both use the package's own prefix and mask stages: `train` takes them only where no learner's
stage stands in for those.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutput


def group_by_image(image_ids: list[str]) -> tuple[list[str], torch.Tensor]:
    """Image ids of a batch of captions -> the distinct images (first-seen order) and, per caption,
    the index of its image among them (the *owner*)."""
    distinct = list(dict.fromkeys(image_ids))
    where = {image: i for i, image in enumerate(distinct)}
    return distinct, torch.tensor([where[i] for i in image_ids], dtype=torch.long)


def packing(input_ids, text_mask, owner, n: int) -> dict:
    """Captions (B, T) and `owner` (B,) of I images with an N-slot prefix -> the rows' layout (CPU tensors):
    `source` (I, C) the index in `input_ids.flatten()` of each caption slot's token (0 on padding),
    `positions` (I, L), `allowed` (I, 1, L, L) who sees whom (L = N + C), and `rows` (B, 1 + T) the slots
    of [N-1 | caption] that are real, `head` (R,) where their outputs sit in the (I * L) rows, `labels` (R,)."""
    ids, mask, owner = input_ids.cpu(), text_mask.cpu().bool(), owner.cpu()
    b, t = mask.shape
    before = F.one_hot(owner) * mask.sum(1, keepdim=True)  # (B, I): each caption's length, in its image's column
    start = (before.cumsum(0) - before).gather(1, owner[:, None])  # (B, 1): tokens of the image's earlier captions
    images, c = before.shape[1], int(before.sum(0).max())
    slot = (owner[:, None] * c + start + torch.arange(t))[mask]  # where each real token goes in the (I * C) slots

    def placed(values):  # (B, T) -> (I, C): each real token's value in its slot, 0 on the padding
        return torch.zeros(images * c, dtype=torch.long).index_put_((slot,), values.expand(b, t)[mask]).view(images, c)

    # 0: the prefix, and the padding, which comes last in a row: no real token is late enough to see it
    seen = torch.cat([torch.zeros(images, n, dtype=torch.long), placed(torch.arange(1, b + 1)[:, None])], 1)
    causal = torch.ones(n + c, n + c, dtype=torch.bool).tril()
    rows = torch.cat([torch.ones(b, 1, dtype=torch.bool), mask], 1)  # (B, 1 + T)
    shift = torch.cat([torch.zeros(b, 1, dtype=torch.long), start + torch.arange(1, t + 1)], 1)  # slot N-1, then tokens
    return dict(
        source=placed(torch.arange(b * t).view(b, t)),
        positions=torch.cat([torch.arange(n).expand(images, n), placed(n + torch.arange(t))], 1),
        allowed=(causal & ((seen[:, None] == 0) | (seen[:, None] == seen[:, :, None])))[:, None],
        rows=rows,
        head=(owner[:, None] * (n + c) + n - 1 + shift)[rows],
        labels=F.pad(ids.masked_fill(~mask, -100), (0, 1), value=-100)[rows],
    )


def gpt2_rows(gpt2, embeds, positions, allowed):
    """GPT-2's transformer (with its LoRA layers) over embeds (I, L, Dt) at `positions` (I, L), attention
    allowed where `allowed` (I, 1, L, L) says -> the last hidden states (I, L, Dt): the computation of
    `gpt2.transformer(inputs_embeds=..., attention_mask=..., position_ids=...)`, written out."""
    body = gpt2.transformer
    h = body.drop(embeds + body.wpe(positions))
    for block in body.h:
        attn, mlp = block.attn, block.mlp
        q, k, v = attn.c_attn(block.ln_1(h)).unflatten(-1, (3, attn.num_heads, -1)).permute(2, 0, 3, 1, 4)
        p = attn.attn_dropout.p if attn.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, allowed, p, scale=attn.scaling).transpose(1, 2).flatten(2)
        h = h + attn.resid_dropout(attn.c_proj(a))
        x = mlp.c_fc(block.ln_2(h))
        h = h + mlp.dropout(mlp.c_proj(F.gelu(x, approximate="tanh") if _gelu_new(mlp.act) else mlp.act(x)))
    return body.ln_f(h)


def shared_prefix_forward(model, input_ids, text_mask, owner, pixel_values=None, features=None):
    """Captions (B, T) with their mask, `owner` (B,) indexing the I images of `pixel_values` or
    `features` (I, ...). Returns the output over [slot N-1 | caption]: `.logits` (B, 1 + T, V), zero on
    padding, and `.loss`, which equals `model(input_ids, text_mask, features=features[owner]).loss`."""
    prefix = model.visual_prefix(pixel_values=pixel_values, features=features)  # (I, N, Dt)
    gpt2, device = model.gpt2, prefix.device
    rows = {k: v.to(device) for k, v in packing(input_ids, text_mask, owner, prefix.shape[1]).items()}
    tokens = model.token_embeddings(input_ids.flatten()[rows["source"]]).to(prefix.dtype)  # (I, C, Dt)
    hidden = gpt2_rows(gpt2, torch.cat([prefix, tokens], 1), rows["positions"], rows["allowed"])
    logits = gpt2.lm_head(hidden.flatten(0, 1)[rows["head"]])  # (R, V): only the real slots
    loss = F.cross_entropy(logits.float(), rows["labels"], ignore_index=-100)
    laid_out = logits.new_zeros(*rows["rows"].shape, logits.shape[-1]).index_put_((rows["rows"],), logits)
    return CausalLMOutput(loss=loss, logits=laid_out)


def caption_tokens_forward(model, input_ids, text_mask, features):
    """Captions (B, T) with their mask and their images' features (B, N, Dv). Returns `.logits`
    (B, T, V), each slot's prediction of caption token t, and `.loss`, which equals
    `model(input_ids, text_mask, features=features).loss`."""
    out = shared_prefix_forward(model, input_ids, text_mask, torch.arange(len(input_ids)), features=features)
    return CausalLMOutput(loss=out.loss, logits=out.logits[:, :-1])


def _gelu_new(act: nn.Module) -> bool:
    return type(act).__name__ == "NewGELUActivation"


def fuse_gelu(lm: nn.Module) -> int:
    """Replace Hugging Face's `NewGELUActivation` (gelu_new) modules with torch's fused tanh GELU, in
    place; returns how many were replaced. Equal up to float rounding."""
    found = [(parent, name) for parent in lm.modules() for name, child in parent.named_children() if _gelu_new(child)]
    for parent, name in found:
        setattr(parent, name, nn.GELU(approximate="tanh"))
    return len(found)
