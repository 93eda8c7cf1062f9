"""How a checker calls the student's function: the trusted code that runs beside it, in the student's process.

A checker's case names a call and gives its inputs as data (`wire`); the
call builds from that data the objects the function takes (a PIL image, an
embedding table, a module, an optimizer with its loss, a language model),
calls the function, and returns what happened as data: the result, and what
the judging needs to know about the objects afterwards (a parameter's value,
which layers still train, how many positions each forward call was fed).
The judging, in the checker (the notebook's kernel, or the grader's own
process), compares that with the answer it computed itself.

    value = call(kind, fn, args, kwargs)     # the student's exceptions propagate

This module imports no stage of vgpt, only torch, numpy, PIL and (for the
calls that need it) transformers: in the grader's sandbox it is, with
`wire`, all of vgpt there is. The builders here serve both sides: the
checker builds the same objects to compute the right answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch import nn

CALLS: dict[str, Callable] = {}


def _call(name: str):
    def register(fn):
        CALLS[name] = fn
        return fn

    return register


def call(kind: str, fn, args: tuple = (), kwargs: dict | None = None):
    """Run the student's `fn` the way call `kind` does, on inputs given as data; what it gives back, as data."""
    if kind not in CALLS:
        raise KeyError(f"no call named {kind!r}")
    return CALLS[kind](fn, *args, **(kwargs or {}))


def needs_transformers(kinds) -> bool:
    """Whether any of these calls builds a transformers model (the runner imports it up front, once)."""
    return bool({"lora_conv1d", "greedy"} & set(kinds))


@_call("apply")
def _apply(fn, *args, **kwargs):
    return fn(*args, **kwargs)


@_call("each")
def _each(fn, calls: list):
    """One call per argument list, in order: [fn(*a) for a in calls]."""
    return [fn(*a) for a in calls]


@_call("image")
def _image(fn, pixels: torch.Tensor, *args):
    """The first argument, (H, W, 3) uint8, as the PIL RGB image the function takes."""
    return fn(Image.fromarray(np.ascontiguousarray(pixels.numpy())), *args)


# ------------------------------------------------------------------ modules (count_parameters)


def tied_gpt() -> nn.ModuleDict:
    """GPT-2's traps in 4-wide miniature: the output head shares the token embedding's weight
    (10 x 4 = 40 numbers, stored once), a LayerNorm (8), a BatchNorm (8 weights + 9 buffers)."""
    wte = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = wte.weight  # tied, as GPT-2's lm_head and wte
    model = nn.ModuleDict({"wte": wte, "ln": nn.LayerNorm(4), "bn": nn.BatchNorm1d(4), "lm_head": head})
    wte.requires_grad_(False)  # frozen: the embedding, and so the head that shares it
    return model


def shared_layer() -> nn.Sequential:
    """One Linear(2, 2) used twice."""
    layer = nn.Linear(2, 2)
    return nn.Sequential(layer, nn.ReLU(), layer)


MODULES = {"tied_gpt": tied_gpt, "linear_3_4": lambda: nn.Linear(3, 4), "shared_layer": shared_layer}


@_call("module")
def _module(fn, name: str, **kwargs):
    """fn(one of MODULES, built fresh, **kwargs)."""
    return fn(MODULES[name](), **kwargs)


# ------------------------------------------------------------------ an embedding table (prefix_inputs)


def embedding_table(weight: torch.Tensor) -> nn.Embedding:
    table = nn.Embedding(*weight.shape)
    with torch.no_grad():
        table.weight.copy_(weight)
    return table


@_call("embedding")
def _embedding(fn, prefix, ids, mask, weight):
    """fn(prefix, ids, mask, an nn.Embedding holding `weight`)."""
    return fn(prefix, ids, mask, embedding_table(weight))


# ------------------------------------------------------------------ LoRA around a Conv1D (lora_conv1d)


