"""The checkers of notebook 00's exercises: counting parameters, and the next-token loss by hand.

Each recognises the usual wrong answers by the number they give: a tied weight
counted twice, buffers counted as weights, the frozen part counted as trainable;
a loss that forgot the shift (or shifted the wrong way), counted padding, summed
instead of averaged, or was measured in bits instead of nats.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .calls import tied_gpt
from .grading import Case, Checker
from .numbers import name_the_number, one_number

# ------------------------------------------------------------------ count_parameters


def _count_parameters_cases() -> list[Case]:
    m = tied_gpt()
    total, buffers = 56, sum(b.numel() for b in m.buffers())
    twice = sum(p.numel() for _, p in m.named_parameters(remove_duplicate=False))
    state = sum(t.numel() for t in m.state_dict().values())

    def tied_and_buffers(got):
        name_the_number(
            one_number(got, "the count"),
            total,
            [
                (
                    state,
                    "That counts the state_dict: the tied weight twice and BatchNorm's buffers (running "
                    "statistics, not weights). Count module.parameters(), which yields each tensor once.",
                ),
                (
                    twice,
                    "The tied weight was counted twice (the head and the embedding are one tensor, as "
                    "GPT-2's lm_head and wte): module.parameters() yields each tensor once.",
                ),
                (
                    total + buffers,
                    "Buffers counted as parameters: BatchNorm's running mean, variance and step "
                    "count are not weights. Count module.parameters() only.",
                ),
                (16, "That is the trainable count: with trainable_only=False count every parameter, frozen or not."),
            ],
        )

    def trainable(got):
        name_the_number(
            one_number(got, "the trainable count"),
            16,
            [
                (56, "The frozen parameters were counted too: keep only those with p.requires_grad."),
                (40, "That counts the frozen parameters instead of the trainable ones: keep p.requires_grad."),
            ],
        )

    def plain(got):
        name_the_number(
            one_number(got, "the count"),
            16,
            [(12, "The bias was left out: Linear(3, 4) holds a 4 x 3 weight and a bias of 4.")],
        )

    def shared(got):
        name_the_number(
            one_number(got, "the count"),
            6,
            [(12, "A layer used twice holds one set of weights: count each tensor once.")],
        )

    return [
        Case("a model whose output head is tied to its embedding, with a BatchNorm", ("tied_gpt",), tied_and_buffers,
             call="module"),
        Case("the same model, trainable_only=True, the embedding (and so the tied head) frozen", ("tied_gpt",),
             trainable, call="module", kwargs={"trainable_only": True}),
        Case("Linear(3, 4)", ("linear_3_4",), plain, call="module"),
        Case("one Linear(2, 2) used twice in a Sequential", ("shared_layer",), shared, call="module"),
    ]  # fmt: skip


check_count_parameters = Checker(
    "count_parameters",
    _count_parameters_cases,
    """`fn(module, trainable_only=False) -> int`: the numbers in the module's parameters, each tensor
    counted once (a tied weight is one tensor), buffers left out; with `trainable_only`, only the
    tensors with `requires_grad`.""",
)


# ------------------------------------------------------------------ next_token_loss


def _loss(logits, ids, mask, shift=1, keep_by="target", reduce="mean") -> float:
    """The right answer (defaults) and the usual wrong ones, by their options."""
    if shift == 1:
        pred, target = logits[:, :-1], ids[:, 1:]
        keep = mask[:, 1:] if keep_by == "target" else mask[:, :-1]
    elif shift == 0:
        pred, target, keep = logits, ids, mask
    else:  # -1: position t scored against token t - 1
        pred, target, keep = logits[:, 1:], ids[:, :-1], mask[:, :-1]
    nll = F.cross_entropy(pred.transpose(1, 2), target, reduction="none")  # (B, T')
    if keep_by == "none":
        keep = torch.ones_like(keep)
    keep = keep.bool()
    if reduce == "per_row":
        return float(torch.stack([row[k].mean() for row, k in zip(nll, keep, strict=True)]).mean())
    total = nll[keep].sum()
    return float(total if reduce == "sum" else total / keep.sum())


def _logits_as_log_probs(logits, ids, mask) -> float:
    picked = -logits[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    return float(picked[mask[:, 1:].bool()].mean())


def _loss_case(name: str, logits, ids, mask) -> Case:
    right = _loss(logits, ids, mask)
    known = [
        (
            right / math.log(2),
            "That is in bits (log base 2); the course measures nats: the natural log, as F.cross_entropy does.",
        ),
        (
            _loss(logits, ids, mask, shift=0),
            "No shift: each position was scored against its own token. "
            "Position t predicts token t + 1: compare logits[:, :-1] "
            "with ids[:, 1:].",
        ),
        (
            _loss(logits, ids, mask, shift=-1),
            "Shifted the wrong way: logits[:, 1:] against ids[:, :-1] "
            "scores each position against the token before it. Use "
            "logits[:, :-1] against ids[:, 1:].",
        ),
        (
            _loss(logits, ids, mask, keep_by="none"),
            "Padding was counted: keep only predictions whose target is a real token, mask[:, 1:] == 1.",
        ),
        (
            _loss(logits, ids, mask, keep_by="input"),
            "Kept by the input's mask, mask[:, :-1]: that also "
            "counts the prediction made at a caption's last token, "
            "whose target is padding. A prediction counts when its "
            "target is real: mask[:, 1:].",
        ),
        (
            _loss(logits, ids, mask, reduce="sum"),
            "That is the sum over predicted tokens; the loss is their mean (nats per token).",
        ),
        (
            _loss(logits, ids, mask, reduce="per_row"),
            "Each caption was averaged first, then the captions: "
            "short captions weigh too much. Average over all "
            "predicted tokens of the batch at once.",
        ),
        (
            _logits_as_log_probs(logits, ids, mask),
            "Logits are not log-probabilities: take log_softmax over the vocabulary first (or use F.cross_entropy).",
        ),
    ]

    def judge(got):
        name_the_number(one_number(got, "the loss"), right, known, on=f" (ids {ids.tolist()}, mask {mask.tolist()})")

    return Case(name, (logits, ids, mask), judge)


def _next_token_loss_cases() -> list[Case]:
    # two right-padded rows of a 7-token vocabulary: a short caption and a long one
    ids = torch.tensor([[0, 3, 5, 0, 0, 0], [0, 4, 2, 6, 1, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    padded = _loss_case("two padded captions, vocabulary 7", torch.randn(2, 6, 7) * 2, ids, mask)
    ids3 = torch.randint(0, 11, (3, 5))

    def uniform(got):
        name_the_number(
            one_number(got, "the loss"),
            math.log(11),
            [
                (math.log2(11), "That is log2(11), in bits; the course measures nats: ln 11."),
                (1 / 11, "That is the probability 1/11; the loss is its negative log, ln 11."),
            ],
            on=" with every logit equal over a vocabulary of 11: the answer is ln 11",
        )

    # every token equally likely: the model that knows nothing
    uniform_case = Case("uniform logits", (torch.zeros(3, 5, 11), ids3, torch.ones_like(ids3)), uniform)
    no_padding = _loss_case(
        "no padding", torch.randn(1, 8, 5), torch.randint(0, 5, (1, 8)), torch.ones(1, 8, dtype=torch.long)
    )
    return [padded, uniform_case, no_padding]


check_next_token_loss = Checker(
    "next_token_loss",
    _next_token_loss_cases,
    """`fn(logits (B, T, V), ids (B, T), mask (B, T)) -> float`: the mean cross-entropy, in nats, of
    predicting each token from the position before it (logits[:, t] predicts ids[:, t + 1]), over the
    predictions whose target is a real token (mask 1), padding left out.""",
)

EXERCISES = (check_count_parameters, check_next_token_loss)
