"""Stage 05: LoRA adapters in GPT-2's attention, with peft, and by hand.

A frozen weight W gets a trainable low-rank detour:

    y = x W + (alpha / r) * x A^T B^T        A: (r, in), B: (out, r), B starts at 0

so at initialization the adapted model *is* the base model, and training moves only r * (in + out)
numbers per adapted matrix. GPT-2 keeps its projections in `Conv1D` layers, whose weight is stored
(in, out), the transpose of `nn.Linear`'s: peft must be told so with `fan_in_fan_out=True`.

The package adapts GPT-2 with peft (`inject_lora`). `wrap_lora` puts a LoRA layer written by hand
(`LoRAConv1D`, or a learner's function of notebook 05's signature) around every targeted layer
instead; a test proves the two equal.
"""

from __future__ import annotations

import math
import warnings

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers.pytorch_utils import Conv1D


def lora_config(r: int, alpha: int, targets: tuple[str, ...] | list[str], dropout: float = 0.0) -> LoraConfig:
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(targets),
        fan_in_fan_out=True,
        bias="none",
        task_type="CAUSAL_LM",
    )  # Conv1D: (in, out)


def inject_lora(lm: nn.Module, r: int, alpha: int, targets=("c_attn",), dropout: float = 0.0):
    """Wrap GPT-2 with peft LoRA: base weights frozen, only the adapters train."""
    if hasattr(lm, "peft_config") or any(isinstance(m, LoRAConv1D) for m in lm.modules()):
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
        self.base = base.requires_grad_(False)
        fan_in, fan_out = base.weight.shape  # Conv1D: (in, out)
        self.lora_A = nn.Parameter(torch.empty(r, fan_in))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, r))  # zero: starts as the base layer
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scaling = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling


def as_conv1d(linear: nn.Linear) -> Conv1D:
    """An nn.Linear (lm_head) as the Conv1D it equals, its weight shared and seen transposed, so that
    a LoRA layer written for Conv1D wraps it too."""
    conv = Conv1D(linear.out_features, linear.in_features)
    conv.weight = nn.Parameter(linear.weight.T, requires_grad=False)  # (in, out), the same storage
    conv.bias = nn.Parameter(torch.zeros(linear.out_features), requires_grad=False)  # lm_head has none
    return conv


def wrap_lora(lm: nn.Module, r: int, alpha: int, targets, layer=LoRAConv1D) -> dict[str, nn.Module]:
    """Replace every module of GPT-2 named in `targets` by `layer(module, r, alpha)`, in place; returns
    {its path: the new module}, each of which must carry `lora_A` (r, in) and `lora_B` (out, r)."""
    wrapped = {}
    for path, module in list(lm.named_modules()):
        if path.split(".")[-1] not in targets:
            continue
        parent, name = lm.get_submodule(path.rpartition(".")[0]) if "." in path else lm, path.rpartition(".")[2]
        new = layer(as_conv1d(module) if isinstance(module, nn.Linear) else module, r, alpha)
        for attr, rows in (("lora_A", r), ("lora_B", None)):
            weight = getattr(new, attr, None)
            if not isinstance(weight, torch.Tensor) or weight.dim() != 2 or (rows and weight.shape[0] != rows):
                raise ValueError(f"the LoRA layer made for {path} has no {attr} matrix of the right shape")
        setattr(parent, name, new)
        wrapped[path] = new
    if not wrapped:
        raise ValueError(f"no module of the language model is named {', '.join(targets)}")
    return wrapped
