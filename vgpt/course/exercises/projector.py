"""The checkers of notebook 02's exercises: the MLP projector by hand, and the RMS scale factor.

`check_mlp_projector` names weights used without their transpose, a missing or
wrong activation (ReLU, GELU's tanh approximation, one GELU too many) and a
forgotten bias. `check_rms_scale` names the standard deviation used for the
RMS, a factor upside down, a missing square root and mean vector lengths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .grading import Case, Checker
from .mistakes import name_the_mistake, show
from .numbers import name_the_number, one_number

# ------------------------------------------------------------------ mlp_projector


def _mlp(x, w1, b1, w2, b2, act=F.gelu, transpose=True, last_act=None, bias=True) -> torch.Tensor:
    """Linear -> act -> Linear with one thing changed (the defaults are the right answer)."""
    t = (lambda w: w.T) if transpose else (lambda w: w)
    h = act(x @ t(w1) + (b1 if bias else 0))
    y = h @ t(w2) + (b2 if bias else 0)
    return last_act(y) if last_act else y


def _shape_error(w1: torch.Tensor):
    def named(err) -> str | None:
        if err.is_a("RuntimeError") and ("shape" in err.message or "size" in err.message):
            return (f"a shape error ({err.message}). nn.Linear stores its weight as (out, in): w1 is "
                    f"(H, Dv) = {tuple(w1.shape)}, so a layer computes x @ w1.T + b1")  # fmt: skip
        return None

    return named


def _mlp_case(name: str, b: int, n: int, dv: int, hidden: int, dt: int) -> Case:
    x = torch.randn(b, n, dv) * 2  # large enough that GELU's exact and tanh forms differ
    w1, b1 = torch.randn(hidden, dv) / dv**0.5 * 1.5, torch.randn(hidden)
    w2, b2 = torch.randn(dt, hidden) / hidden**0.5, torch.randn(dt)
    args = (x, w1, b1, w2, b2)
    known = [
        (_mlp(*args, act=lambda h: h), "no activation between the layers: two Linears in a row are one Linear "
         "(W2 W1), so the MLP would bend nothing. Put GELU between them."),
        (_mlp(*args, act=F.relu), "ReLU instead of GELU: use torch.nn.functional.gelu (or nn.GELU())."),
        (_mlp(*args, act=lambda h: F.gelu(h, approximate="tanh")), "GELU's tanh approximation (GPT-2's "
         "'gelu_new'); the projector uses nn.GELU(), the exact form x * Phi(x): F.gelu(h)."),
        (_mlp(*args, last_act=F.gelu), "a GELU after the second layer too: the projector ends with the Linear, "
         "so that its output can take any value, negative ones included."),
        (_mlp(*args, bias=False), "the biases b1 and b2 are missing."),
        (F.gelu(x @ w1.T + b1), "only the first layer and its GELU: the second Linear (w2, b2) maps the "
         "hidden width H to Dt."),
    ]  # fmt: skip
    if dv == hidden == dt:
        known.insert(0, (_mlp(*args, transpose=False), "the weights were used without their transpose: "
                         "nn.Linear stores its weight as (out, in) and computes x @ W.T + b."))  # fmt: skip
    what = f"the projector's output for features {show(x)}"
    return Case(name, args, lambda got: name_the_mistake(got, _mlp(*args), what, known, atol=1e-5),
                on_error=_shape_error(w1))  # fmt: skip


def _mlp_projector_cases() -> list[Case]:
    cases = [_mlp_case("one image of 3 tokens, all widths 4", 1, 3, 4, 4, 4),
             _mlp_case("2 images of 5 tokens, Dv 6 -> H 7 -> Dt 3", 2, 5, 6, 7, 3)]  # fmt: skip
    mlp = nn.Sequential(nn.Linear(8, 6), nn.GELU(), nn.Linear(6, 5))
    x = torch.randn(2, 17, 8)
    with torch.no_grad():
        args = tuple(t.detach().clone() for t in (x, mlp[0].weight, mlp[0].bias, mlp[2].weight, mlp[2].bias))
        expected = mlp(x)
    what = "Sequential(Linear, GELU, Linear)'s output"
    cases.append(Case("nn.Sequential(Linear(8, 6), GELU(), Linear(6, 5)) on 2 x 17 tokens", args,
                      lambda got: name_the_mistake(got, expected, what, [], atol=1e-5)))  # fmt: skip
    return cases


check_mlp_projector = Checker(
    "mlp_projector",
    _mlp_projector_cases,
    """`fn(features (B, N, Dv), w1 (H, Dv), b1 (H,), w2 (Dt, H), b2 (Dt,)) -> (B, N, Dt)`: Linear, GELU
    (exact), Linear, on every visual token; the weights in nn.Linear's layout (out, in).""",
)


# ------------------------------------------------------------------ rms_scale


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean().sqrt()


def _rms_case(name: str, prefix: torch.Tensor, table: torch.Tensor, on: str) -> Case:
    right = float(_rms(table) / _rms(prefix))
    norms = lambda x: x.norm(dim=-1).mean()  # noqa: E731
    known = [
        (float(table.std() / prefix.std()), "That is the ratio of standard deviations: the std "
         "subtracts the mean first, so with an offset it is not the RMS. RMS = sqrt(mean(x ** 2))."),
        (float(_rms(prefix) / _rms(table)), "Upside down: the factor multiplies the prefix, so it "
         "is RMS(table) / RMS(prefix)."),
        (float(table.pow(2).mean() / prefix.pow(2).mean()), "The square root is missing: that is the "
         "ratio of mean squares."),
        (float(table.abs().mean() / prefix.abs().mean()), "That is the ratio of mean absolute values, "
         "not of root-mean-squares."),
        (float(norms(table) / norms(prefix)), "That is the ratio of mean vector lengths; the RMS is "
         "over every number: sqrt(mean(x ** 2)) of the whole tensor."),
    ]  # fmt: skip
    return Case(name, (prefix, table), lambda got: name_the_number(one_number(got, "the factor"), right, known, on=on))


def _rms_scale_cases() -> list[Case]:
    return [
        _rms_case("vectors with an offset", torch.randn(2, 5, 8) + 3, torch.randn(30, 8) * 0.1 - 0.2,
                  " (a prefix with mean 3, a table with mean -0.2)"),
        _rms_case("vectors of unequal lengths", torch.randn(2, 5, 8) * torch.linspace(0.5, 9, 5).view(1, 5, 1),
                  torch.randn(30, 8) * 0.1, " (prefix vectors from short to long)"),
        _rms_case("centred vectors", torch.randn(2, 5, 8) * 7, torch.randn(30, 8) * 0.1, ""),
    ]  # fmt: skip


check_rms_scale = Checker(
    "rms_scale",
    _rms_scale_cases,
    """`fn(prefix (B, N, D), table (V, D)) -> float`: the factor that gives the prefix the
    root-mean-square size of the token embedding table: RMS(table) / RMS(prefix), each RMS over
    every number.""",
)

EXERCISES = (check_mlp_projector, check_rms_scale)
