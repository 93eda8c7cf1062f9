"""The checkers of notebook 05's exercises: the LoRA forward pass, and LoRA wrapped around a GPT-2 Conv1D by hand.

The usual mistakes each get a name: the alpha / r scaling missing, alpha alone or
inverted, the weight used the nn.Linear way, A and B shaped from Conv1D's weight
read as (out, in) (it is stored (in, out)), a B that does not start at zero, and
a base layer that still trains.
"""

from __future__ import annotations

import torch

from .grading import Case, Checker, Wrong
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


def _forward_case(name: str, fan_in: int, fan_out: int, r: int, alpha: float) -> Case:
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
    what = f"the output (in {fan_in}, out {fan_out}, r {r}, alpha {alpha})"
    return Case(name, (x, w, b, a, bb, alpha),
                lambda got: name_the_mistake(got, base + detour * (alpha / r), what, known, atol=1e-4))  # fmt: skip


def _lora_forward_cases() -> list[Case]:
    cases = [_forward_case("a square layer, r 2, alpha 4", 4, 4, 2, 4),
             _forward_case("in 6, out 10, r 3, alpha 12", 6, 10, 3, 12)]  # fmt: skip
    x, w, b = torch.randn(1, 2, 6), torch.randn(6, 4), torch.randn(4)
    what = "the output with B = 0 (it must be the base layer's)"
    cases.append(Case("B = 0", (x, w, b, torch.randn(2, 6), torch.zeros(4, 2), 4),
                      lambda got: name_the_mistake(got, x @ w + b, what, [], atol=1e-5)))  # fmt: skip
    return cases


check_lora_forward = Checker(
    "lora_forward",
    _lora_forward_cases,
    """`fn(x, weight (in, out), bias, A (r, in), B (out, r), alpha) -> y`: a GPT-2 Conv1D layer
    (y = x W + b) plus the LoRA detour (alpha / r) x A^T B^T.""",
)


def _check_lora_parameters(facts: dict, fan_in: int, fan_out: int, r: int) -> None:
    """What the module must be before its outputs mean anything: lora_A (r, in) random and lora_B (out, r)
    zero, both trainable, and nothing else training."""
    if not facts.get("module"):
        raise Wrong(f"return an nn.Module that wraps the Conv1D, got {facts.get('type')}")
    a, b = facts["A"], facts["B"]
    if not a["parameter"] or not b["parameter"]:
        raise Wrong("the module needs two nn.Parameters named lora_A (r, in) and lora_B (out, r)")
    shapes = (tuple(a["shape"]), tuple(b["shape"]))
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
    if not a["requires_grad"] or not b["requires_grad"]:
        raise Wrong("lora_A and lora_B must be trainable (requires_grad=True)")
    if facts["conv_trains"]:
        raise Wrong(
            "the wrapped Conv1D still trains: freeze its weight and bias (conv.requires_grad_(False)); "
            "only lora_A and lora_B may train"
        )
    if not facts["only_a_b_train"]:
        raise Wrong("only lora_A and lora_B may train; the module has other trainable parameters")
    if b["nonzero"] and not a["nonzero"]:
        raise Wrong(
            "lora_A starts at zero and lora_B random: the other way round. lora_B starts at zero (so the "
            "layer starts as the base layer), lora_A random"
        )
    if b["nonzero"]:
        raise Wrong(
            "lora_B must start at zero, so that the wrapped layer starts as the base layer (and GPT-2 "
            "with its adapters starts as GPT-2)"
        )
    if not a["nonzero"]:
        raise Wrong(
            "lora_A and lora_B both start at zero: then neither ever gets a gradient (each one's gradient "
            "is multiplied by the other). Start lora_A random (Kaiming-uniform, as peft)"
        )


def _conv1d_case(name: str, fan_in: int, fan_out: int, r: int, alpha: float) -> Case:
    weight, bias = torch.randn(fan_in, fan_out) * 0.2, torch.randn(fan_out) * 0.2
    x, a, b = torch.randn(2, 3, fan_in), torch.randn(r, fan_in), torch.randn(fan_out, r)
    base = x @ weight + bias
    detour = x @ a.T @ b.T

    def judge(facts):
        _check_lora_parameters(facts, fan_in, fan_out, r)
        if "forward_raised" in facts:
            raise facts["forward_raised"]
        name_the_mistake(
            facts.get("output_at_start"), base, "the output at the start (it must be the base layer's)", [], atol=1e-5
        )
        name_the_mistake(
            facts.get("output_set"),
            base + detour * (alpha / r),
            f"the output with lora_A and lora_B set (in {fan_in}, out {fan_out}, r {r}, alpha {alpha})",
            _scaling_mistakes(base, detour, r, alpha),
            atol=1e-4,
        )
        if facts["weight_changed"]:
            raise Wrong("the Conv1D's weight changed: wrap it, do not modify it")

    return Case(name, (weight, bias, r, alpha, x, a, b), judge, call="lora_conv1d")


def _lora_conv1d_cases() -> list[Case]:
    return [
        _conv1d_case("in 6, out 10, r 2, alpha 4", 6, 10, 2, 4),
        _conv1d_case("in 8, out 24, r 4, alpha 4", 8, 24, 4, 4),
        _conv1d_case("in 5, out 3, r 1, alpha 2", 5, 3, 1, 2),
    ]


check_lora_conv1d = Checker(
    "lora_conv1d",
    _lora_conv1d_cases,
    """`fn(conv, r, alpha) -> nn.Module`: conv (a GPT-2 Conv1D, weight (in, out)) frozen, plus trainable
    lora_A (r, in), random, and lora_B (out, r), zero; forward conv(x) + (alpha / r) x lora_A^T lora_B^T.""",
)

EXERCISES = (check_lora_forward, check_lora_conv1d)
