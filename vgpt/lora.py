"""Stage 05: LoRA adapters in GPT-2's attention, with peft, and by hand.

A frozen weight W gets a trainable low-rank detour:

    y = x W + (alpha / r) * x A^T B^T        A: (r, in), B: (out, r), B starts at 0

so at initialization the adapted model *is* the base model, and training
moves only r * (in + out) numbers per adapted matrix. GPT-2 keeps its
projections in `Conv1D` layers, whose weight is stored (in, out), the
transpose of `nn.Linear`'s: peft must be told so with `fan_in_fan_out=True`.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def lora_config(r: int, alpha: int, targets: tuple[str, ...] | list[str], dropout: float = 0.0):
    from peft import LoraConfig

    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        fan_in_fan_out=True,  # GPT-2's Conv1D stores weights as (in, out)
        bias="none",
        task_type="CAUSAL_LM",
    )


def inject_lora(lm: nn.Module, r: int, alpha: int, targets=("c_attn",), dropout: float = 0.0):
    """Wrap GPT-2 with peft LoRA: base weights frozen, only the adapters train."""
    import warnings

    from peft import get_peft_model

    if hasattr(lm, "peft_config"):
        raise ValueError("this model already carries LoRA adapters; load a fresh base model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # transformers' notice about peft internals
        # lm_head is an nn.Linear, not a Conv1D: peft switches fan_in_fan_out off for it by itself
        warnings.filterwarnings("ignore", message="fan_in_fan_out is set to True but the target module")
        # an adapter on lm_head is deliberately untied from the input embeddings, which stay frozen
        warnings.filterwarnings("ignore", message="Model has `tie_word_embeddings=True`")
        return get_peft_model(lm, lora_config(r, alpha, targets, dropout))


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


class LoRAConv1D(nn.Module):
    """The hand-written LoRA of notebook 05, around one GPT-2 `Conv1D` layer."""

    def __init__(self, base: nn.Module, r: int, alpha: int):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        fan_in, fan_out = base.weight.shape  # Conv1D: (in, out)
        self.lora_A = nn.Parameter(torch.empty(r, fan_in))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, r))  # zero: starts as the base layer
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling
