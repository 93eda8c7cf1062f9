"""Checkers for the notebooks' exercises.

Each `check_...(fn)` runs the student's function on cases that the usual
mistakes get wrong, prints "Correct!" or what went wrong on which case, and
returns True or False. It never raises: a function that still raises
`NotImplementedError` is reported as not written yet, so a notebook with an
unfinished exercise still runs to the end.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable

import torch
from torch import nn

from .masks import position_ids_from_mask
from .metrics import ngrams
from .prefix import caption_labels
from .schedule import warmup_cosine


class _Wrong(Exception):
    pass


def _grade(title: str, fn: Callable, cases: list[tuple[str, Callable[[Callable], None]]]) -> bool:
    for name, case in cases:
        try:
            case(fn)
        except NotImplementedError:
            print(f"{title}: not written yet. Fill in the function, run its cell, then run this one again.")
            return False
        except _Wrong as err:
            print(f"{title}: not yet. On {name}: {err}")
            return False
        except Exception as err:  # the student's code crashed: say where, keep the notebook running
            print(f"{title}: not yet. On {name} it raised {err.__class__.__name__}: {err}")
            return False
    print(f"{title}: Correct! ({len(cases)} cases)")
    return True


def _same(got, expected, what: str, atol: float = 1e-5) -> None:
    if not torch.is_tensor(got):
        raise _Wrong(f"expected a tensor for {what}, got {type(got).__name__}")
    if got.shape != expected.shape:
        raise _Wrong(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(got.float(), expected.float(), atol=atol, rtol=1e-4):
        where = (got.float() - expected.float()).abs().argmax().item()
        raise _Wrong(f"{what} differs (first large difference at flat index {where}: "
                     f"got {got.flatten()[where].item():.4g}, expected {expected.flatten()[where].item():.4g})")


def _equal_number(got, expected, what: str, tol: float = 1e-6) -> None:
    if got is None or not math.isclose(float(got), float(expected), rel_tol=tol, abs_tol=tol):
        raise _Wrong(f"{what}: got {got}, expected {expected}")


# ------------------------------------------------------------------ 00

def check_count_parameters(fn) -> bool:
    """`fn(module, trainable_only=False) -> int`: numbers in the module's parameters, each tensor once."""
    torch.manual_seed(0)

    def plain(f):
        _equal_number(f(nn.Linear(3, 4)), 16, "Linear(3, 4) (weight 4 x 3 + bias 4)")

    def frozen(f):
        m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        m[0].requires_grad_(False)
        _equal_number(f(m), 26, "all parameters of Linear(3,4) + Linear(4,2)")
        _equal_number(f(m, trainable_only=True), 10, "trainable only, with the first layer frozen")

    def buffers_and_sharing(f):
        shared = nn.Linear(2, 2)
        m = nn.Sequential(shared, nn.BatchNorm1d(2), shared)  # a tied layer, and buffers that are not weights
        _equal_number(f(m), 10, "a layer used twice (count it once) + BatchNorm (buffers are not parameters)")

    return _grade("count_parameters", fn, [("a Linear layer", plain), ("a half-frozen model", frozen),
                                           ("tied weights and buffers", buffers_and_sharing)])


# ------------------------------------------------------------------ 01

def _patches(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    b, c, h, w = pixels.shape
    grid = pixels.unfold(2, patch, patch).unfold(3, patch, patch)  # (B, C, H/p, W/p, p, p)
    return grid.permute(0, 2, 3, 1, 4, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def check_patchify(fn) -> bool:
    """`fn(pixels (B, C, H, W), patch) -> (B, P, C * patch * patch)`, patches row by row, each
    flattened channel-first, as a ViT's patch embedding (a strided convolution) reads them."""
    torch.manual_seed(0)

    def square(f):
        x = torch.randn(2, 3, 8, 8)
        _same(f(x, 4), _patches(x, 4), "patches of a 2 x 3 x 8 x 8 batch, patch 4")

    def wide(f):
        x = torch.arange(3 * 4 * 12, dtype=torch.float).view(1, 3, 4, 12)
        _same(f(x, 2), _patches(x, 2), "patches of a wide 4 x 12 image, patch 2 (row order matters)")

    def like_the_conv(f):
        conv = nn.Conv2d(3, 5, kernel_size=4, stride=4, bias=False)
        x = torch.randn(1, 3, 8, 12)
        expected = conv(x).flatten(2).transpose(1, 2)  # (1, P, 5)
        _same(f(x, 4) @ conv.weight.reshape(5, -1).T, expected, "patches times the conv's weights", atol=1e-4)

    return _grade("patchify", fn, [("a square image", square), ("a wide image", wide),
                                   ("the patch embedding", like_the_conv)])


# ------------------------------------------------------------------ 02

def check_rms_scale(fn) -> bool:
    """`fn(prefix (B, N, D), table (V, D)) -> float`: the factor that gives the prefix the
    root-mean-square size of the token embedding table."""
    torch.manual_seed(0)

    def case(prefix, table, what):
        def run(f):
            factor = f(prefix, table)
            got = (prefix * float(factor)).pow(2).mean().sqrt()
            _equal_number(got.item(), table.pow(2).mean().sqrt().item(), f"RMS after scaling ({what})", 1e-4)
        return run

    return _grade("rms_scale", fn, [
        ("centred vectors", case(torch.randn(2, 5, 8) * 7, torch.randn(30, 8) * 0.1, "centred")),
        ("vectors with an offset", case(torch.randn(2, 5, 8) + 3, torch.randn(30, 8) * 0.1 - 0.2, "offset: "
                                        "the standard deviation is not the RMS"))])


# ------------------------------------------------------------------ 03

def check_caption_labels(fn) -> bool:
    """`fn(ids (B, T), text_mask (B, T), n_prefix) -> labels (B, N + T)`: -100 on the prefix and on
    padding, the token id elsewhere, set by position."""
    eos = 0

    def run(ids, mask, n, what):
        def case(f):
            _same(f(ids, mask, n), caption_labels(ids, mask, n), what)
        return case

    ids = torch.tensor([[5, 6, 7, eos], [8, eos, eos, eos]])  # row 2: its own end-of-text, then padding
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    inside = torch.tensor([[9, eos, 4, eos]])  # a caption containing the pad id in its middle
    return _grade("caption_labels", fn, [
        ("two padded captions, 3 prefix slots", run(ids, mask, 3, "labels")),
        ("end-of-text is also the pad id", run(ids, mask, 1, "labels (the first end-of-text of row 2 "
                                                            "is a label: the model must learn to stop)")),
        ("a pad id inside a caption", run(inside, torch.ones_like(inside), 2, "labels"))])


# ------------------------------------------------------------------ 04

def check_position_ids(fn) -> bool:
    """`fn(mask (B, L)) -> position ids (B, L)` for left-padded rows: 0, 1, 2, ... over the real slots.
    What the padding slots get does not matter (nothing attends to them)."""
    def run(mask, what):
        def case(f):
            got, expected = f(mask), position_ids_from_mask(mask)
            if not torch.is_tensor(got) or got.shape != mask.shape:
                raise _Wrong(f"expected a tensor of shape {tuple(mask.shape)}")
            real = mask.bool()
            _same(got[real], expected[real], f"positions of the real slots ({what})")
        return case

    return _grade("position_ids", fn, [
        ("no padding", run(torch.ones(1, 5, dtype=torch.long), "one full row")),
        ("left padding", run(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]]), "three rows"))])


# ------------------------------------------------------------------ 05

