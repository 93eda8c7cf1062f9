"""The checkers of notebook 05's exercises: the LoRA forward pass, and LoRA wrapped around a GPT-2 Conv1D by hand.

The usual mistakes each get a name: the alpha / r scaling missing, alpha alone or
inverted, the weight used the nn.Linear way, A and B shaped from Conv1D's weight
read as (out, in) (it is stored (in, out)), a B that does not start at zero, and
a base layer that still trains.
"""

from __future__ import annotations

import torch
from torch import nn

from .grading import Wrong, grade
from .mistakes import name_the_mistake


def _scaling_mistakes(base: torch.Tensor, detour: torch.Tensor, r: int, alpha: float) -> list[tuple[torch.Tensor, str]]:
    """The outputs of the usual scaling mistakes, given the base output and the unscaled detour x A^T B^T."""
    return [
        (
            base + detour,
            f"missing the alpha / r scaling: the detour x A^T B^T must be multiplied by alpha / r "
            f"(= {alpha} / {r} here)",
        ),
        (base + detour * alpha, f"scaled by alpha alone: the scale is alpha / r (= {alpha} / {r}), not alpha"),
        (base + detour * (r / alpha), "the scale is upside down: alpha / r, not r / alpha"),
        (base + detour * (alpha / r) ** 2, "scaled twice: multiply by alpha / r once"),
    ]


def check_lora_forward(fn) -> bool:
    """`fn(x, weight (in, out), bias, A (r, in), B (out, r), alpha) -> y`: a GPT-2 Conv1D layer
    (y = x W + b) plus the LoRA detour (alpha / r) x A^T B^T."""
    torch.manual_seed(0)

    def run(fan_in, fan_out, r, alpha):
        def case(f):
            x, w, b = torch.randn(2, 3, fan_in), torch.randn(fan_in, fan_out), torch.randn(fan_out)
            a, bb = torch.randn(r, fan_in), torch.randn(fan_out, r)
            base, detour = x @ w + b, x @ a.T @ bb.T
            known = _scaling_mistakes(base, detour, r, alpha) + [
                (x @ w + detour * (alpha / r), "forgot the bias: the base output is x @ weight + bias"),
            ]
            if fan_in == fan_out:
                known.append(
                    (
                        x @ w.T + b + detour * (alpha / r),
                        "used the weight the nn.Linear way (x @ weight.T): "
                        "Conv1D stores its weight (in, out), so the base output is x @ weight + bias",
                    )
                )
            got = f(x.clone(), w.clone(), b.clone(), a.clone(), bb.clone(), alpha)
            name_the_mistake(
                got,
                base + detour * (alpha / r),
                f"the output (in {fan_in}, out {fan_out}, r {r}, alpha {alpha})",
                known,
                atol=1e-4,
            )

        return case

    def starts_as_base(f):
        x, w, b = torch.randn(1, 2, 6), torch.randn(6, 4), torch.randn(4)
        got = f(x, w, b, torch.randn(2, 6), torch.zeros(4, 2), 4)
        name_the_mistake(got, x @ w + b, "the output with B = 0 (it must be the base layer's)", [], atol=1e-5)

    return grade(
        "lora_forward",
        fn,
        [
            ("a square layer, r 2, alpha 4", run(4, 4, 2, 4)),
            ("in 6, out 10, r 3, alpha 12", run(6, 10, 3, 12)),
            ("B = 0", starts_as_base),
        ],
    )


def _conv1d(fan_in: int, fan_out: int) -> nn.Module:
    from transformers.pytorch_utils import Conv1D

    conv = Conv1D(fan_out, fan_in)  # Conv1D(nf=out, nx=in): weight (in, out)
    nn.init.normal_(conv.weight, std=0.2)
    nn.init.normal_(conv.bias, std=0.2)
    return conv


