"""The checkers of notebook 06's exercises: the learning-rate schedule and one optimizer step."""

from __future__ import annotations

import math

import torch

from ...train import warmup_cosine
from .calls import two_groups
from .grading import Case, Checker, Wrong
from .wire import kind


def _table(values) -> str:
    return "[" + ", ".join(f"{float(v):.3g}" for v in values) + "]"


def _schedule_mistake(got: list[float], expected: list[float], total: int, warmup: int) -> str | None:
    """The usual wrong schedules, recognised by their values over all the steps."""
    close = lambda a, b: all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(a, b, strict=False))  # noqa: E731
    if all(math.isclose(v, 1.0) for v in got):
        return "constant: the multiplier is 1 at every step (no warmup, no decay)"
    if warmup and math.isclose(got[0], 0.0, abs_tol=1e-9):
        return ("off by one in warmup: step 0 gives 0, so the first step does not move at all; "
                "step s of the warmup gives (s + 1) / warmup")  # fmt: skip
    shifted = [(s + 1) / warmup if s < warmup else None for s in range(total)]
    if warmup and any(s is not None for s in shifted) and not close(got[:warmup], shifted[:warmup]):
        return f"off by one in warmup: the warmup should be {_table(shifted[:warmup])}, got {_table(got[:warmup])}"
    if warmup and math.isclose(got[warmup], (warmup + 1) / warmup, abs_tol=1e-6):
        return (f"off by one in warmup: it runs one step too long (step {warmup} gives {got[warmup]:.3g}, above 1); "
                f"the warmup is steps 0 .. warmup - 1 (step < warmup)")  # fmt: skip
    if min(got) < -1e-9:
        return "negative multipliers: cos runs from 1 to -1; 0.5 * (1 + cos(pi * progress)) runs from 1 to 0"
    linear = [1 - min(1.0, (s - warmup) / max(1, total - warmup)) for s in range(warmup, total)]
    if close(got[warmup:], linear):
        return "a straight line after the warmup: the decay is a cosine, 0.5 * (1 + cos(pi * progress))"
    if warmup < total and not math.isclose(got[warmup], 1.0, abs_tol=1e-6):
        return (
            f"right after the warmup (step {warmup}) the multiplier should be 1, the top of the cosine, got "
            f"{got[warmup]:.3g}: count the progress from the end of the warmup, (step - warmup) / (total - warmup)"
        )
    return None


def _schedule_case(name: str, total: int, warmup: int) -> Case:
    expected = [warmup_cosine(step, total, warmup) for step in range(total)]

    def judge(got):
        if not isinstance(got, list) or len(got) != total:
            raise Wrong(f"expected one number per step, got {kind(got)}")
        if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in got):
            kinds = sorted({kind(v) for v in got})
            raise Wrong(f"return a plain number (a float) for each step, got {', '.join(kinds)}")
        if all(math.isclose(g, e, rel_tol=1e-6, abs_tol=1e-6) for g, e in zip(got, expected, strict=False)):
            return
        named = _schedule_mistake(got, expected, total, warmup)
        if named:
            raise Wrong(named)
        step = next(
            s for s, (g, e) in enumerate(zip(got, expected, strict=True)) if not math.isclose(g, e, abs_tol=1e-6)
        )
        table = f"got {_table(got)}\nexpected {_table(expected)}" if total <= 12 else ""
        raise Wrong(f"step {step} of {total} with {warmup} warmup steps: got {got[step]:.6g}, "
                    f"expected {expected[step]:.6g}\n{table}".rstrip())  # fmt: skip

    return Case(name, ([[step, total, warmup] for step in range(total)],), judge, call="each")


check_warmup_cosine = Checker(
    "warmup_cosine",
    lambda: [
        _schedule_case("10 steps, 3 warmup", 10, 3),
        _schedule_case("100 steps, 10 warmup", 100, 10),
        _schedule_case("no warmup (warmup = 0)", 7, 0),
    ],  # fmt: skip
    """`fn(step, total, warmup) -> float`: linear warmup to 1 over `warmup` steps (step 0 gives
    1 / warmup), then cosine decay to 0 at `total`; no warmup at all when `warmup` is 0.""",
)


# ------------------------------------------------------------- one optimizer step


BASE_LRS = (0.1, 0.01)


def _start() -> dict:
    """The stand-in bridge's parameters before the first step: a 'projector' (2 x 3) and a 'lora' (3,)."""
    g = torch.Generator().manual_seed(0)
    return {"projector": torch.randn(2, 3, generator=g), "lora": torch.randn(3, generator=g),
            "target": torch.arange(6.0).reshape(2, 3)}  # fmt: skip


def _reference_step(opt, loss_fn, factor, clip_norm) -> float:
    for group in opt.param_groups:
        group["lr"] = group["base_lr"] * factor
    loss = loss_fn()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], clip_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def _equal(params, reference) -> bool:
    return all(
        torch.allclose(p.detach(), r.detach(), rtol=1e-4, atol=1e-6) for p, r in zip(params, reference, strict=True)
    )


def _gradients(loss_fn, params) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss_fn(), params))


