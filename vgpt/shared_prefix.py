"""Performance: one visual prefix per image, shared by all of that image's captions.

Flickr8k gives five captions per image. The plain forward (`VisionGPT2.forward`)
runs GPT-2 over the whole 257-token prefix once for every caption, so each
image's prefix is computed five times, and the language-model head scores all
257 prefix slots although none of them has a label. Here the prefix runs once
per image:

    prefix (I, N, Dt) --GPT-2 body over slots 0 .. N-2, KV cache on--> keys, values (I rows)
    cache rows copied to each caption's image (owner)                --> keys, values (B rows)
    [slot N-1 | caption tokens] (B, 1 + T, Dt) --GPT-2 with the cache--> logits (B, 1 + T, V), loss

Slot N-1 goes with the captions because its output predicts each caption's
first token. The copy is an `index_select`, so in the backward pass the
gradients of all of an image's captions add up in its shared rows: the loss
and every gradient equal the plain computation's (a test checks both).
"""

from __future__ import annotations

import torch

from .lean_forward import caption_tokens_forward
from .masks import joint_attention_mask
from .prefix import caption_labels


def group_by_image(image_ids: list[str]) -> tuple[list[str], torch.Tensor]:
    """Image ids of a batch of captions -> the distinct images (first-seen order) and, per caption,
    the index of its image among them (the *owner*)."""
    distinct = list(dict.fromkeys(image_ids))
    where = {image: i for i, image in enumerate(distinct)}
    return distinct, torch.tensor([where[i] for i in image_ids], dtype=torch.long)


def shared_prefix_forward(
    model,
    input_ids: torch.Tensor,
    text_mask: torch.Tensor,
    owner: torch.Tensor,
    pixel_values: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
):
    """Captions (B, T) with their mask, `owner` (B,) indexing the I images of `pixel_values` or
    `features` (I, ...). Returns the language model's output over [slot N-1 | caption]: `.logits`
    (B, 1 + T, V) and `.loss`, which equals `model(input_ids, text_mask, features=features[owner]).loss`."""
    prefix = model.visual_prefix(pixel_values=pixel_values, features=features)  # (I, N, Dt)
    owner = owner.to(prefix.device)
    body = model.lm.get_base_model().transformer  # GPT-2 without its head; the LoRA layers are inside
    prefix_pass = body(inputs_embeds=prefix[:, :-1], use_cache=True)  # one pass per image, no logits
    cache = prefix_pass.cache
    cache.reorder_cache(owner)  # rows (I) -> (B): each caption gets its image's keys and values
    embeds = torch.cat([prefix[owner, -1:], model.token_embeddings(input_ids).to(prefix.dtype)], dim=1)
    mask = joint_attention_mask(text_mask, prefix.shape[1])  # (B, N + T): the cached slots count too
    labels = caption_labels(input_ids, text_mask, 1)  # (B, 1 + T): slot N-1 has no label of its own
    return model.lm(inputs_embeds=embeds, attention_mask=mask, cache=cache, labels=labels)


def caption_forward(
    model,
    input_ids: torch.Tensor,
    text_mask: torch.Tensor,
    owner: torch.Tensor,
    features: torch.Tensor,
    shared: bool,
    lean: bool = False,
):
    """Captions and the features of their I distinct images (`owner` maps captions to images), run
    either with one shared prefix pass per image or one caption per sequence: the plain way, or
    with `lean` the head on caption slots only (`lean_forward.py`)."""
    if shared:
        return shared_prefix_forward(model, input_ids, text_mask, owner, features=features)
    features = features[owner.to(features.device)]
    if lean:
        return caption_tokens_forward(model, input_ids, text_mask, features)
    return model(input_ids, text_mask, features=features)