def _lora_parameters(module, conv, fan_in: int, fan_out: int, r: int) -> tuple[nn.Parameter, nn.Parameter]:
    if not isinstance(module, nn.Module):
        raise Wrong(f"return an nn.Module that wraps the Conv1D, got {type(module).__name__}")
    a, b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
    if not isinstance(a, nn.Parameter) or not isinstance(b, nn.Parameter):
        raise Wrong("the module needs two nn.Parameters named lora_A (r, in) and lora_B (out, r)")
    shapes = (tuple(a.shape), tuple(b.shape))
    if shapes == ((r, fan_out), (fan_in, r)):
        raise Wrong(
            f"A/B shapes swapped: lora_A is {shapes[0]} and lora_B {shapes[1]}, as if conv.weight were "
            f"nn.Linear's (out, in). Conv1D stores its weight (in, out) = {(fan_in, fan_out)}: lora_A must "
            f"be (r, in) = {(r, fan_in)} and lora_B (out, r) = {(fan_out, r)}"
        )
    if shapes == ((fan_in, r), (r, fan_out)):
        raise Wrong(
            f"lora_A and lora_B are transposed: peft's layout is lora_A (r, in) = {(r, fan_in)} and "
            f"lora_B (out, r) = {(fan_out, r)}"
        )
    if shapes != ((r, fan_in), (fan_out, r)):
        raise Wrong(
            f"lora_A is {shapes[0]} and lora_B {shapes[1]}; expected (r, in) = {(r, fan_in)} and "
            f"(out, r) = {(fan_out, r)}"
        )
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    if not a.requires_grad or not b.requires_grad:
        raise Wrong("lora_A and lora_B must be trainable (requires_grad=True)")
    if any(p.requires_grad for p in conv.parameters()):
        raise Wrong(
            "the wrapped Conv1D still trains: freeze its weight and bias (conv.requires_grad_(False)); "
            "only lora_A and lora_B may train"
        )
    if trainable != {id(a), id(b)}:
        raise Wrong("only lora_A and lora_B may train; the module has other trainable parameters")
    if torch.count_nonzero(b) and not torch.count_nonzero(a):
        raise Wrong(
            "lora_A starts at zero and lora_B random: the other way round. lora_B starts at zero (so the "
            "layer starts as the base layer), lora_A random"
        )
    if torch.count_nonzero(b):
        raise Wrong(
            "lora_B must start at zero, so that the wrapped layer starts as the base layer (and GPT-2 "
            "with its adapters starts as GPT-2)"
        )
    if not torch.count_nonzero(a):
        raise Wrong(
            "lora_A and lora_B both start at zero: then neither ever gets a gradient (each one's gradient "
            "is multiplied by the other). Start lora_A random (Kaiming-uniform, as peft)"
        )
    return a, b


def check_lora_conv1d(fn) -> bool:
    """`fn(conv, r, alpha) -> nn.Module`: conv (a GPT-2 Conv1D, weight (in, out)) frozen, plus trainable
    lora_A (r, in), random, and lora_B (out, r), zero; forward conv(x) + (alpha / r) x lora_A^T lora_B^T."""
    torch.manual_seed(0)

    def run(fan_in, fan_out, r, alpha):
        def case(f):
            conv = _conv1d(fan_in, fan_out)
            weight = conv.weight.detach().clone()
            module = f(conv, r, alpha)
            a, b = _lora_parameters(module, conv, fan_in, fan_out, r)
            x = torch.randn(2, 3, fan_in)
            with torch.no_grad():
                base = x @ weight + conv.bias
                name_the_mistake(
                    module(x), base, "the output at the start (it must be the base layer's)", [], atol=1e-5
                )
                a.copy_(torch.randn(r, fan_in))
                b.copy_(torch.randn(fan_out, r))
                detour = x @ a.T @ b.T
                name_the_mistake(
                    module(x),
                    base + detour * (alpha / r),
                    f"the output with lora_A and lora_B set (in {fan_in}, out {fan_out}, r {r}, alpha {alpha})",
                    _scaling_mistakes(base, detour, r, alpha),
                    atol=1e-4,
                )
            if not torch.equal(conv.weight, weight):
                raise Wrong("the Conv1D's weight changed: wrap it, do not modify it")

        return case

    return grade(
        "lora_conv1d",
        fn,
        [
            ("in 6, out 10, r 2, alpha 4", run(6, 10, 2, 4)),
            ("in 8, out 24, r 4, alpha 4", run(8, 24, 4, 4)),
            ("in 5, out 3, r 1, alpha 2", run(5, 3, 1, 2)),
        ],
    )
