"""The checkers of notebook 04's exercises: the 2-D additive attention bias, and position ids for left padding.

The usual mistakes each get a name: 0 instead of -inf (the 0/1 mask added as if
it were the bias), the boolean convention, forgotten causality or padding,
padding applied to the rows (queries) instead of the columns (keys), and
position ids that are floats or negative, which crash GPT-2's embedding lookup.
"""

from __future__ import annotations

import torch

from ...masks import position_ids
from .grading import Case, Checker, Wrong
from .mistakes import name_the_mistake, show
from .wire import kind

BLOCKED = -1e4  # at or below this, a bias entry blocks (exp underflows to 0): -inf, or the dtype's min

ZERO_NOT_INF = (
    "0 instead of -inf: that is the 0/1 mask itself. GPT-2 adds the bias to the scores before the softmax, "
    "and adding 0 blocks nothing; blocked pairs need -inf, allowed pairs 0."
)
ROWS = (
    "padding rows vs columns: you blocked the padding rows (queries at padding slots) instead of only the "
    "padding columns (keys). A row with every key blocked is all -inf: its softmax is 0/0 = NaN, and the NaN "
    "reaches real tokens through the values in the next layer. Block the columns: mask[b, j], not mask[b, i]."
)


def _allowed(mask: torch.Tensor, causal: str = "lower", keys: bool = True, rows: bool = False) -> torch.Tensor:
    length = mask.shape[-1]
    ones = torch.ones(length, length, dtype=torch.bool)
    tri = {"lower": ones.tril(), "upper": ones.triu(), "strict": ones.tril(-1), "none": ones}[causal]
    allowed = tri.expand(mask.shape[0], length, length).clone()
    if keys:
        allowed &= mask.bool()[:, None, :]
    if rows:
        allowed &= mask.bool()[:, :, None]
    return allowed


def _bias(allowed: torch.Tensor) -> torch.Tensor:
    return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))


def _check_bias(got, mask: torch.Tensor) -> None:
    right = _allowed(mask)
    b, length = mask.shape
    if not torch.is_tensor(got):
        raise Wrong(f"expected a tensor of shape {(b, length, length)}, got {kind(got)}")
    if got.dim() == 4 and got.shape[1] == 1:  # (B, 1, L, L), ready for the heads: fine too
        got = got[:, 0]
    if got.shape == right.shape and not got.is_floating_point():
        convention = "boolean" if got.dtype == torch.bool else f"0/1 {got.dtype}"
        said = "True" if got.dtype == torch.bool else "1"
        if torch.equal(got.bool(), right):
            raise Wrong(
                f"that is the {convention} mask ({said} = may attend), the convention of PyTorch's fused "
                "attention; the exercise asks for the additive bias GPT-2 adds to the scores: a float tensor, "
                "0.0 where allowed and -inf where blocked"
            )
        raise Wrong(f"expected a float tensor (0.0 allowed, -inf blocked), got {got.dtype}: {show(got)}")
    if torch.is_tensor(got) and got.is_floating_point():
        got = got.float().masked_fill(got.float() <= BLOCKED, float("-inf"))  # the dtype's min counts as -inf
        if got.shape == right.shape and torch.equal(got[right], torch.zeros(int(right.sum()))):
            blocked = got[~right]
            if torch.isfinite(blocked).all() and (blocked < 0).all():
                raise Wrong(
                    f"blocked pairs get a finite bias ({blocked.max().item():g}), which only dims them; use -inf "
                    f"(or a number so negative that exp() of it is 0)"
                )
    name_the_mistake(
        got,
        _bias(right),
        f"the bias of mask {mask.tolist()} (0 allowed, -inf blocked)",
        [
            (right.float(), ZERO_NOT_INF),
            (
                torch.zeros(right.shape).masked_fill(right, float("-inf")),
                "inverted: -inf where attending is allowed and 0 where it is blocked",
            ),
            (
                _bias(_allowed(mask, causal="none")),
                "forgot causality: query i also sees the keys after it (the "
                "future). Allowed pairs need j <= i as well: the lower triangle.",
            ),
            (
                _bias(_allowed(mask, causal="upper")),
                "causality the wrong way round: query i must see the keys j <= i (the past: tril), not j >= i (triu)",
            ),
            (
                _bias(_allowed(mask, causal="strict")),
                "each position must also attend to itself: j <= i, the diagonal included (tril(0), not tril(-1))",
            ),
            (
                _bias(_allowed(mask, keys=False)),
                "forgot the padding: the padding keys (columns) are still "
                "visible to the padding queries. Block key j wherever mask[b, j] == 0.",
            ),
            (_bias(_allowed(mask, keys=False, rows=True)), ROWS),
            (_bias(_allowed(mask, rows=True)), ROWS),
        ],
    )