def check_lora_forward(fn) -> bool:
    """`fn(x, weight (in, out), bias, A (r, in), B (out, r), alpha) -> y`: a GPT-2 Conv1D layer
    (y = x W + b) plus the LoRA detour (alpha / r) x A^T B^T."""
    torch.manual_seed(0)

    def run(r, alpha, what):
        def case(f):
            x, w, b = torch.randn(2, 3, 6), torch.randn(6, 4), torch.randn(4)
            a, bb = torch.randn(r, 6), torch.randn(4, r)
            expected = x @ w + b + (x @ a.T @ bb.T) * (alpha / r)
            _same(f(x, w, b, a, bb, alpha), expected, what, atol=1e-4)
        return case

    def starts_as_base(f):
        x, w, b = torch.randn(1, 2, 6), torch.randn(6, 4), torch.randn(4)
        _same(f(x, w, b, torch.randn(2, 6), torch.zeros(4, 2), 4), x @ w + b, "output with B = 0 (the base layer)")

    return _grade("lora_forward", fn, [("B = 0", starts_as_base), ("r 2, alpha 4", run(2, 4, "output")),
                                       ("r 3, alpha 3", run(3, 3, "output (scaling alpha / r = 1)"))])


# ------------------------------------------------------------------ 06

def check_warmup_cosine(fn) -> bool:
    """`fn(step, total, warmup) -> float`: linear warmup to 1 over `warmup` steps (step 0 gives
    1 / warmup), then cosine decay to 0 at `total`."""
    def run(total, warmup):
        def case(f):
            for step in range(total):
                _equal_number(f(step, total, warmup), warmup_cosine(step, total, warmup),
                              f"step {step} of {total} with {warmup} warmup steps")
        return case

    return _grade("warmup_cosine", fn, [("10 steps, 3 warmup", run(10, 3)), ("100 steps, 10 warmup", run(100, 10)),
                                        ("no warmup", run(7, 0))])


# ------------------------------------------------------------------ 07

def check_top_k_filter(fn) -> bool:
    """`fn(logits (B, V), k) -> (B, V)`: the k largest logits of each row kept as they are,
    every other one set to -inf (so softmax gives it probability 0)."""
    torch.manual_seed(0)

    def run(k):
        def case(f):
            logits = torch.randn(3, 11)
            got = f(logits.clone(), k)
            keep = logits >= logits.topk(k, dim=-1).values[:, -1:]
            expected = logits.masked_fill(~keep, float("-inf"))
            if not torch.is_tensor(got) or got.shape != logits.shape:
                raise _Wrong(f"expected a tensor of shape {tuple(logits.shape)}, in the original order")
            if not torch.equal(torch.isinf(got), ~keep):
                raise _Wrong(f"with k={k} each row must keep exactly its {k} largest logits")
            _same(got[keep], expected[keep], "the kept logits (unchanged)")
        return case

    return _grade("top_k_filter", fn, [("k = 1", run(1)), ("k = 4", run(4)), ("k = V", run(11))])


# ------------------------------------------------------------------ 08

def _clipped(candidate: list[str], references: list[list[str]], n: int) -> float:
    grams = ngrams(candidate, n)
    if not grams:
        return 0.0
    best: Counter = Counter()
    for ref in references:
        best |= ngrams(ref, n)
    return sum(min(c, best[g]) for g, c in grams.items()) / sum(grams.values())


def check_clipped_precision(fn) -> bool:
    """`fn(candidate words, list of reference word lists, n) -> float`: BLEU's modified n-gram
    precision, each n-gram counted at most as often as it appears in any one reference."""
    cases = [("the cat sat on the mat".split(), ["the cat is on the mat".split()], 1),
             ("the the the the".split(), ["the cat".split(), "the the dog".split()], 1),
             ("a red circle at the top left".split(), ["a red circle at the top".split(),
                                                       "a big red circle".split()], 2),
             ("one".split(), ["one two".split()], 2)]

    def run(cand, refs, n):
        def case(f):
            _equal_number(f(cand, refs, n), _clipped(cand, refs, n), f"{n}-gram precision of {' '.join(cand)!r}")
        return case

    return _grade("clipped_precision", fn, [(f"case {i + 1}", run(*c)) for i, c in enumerate(cases)])
