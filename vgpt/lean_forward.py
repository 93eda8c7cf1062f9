"""Performance: the plain training forward with less work, for the same loss and gradients.

The plain forward (`VisionGPT2.forward`) runs GPT-2's language-model head over every slot of
[prefix | caption] and lets Hugging Face shift the labels; on `tiny` the 17 prefix slots are about
60% of a sequence and none of them has a label. Here the head runs only on the slots that predict
a caption token:

    [prefix | caption] (B, N + T, Dt) --GPT-2 body (LoRA inside)--> hidden (B, N + T, Dt)
    hidden[:, N-1 : N+T-1] (B, T, Dt) --lm_head (LoRA)-->           logits (B, T, V), slot N-1+t predicts token t

and GPT-2's `gelu_new`, written as nine elementwise operations (each a pass over the (B, N + T, 4 Dt)
activations, forward and backward), becomes `nn.GELU(approximate="tanh")`, the same formula in one
fused kernel. A test checks loss and gradients against the plain forward. Measured on a 2-core CPU,
1 thread, a tiny training step at batch 64: 278 ms plain, 224 ms here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutput

from .masks import joint_attention_mask
from .prefix import concat_prefix


def fuse_gelu(lm: nn.Module) -> int:
    """Replace Hugging Face's `NewGELUActivation` (gelu_new) modules with torch's fused tanh GELU, in
    place; returns how many were replaced. Equal up to float rounding."""
    found = [(parent, name) for parent in lm.modules() for name, child in parent.named_children()
             if type(child).__name__ == "NewGELUActivation"]  # fmt: skip
    for parent, name in found:
        setattr(parent, name, nn.GELU(approximate="tanh"))
    return len(found)


def caption_tokens_forward(model, input_ids: torch.Tensor, text_mask: torch.Tensor, features: torch.Tensor):
    """Captions (B, T) with their mask and their images' features (B, N, Dv). Returns `.logits`
    (B, T, V), each slot's prediction of caption token t, and `.loss`, which equals
    `model(input_ids, text_mask, features=features).loss`."""
    prefix = model.visual_prefix(features=features)  # (B, N, Dt)
    n = prefix.shape[1]
    embeds = concat_prefix(prefix, model.token_embeddings(input_ids))  # (B, N + T, Dt)
    base = model.lm.get_base_model()  # GPT-2 with its head; the LoRA layers are inside
    hidden = base.transformer(inputs_embeds=embeds, attention_mask=joint_attention_mask(text_mask, n))
    logits = base.lm_head(hidden.last_hidden_state[:, n - 1 : -1])  # (B, T, V)
    labels = input_ids.masked_fill(text_mask == 0, -100)  # (B, T)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
    return CausalLMOutput(loss=loss, logits=logits)
