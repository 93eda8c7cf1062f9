"""The checkers of notebook 03's exercises: labels by position, and the whole stage (inputs_embeds + labels).

The usual mistakes each get a name: labels set by token id (the caption's own
end-of-text is lost, since GPT-2 pads with end-of-text's id), labels shifted by
hand (GPT-2's loss shifts them itself), a forgotten prefix (labels or inputs
N slots short), and the prefix after the caption.
"""

from __future__ import annotations

import torch

from ...prefix import caption_labels
from .grading import Case, Checker, Wrong
from .mistakes import name_the_mistake

EOS = 0  # end-of-text's id in these cases, and the pad id: as with GPT-2, which has no pad token

BY_TOKEN_ID = (
    "labels set by token id lose the end-of-text label: GPT-2 pads with end-of-text's id, so "
    "'-100 where id == pad' also hides each caption's real end-of-text, and the model never "
    "learns to stop. Set -100 where the text mask is 0 (by position)."
)
SHIFTED = (
    "shifted labels: label p must be the token at position p, lined up with the input; GPT-2's loss "
    "compares the logits at p with the label at p + 1 by itself. Do not shift them."
)
FORGOT_PREFIX = (
    "forgot the prefix: the labels must cover the N prefix slots too (with -100), so that they "
    "line up with inputs_embeds: shape (B, N + T)."
)
PREFIX_SCORED = "the N prefix slots must be -100: there is nothing to predict on the image."
PADDING_SCORED = "padding is scored: labels must be -100 wherever the text mask is 0."


def _label_mistakes(ids: torch.Tensor, mask: torch.Tensor, n: int) -> list[tuple[torch.Tensor, str]]:
    right = caption_labels(ids, mask, n)
    pad = torch.full((ids.shape[0], 1), -100)
    prefix = torch.full((ids.shape[0], n), -100)
    return [
        (torch.cat([prefix, ids.masked_fill(ids == EOS, -100)], 1), BY_TOKEN_ID),
        (torch.cat([right[:, 1:], pad], 1), SHIFTED),
        (torch.cat([pad, right[:, :-1]], 1), SHIFTED),
        (ids.masked_fill(mask == 0, -100), FORGOT_PREFIX),
        (ids.masked_fill(ids == EOS, -100), FORGOT_PREFIX + " (And set them by position, not by token id.)"),
        (torch.cat([torch.full((ids.shape[0], n), EOS), ids.masked_fill(mask == 0, -100)], 1), PREFIX_SCORED),
        (torch.cat([prefix, ids], 1), PADDING_SCORED),
    ]


def _check_labels(got, ids, mask, n, what):
    if torch.is_tensor(got) and got.is_floating_point():
        raise Wrong(
            f"{what} are {got.dtype}: labels are token ids, an integer tensor (torch.long), as cross_entropy requires"
        )
    name_the_mistake(got, caption_labels(ids, mask, n), what, _label_mistakes(ids, mask, n))


# a caption that ends, then padding with the same id: the case that tells position from token id
IDS = torch.tensor([[5, 6, 7, EOS], [8, EOS, EOS, EOS]])
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
INSIDE = torch.tensor([[9, EOS, 4, EOS]])  # the pad id in the middle of a caption (a real token)


def _labels_case(name: str, ids, mask, n: int, what: str) -> Case:
    what = f"labels ({what}; ids {ids.tolist()}, mask {mask.tolist()}, N = {n})"
    return Case(name, (ids, mask, n), lambda got: _check_labels(got, ids, mask, n, what))


def _caption_labels_cases() -> list[Case]:
    return [
        _labels_case("a caption's own end-of-text, then padding with the same id", IDS, MASK, 3, "two captions"),
        _labels_case("a different number of prefix slots", IDS, MASK, 1, "N = 1"),
        _labels_case("the pad id inside a caption", INSIDE, torch.ones_like(INSIDE), 2, "no padding"),
    ]


check_caption_labels = Checker(
    "caption_labels",
    _caption_labels_cases,
    """`fn(ids (B, T), text_mask (B, T), n_prefix) -> labels (B, N + T)`: -100 on the prefix and on
    padding, the token id elsewhere, set by position.""",
)


def _inputs_case(name: str, weight: torch.Tensor, ids, mask, n: int, what: str) -> Case:
    prefix = torch.randn(ids.shape[0], n, 4)
    tokens = torch.nn.functional.embedding(ids, weight)

    def judge(got):
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Wrong("return two things: (inputs_embeds, labels)")
        embeds, labels = got
        if torch.is_tensor(embeds) and embeds.shape == tokens.shape:
            raise Wrong(
                f"forgot the prefix: inputs_embeds has shape {tuple(embeds.shape)} = (B, T, D), "
                f"expected (B, N + T, D) = {(ids.shape[0], n + ids.shape[1], 4)}"
            )
        known = [
            (
                torch.cat([tokens, prefix], 1),
                "the prefix is after the caption: put it in front, so that "
                "every caption token can see the image (GPT-2 is causal)",
            )
        ]
        if n == ids.shape[1]:
            known.append(
                (
                    torch.cat([prefix, tokens], -1),
                    "concatenated along the last dimension: the sequence dimension is dim 1",
                )
            )
        name_the_mistake(embeds, torch.cat([prefix, tokens], 1), f"inputs_embeds ({what})", known)
        _check_labels(labels, ids, mask, n, f"labels ({what}; ids {ids.tolist()}, mask {mask.tolist()}, N = {n})")

    return Case(name, (prefix, ids, mask, weight), judge, call="embedding")


def _prefix_inputs_cases() -> list[Case]:
    weight = torch.randn(12, 4)  # the embedding table, an nn.Embedding(12, 4) in the function's hands
    full = torch.tensor([[3, 4, 5, EOS], [6, 7, 8, EOS]])
    return [
        _inputs_case("a caption's own end-of-text, then padding with the same id", weight, IDS, MASK, 3,
                     "two captions, N = 3"),
        _inputs_case("a batch without padding, N = 1", weight, full, torch.ones_like(full), 1, "no padding"),
        _inputs_case("the pad id inside a caption, N = 4", weight, INSIDE, torch.ones_like(INSIDE), 4, "N = T = 4"),
    ]  # fmt: skip


check_prefix_inputs = Checker(
    "prefix_inputs",
    _prefix_inputs_cases,
    """`fn(prefix (B, N, D), ids (B, T), text_mask (B, T), embedding) -> (inputs_embeds (B, N + T, D),
    labels (B, N + T))`: the prefix in front of embedding(ids); labels as in `check_caption_labels`.""",
)

EXERCISES = (check_caption_labels, check_prefix_inputs)