def _step_mistake(moves, params, loss_fn, base_lrs, factor, clip_norm) -> str | None:
    """Name the mistake from how far each group moved under SGD (a move is lr x gradient there)."""
    grads = _gradients(loss_fn, params)
    norm = torch.cat([g.flatten() for g in grads]).norm()
    scale = min(1.0, clip_norm / (norm.item() + 1e-6))
    own = [min(1.0, clip_norm / (g.norm().item() + 1e-6)) for g in grads]
    like = lambda rates, scales: all(
        torch.allclose(m, r * s * g, rtol=1e-4, atol=1e-7)  # noqa: E731
        for m, r, s, g in zip(moves, rates, scales, grads, strict=False)
    )
    rates = [b * factor for b in base_lrs]
    if all(m.abs().max() == 0 for m in moves):
        return "the parameters did not move: backward the loss, then opt.step()"
    if like(rates, [1.0, 1.0]):
        return (f"the gradients were not clipped before the step (their norm is {norm:.3g}, clip_norm "
                f"{clip_norm}): clip_grad_norm_ after backward, before opt.step()")  # fmt: skip
    if like(rates, own):
        return ("each group was clipped on its own: clip the norm of all the parameters together, "
                "one clip_grad_norm_ over both groups")  # fmt: skip
    if like(base_lrs, [scale, scale]):
        return "the step used each group's base rate without the schedule's factor: lr = base_lr * factor"
    for rate in rates:
        if like([rate, rate], [scale, scale]):
            return f"both groups stepped with the same rate ({rate:.3g}): each group has its own base_lr"
    return None


def _rate(value) -> float | None:
    """A learning rate as a float (a number or a one-element tensor), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (torch.is_tensor(value) and value.numel() == 1):
        return float(value)
    return None


def _rates_are(lrs, expected) -> bool:
    rates = [_rate(lr) for lr in lrs]
    return None not in rates and len(rates) == len(expected) and all(map(math.isclose, rates, expected))


def _check_float(got, expected: float) -> None:
    if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isclose(got, expected, rel_tol=1e-5):
        raise Wrong(f"return the loss as a float (loss.item()), got {got!r}; expected {expected:.6g}")


def _one_step_case(name: str, factor: float) -> Case:
    start = _start()
    ref_opt, ref_loss, ref_params = two_groups("sgd", start, BASE_LRS)
    expected = _reference_step(ref_opt, ref_loss, factor, 1.0)

    def judge(facts):
        params, lrs, grads = facts["params"][0], facts["lrs"][0], facts["grads"][0]
        if not _equal(params, ref_params):
            _, loss_fn, before = two_groups("sgd", start, BASE_LRS)
            moves = [b.detach() - p for b, p in zip(before, params, strict=False)]
            named = _step_mistake(moves, before, loss_fn, BASE_LRS, factor, 1.0)
            raise Wrong(named or "the parameters after the step differ from one clipped SGD step "
                                 f"(projector moved by\n{moves[0]}\nlora by {moves[1]})")  # fmt: skip
        if not _rates_are(lrs, [b * factor for b in BASE_LRS]):
            shown = _table(lrs) if all(_rate(lr) is not None for lr in lrs) else repr(lrs)
            raise Wrong(f"after the step the groups' lr are {shown}; expected base_lr * factor = "
                        f"{_table([b * factor for b in BASE_LRS])}: set each group's lr (scaling the "
                        f"loss or the gradients instead is not the same under AdamW)")  # fmt: skip
        if any(g is not None and g > 0 for g in grads):
            raise Wrong("gradients were left behind: the next backward would add to them; clear them "
                        "after the step (opt.zero_grad())")  # fmt: skip
        _check_float(facts["returned"][0], expected)

    return Case(name, ("sgd", start, BASE_LRS, [[factor, 1.0]]), judge, call="train_step")


def _twice_case() -> Case:
    start = _start()
    ref_opt, ref_loss, ref_params = two_groups("sgd", start, BASE_LRS)
    _reference_step(ref_opt, ref_loss, 0.5, 1.0)
    _reference_step(ref_opt, ref_loss, 0.5, 1.0)

    def judge(facts):
        lrs = facts["lrs"][-1]
        if _rates_are(lrs, [b * 0.25 for b in BASE_LRS]):
            raise Wrong("the rates compound: a second step at factor 0.5 left lr = base_lr * 0.25. "
                        "Set lr = base_lr * factor; do not multiply the current lr")  # fmt: skip
        if not _equal(facts["params"][-1], ref_params):
            raise Wrong("two steps in a row differ from two clipped SGD steps: are the gradients of the "
                        "first step cleared before the second?")  # fmt: skip

    return Case("two SGD steps in a row", ("sgd", start, BASE_LRS, [[0.5, 1.0], [0.5, 1.0]]), judge, call="train_step")


def _adamw_case() -> Case:
    start, factors = _start(), (0.2, 1.0, 0.7)
    ref_opt, ref_loss, ref_params = two_groups("adamw", start, BASE_LRS)
    for factor in factors:
        _reference_step(ref_opt, ref_loss, factor, 1.0)

    def judge(facts):
        for name, p, r in zip(("projector", "lora"), facts["params"][-1], ref_params, strict=False):
            if not torch.allclose(p, r.detach(), rtol=1e-4, atol=1e-6):
                raise Wrong(f"after three AdamW steps the {name} group is\n{p}\nexpected\n{r.detach()}")

    steps = [[factor, 1.0] for factor in factors]
    return Case("three AdamW steps", ("adamw", start, BASE_LRS, steps), judge, call="train_step")


check_train_step = Checker(
    "train_step",
    lambda: [
        _one_step_case("one SGD step, factor 0.5", 0.5),
        _one_step_case("one SGD step, factor 1", 1.0),
        _twice_case(),
        _adamw_case(),
    ],  # fmt: skip
    """`fn(opt, loss_fn, factor, clip_norm) -> float`: one optimizer step of the bridge. Each param
    group's lr becomes its own "base_lr" times `factor`; the loss `loss_fn()` is backpropagated;
    the gradient norm of all the parameters together is clipped to `clip_norm`; the optimizer
    steps; the gradients are cleared. Returns the loss as a float.""",
)

EXERCISES = (check_warmup_cosine, check_train_step)