def conv1d(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    """A GPT-2 Conv1D holding `weight` (in, out) and `bias` (out,)."""
    from transformers.pytorch_utils import Conv1D  # only this call needs transformers (seconds to import)

    conv = Conv1D(weight.shape[1], weight.shape[0])  # Conv1D(nf=out, nx=in): weight (in, out)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    return conv


def _parameter(p) -> dict:
    if not isinstance(p, nn.Parameter):
        return {"parameter": False}
    return {"parameter": True, "shape": list(p.shape), "requires_grad": bool(p.requires_grad),
            "nonzero": int(torch.count_nonzero(p.detach()))}  # fmt: skip


@_call("lora_conv1d")
def _lora_conv1d(fn, weight, bias, r: int, alpha: float, x, lora_a, lora_b) -> dict:
    """fn(conv, r, alpha) -> a module; then what the module is: its lora_A / lora_B, what trains, its
    output on `x` as returned and again with lora_A, lora_B set to `lora_a`, `lora_b`, whether the
    Conv1D's weight changed."""
    conv = conv1d(weight, bias)
    module = fn(conv, r, alpha)
    if not isinstance(module, nn.Module):
        return {"module": False, "type": type(module).__name__}
    a, b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
    facts = {"module": True, "A": _parameter(a), "B": _parameter(b),
             "conv_trains": any(p.requires_grad for p in conv.parameters())}  # fmt: skip
    facts["only_a_b_train"] = {id(p) for p in module.parameters() if p.requires_grad} == {id(a), id(b)}
    fan_in, fan_out = weight.shape
    if facts["A"].get("shape") == [r, fan_in] and facts["B"].get("shape") == [fan_out, r]:
        try:
            with torch.no_grad():
                facts["output_at_start"] = module(x)
                a.copy_(lora_a)
                b.copy_(lora_b)
                facts["output_set"] = module(x)
        except Exception as err:  # noqa: BLE001 (the judging reports it after the shapes)
            facts["forward_raised"] = err
    facts["weight_changed"] = not torch.equal(conv.weight.detach(), weight)
    return facts


# ------------------------------------------------------------------ one optimizer step (train_step)


def stand_in_loss(projector: torch.Tensor, lora: torch.Tensor, target: torch.Tensor) -> Callable[[], torch.Tensor]:
    """The loss of a stand-in bridge, whose gradient norm is far above 1."""
    return lambda: 10 * ((projector - target) ** 2).sum() + 20 * (lora**3).sum()


def two_groups(optimizer: str, start: dict, base_lrs) -> tuple[torch.optim.Optimizer, Callable, list]:
    """A stand-in bridge: a 'projector' (2 x 3 weights) and a 'lora' vector (3,) from `start`, one
    param group each with its own base rate ("base_lr", lr set to it), and its loss."""
    projector = nn.Parameter(start["projector"].clone())
    lora = nn.Parameter(start["lora"].clone())
    groups = [{"name": "projector", "params": [projector], "base_lr": base_lrs[0], "lr": base_lrs[0]},
              {"name": "lora", "params": [lora], "base_lr": base_lrs[1], "lr": base_lrs[1]}]  # fmt: skip
    opt = torch.optim.SGD(groups, lr=1.0) if optimizer == "sgd" else torch.optim.AdamW(groups)
    return opt, stand_in_loss(projector, lora, start["target"]), [projector, lora]


@_call("train_step")
def _train_step(fn, optimizer: str, start: dict, base_lrs, steps) -> dict:
    """fn(opt, loss_fn, factor, clip_norm) once per (factor, clip_norm) of `steps`, on one stand-in
    bridge; after each: what it returned, the parameters, the groups' lr, each gradient's largest size."""
    opt, loss_fn, params = two_groups(optimizer, start, base_lrs)
    facts = {"returned": [], "params": [], "lrs": [], "grads": []}
    for factor, clip_norm in steps:
        facts["returned"].append(fn(opt, loss_fn, factor, clip_norm))
        facts["params"].append([p.detach().clone() for p in params])
        facts["lrs"].append([group.get("lr") for group in opt.param_groups])
        facts["grads"].append([None if p.grad is None else float(p.grad.abs().max()) for p in params])
    return facts


# ------------------------------------------------------------------ greedy decoding (greedy_with_kv_cache)


def language_model(config: dict, state: dict | None = None) -> nn.Module:
    """A GPT-2 of this config, in eval mode, holding these weights (else freshly initialised ones)."""
    from transformers import GPT2Config, GPT2LMHeadModel  # only this call needs transformers

    lm = GPT2LMHeadModel(GPT2Config(**config)).eval()
    if state is not None:
        lm.load_state_dict(state)
    return lm


class ForwardCalls:
    """Records every forward call of a language model: how many positions went in, and whether a cache did."""

    def __init__(self, lm):
        self.calls: list[list] = []
        self.handle = lm.register_forward_pre_hook(self.record, with_kwargs=True)

    def record(self, module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        ids = kwargs.get("input_ids", args[0] if args else None)
        length = (embeds if embeds is not None else ids).shape[1]
        self.calls.append([int(length), kwargs.get("cache", kwargs.get("past_key_values")) is not None])


@_call("greedy")
def _greedy(fn, config: dict, state: dict, prefix, eos: int, max_new_tokens: int) -> dict:
    """fn(lm, prefix, eos, max_new_tokens) with lm.generate forbidden; what it returned (or raised),
    every forward call's (positions, cache passed), and whether it tried lm.generate."""
    lm = language_model(config, state)
    tried = []

    def forbid(*args, **kwargs):
        tried.append(True)
        raise RuntimeError("lm.generate is not allowed in this exercise")

    lm.generate = forbid
    calls = ForwardCalls(lm)
    facts = {}
    try:
        facts["rows"] = fn(lm, prefix, eos, max_new_tokens)
    except Exception as err:  # noqa: BLE001 (the judging names what the calls show, else the error)
        facts["raised"] = err
    calls.handle.remove()
    facts.update(calls=calls.calls, generate=bool(tried))
    return facts


# ------------------------------------------------------------------ a project: the learner's part in the captioner


@_call("captioner")
def _captioner(fn, split: str, n: int, seed: int, max_new_tokens: int):
    """The shipped tiny captioner decoding `n` Shapes World scenes with the learner's greedy loop,
    fn(lm, prefix, eos, max_new_tokens): its token ids, one list per scene. A project's call: it needs the
    package's stages, which only a sandbox of view "package" holds (hence the imports here)."""
    from vgpt.course.notebook import eval_set, load_trained
    from vgpt.features import processor_pixels
    from vgpt.loading import load_profile

    parts = load_profile("tiny", verbose=False)
    model = load_trained(parts, mine=False)
    images, _, _ = eval_set(parts.profile, split, n, seed)
    with torch.no_grad():
        prefix = model.visual_prefix(pixel_values=processor_pixels(parts.image_processor)(images))
    return fn(model.lm, prefix, model.tokenizer.eos_token_id, max_new_tokens)


@_call("capstone")
def _capstone(fn: dict):
    """The learner's parts, {name: function} (the capstone's cell, or each part's own exercise cell), trained into
    a captioner on the capstone's recipe (`vgpt.course.capstone`): which parts were given, the test captions'
    token ids, and, where it went wrong, where and which parts. A project's call, run where the package is."""
    from vgpt.course import capstone

    if not isinstance(fn, dict):
        raise TypeError(f"the captioner is made of your parts, {{name: function}}, not {type(fn).__name__}")
    return capstone.graded(fn)
