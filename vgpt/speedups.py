"""Performance: the training forward with less work, for the same loss and gradients (tests prove both).

Shared prefix. Flickr8k gives five captions per image. The plain forward (`VisionGPT2.forward`) runs
GPT-2 over the whole 257-token prefix once for every caption, and the head scores all 257 prefix
slots although none of them has a label. Here the prefix runs once per image:

    prefix (I, N, Dt) --GPT-2 body over slots 0 .. N-2, KV cache on--> keys, values (I rows)
    cache rows copied to each caption's image (owner)                --> keys, values (B rows)
    [slot N-1 | caption tokens] (B, 1 + T, Dt) --GPT-2 with the cache--> logits (B, 1 + T, V), loss

Slot N-1 goes with the captions because its output predicts each caption's first token. The copy
is an `index_select`, so in the backward pass the gradients of all of an image's captions add up
in its shared rows.

Lean forward. With one caption per sequence, GPT-2's head runs only on the slots that predict a
caption token (on `tiny` the 17 prefix slots are about 60% of a sequence), and GPT-2's `gelu_new`,
nine elementwise passes over the (B, L, 4 Dt) activations, becomes torch's fused tanh GELU: the
same formula in one kernel.

Both use the package's own prefix and mask stages: `train` takes them only where no learner's
stage stands in for those.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

from .masks import joint_attention_mask
from .prefix import caption_labels, concat_prefix


def group_by_image(image_ids: list[str]) -> tuple[list[str], torch.Tensor]:
    """Image ids of a batch of captions -> the distinct images (first-seen order) and, per caption,
    the index of its image among them (the *owner*)."""
    distinct = list(dict.fromkeys(image_ids))
    where = {image: i for i, image in enumerate(distinct)}
    return distinct, torch.tensor([where[i] for i in image_ids], dtype=torch.long)


def shared_prefix_forward(model, input_ids, text_mask, owner, pixel_values=None, features=None):
    """Captions (B, T) with their mask, `owner` (B,) indexing the I images of `pixel_values` or
    `features` (I, ...). Returns the output over [slot N-1 | caption]: `.logits` (B, 1 + T, V) and
    `.loss`, which equals `model(input_ids, text_mask, features=features[owner]).loss`."""
    prefix = model.visual_prefix(pixel_values=pixel_values, features=features)  # (I, N, Dt)
    owner = owner.to(prefix.device)
    cache = model.gpt2.transformer(inputs_embeds=prefix[:, :-1], use_cache=True).cache  # one pass per image
    cache.reorder_cache(owner)  # rows (I) -> (B): each caption gets its image's keys and values
    embeds = torch.cat([prefix[owner, -1:], model.token_embeddings(input_ids).to(prefix.dtype)], dim=1)
    mask = joint_attention_mask(text_mask, prefix.shape[1])  # (B, N + T): the cached slots count too
    labels = caption_labels(input_ids, text_mask, 1)  # (B, 1 + T): slot N-1 has no label of its own
    return model.lm(inputs_embeds=embeds, attention_mask=mask, cache=cache, labels=labels)


def fuse_gelu(lm: nn.Module) -> int:
    """Replace Hugging Face's `NewGELUActivation` (gelu_new) modules with torch's fused tanh GELU, in
    place; returns how many were replaced. Equal up to float rounding."""
    found = [
        (parent, name)
        for parent in lm.modules()
        for name, child in parent.named_children()
        if type(child).__name__ == "NewGELUActivation"
    ]
    for parent, name in found:
        setattr(parent, name, nn.GELU(approximate="tanh"))
    return len(found)


def caption_tokens_forward(model, input_ids, text_mask, features):
    """Captions (B, T) with their mask and their images' features (B, N, Dv). Returns `.logits`
    (B, T, V), each slot's prediction of caption token t, and `.loss`, which equals
    `model(input_ids, text_mask, features=features).loss`."""
    prefix = model.visual_prefix(features=features)  # (B, N, Dt)
    n = prefix.shape[1]
    embeds = concat_prefix(prefix, model.token_embeddings(input_ids))  # (B, N + T, Dt)
    hidden = model.gpt2.transformer(inputs_embeds=embeds, attention_mask=joint_attention_mask(text_mask, n))
    logits = model.gpt2.lm_head(hidden.last_hidden_state[:, n - 1 : -1])  # (B, T, V)
    labels = input_ids.masked_fill(text_mask == 0, -100)  # (B, T)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
    return CausalLMOutput(loss=loss, logits=logits)