def _attention_bias_cases() -> list[Case]:
    masks = [
        ("two rows, one right-padded", torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])),
        ("one row, no padding", torch.ones(1, 4, dtype=torch.long)),
        (
            "three rows, padded by different amounts",
            torch.tensor([[1, 1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0]]),
        ),
    ]
    return [Case(name, (mask,), lambda got, mask=mask: _check_bias(got, mask)) for name, mask in masks]


check_attention_bias = Checker(
    "attention_bias",
    _attention_bias_cases,
    """`fn(mask (B, L)) -> (B, L, L)` float: 0 where query i may attend to key j (j <= i and mask[b, j]),
    -inf elsewhere; rows right-padded.""",
)


FLOAT_IDS = (
    "float position ids ({dtype}): position ids are indices into GPT-2's position-embedding table (an "
    "nn.Embedding), and a lookup needs integers. GPT-2 crashes with 'Expected tensor for argument #1 'indices' "
    "to have one of the following scalar types: Long, Int'. Return torch.long."
)


def _check_position_ids(got, mask: torch.Tensor, what: str) -> None:
    if not torch.is_tensor(got) or got.shape != mask.shape:
        shape = tuple(got.shape) if torch.is_tensor(got) else kind(got)
        raise Wrong(f"expected a tensor of shape {tuple(mask.shape)} (the mask's), got {shape}")
    if got.is_floating_point():
        raise Wrong(FLOAT_IDS.format(dtype=got.dtype))
    if got.dtype not in (torch.long, torch.int, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise Wrong(f"position ids must be integers (torch.long), got {got.dtype}")
    if (got < 0).any():
        raise Wrong(
            f"negative position ids {show(got)}: -1 is not a position, and GPT-2's embedding lookup raises "
            "IndexError on it. On padding, cumsum - 1 gives -1: clamp it at 0."
        )
    real = mask.bool()
    expected = position_ids(mask)
    from_start = torch.arange(mask.shape[1]).expand_as(mask)
    name_the_mistake(
        got.masked_fill(~real, 0),
        expected.masked_fill(~real, 0),
        f"positions of the real slots ({what}, mask {mask.tolist()}); got {show(got)}",
        [
            (
                from_start.masked_fill(~real, 0),
                "positions counted from the start of the row, padding "
                "included: a left-padded row's first real slot must be position 0, not its slot index",
            ),
            (
                mask.long().cumsum(-1).masked_fill(~real, 0),
                "off by one: the first real slot must be position 0 (a running count gives 1, 2, 3, ...: subtract 1)",
            ),
        ],
    )


def _position_ids_cases() -> list[Case]:
    masks = [
        ("left padding", torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]), "three rows"),
        ("no padding", torch.ones(1, 5, dtype=torch.long), "one full row"),
        ("right padding", torch.tensor([[1, 1, 1, 0, 0]]), "one row padded on the right"),
    ]
    return [
        Case(name, (mask,), lambda got, mask=mask, what=what: _check_position_ids(got, mask, what))
        for name, mask, what in masks
    ]


check_position_ids = Checker(
    "position_ids",
    _position_ids_cases,
    """`fn(mask (B, L)) -> position ids (B, L)`, torch.long, for left-padded rows: 0, 1, 2, ... over the real
    slots; any position >= 0 on padding (nothing attends to it).""",
)

EXERCISES = (check_attention_bias, check_position_ids)
