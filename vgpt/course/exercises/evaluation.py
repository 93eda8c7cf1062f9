"""The checkers of notebook 08's exercises: BLEU's clipped n-gram precision, and CIDEr-D.

Each case computes the right answer and the answers of the usual mistakes; a
wrong result that equals one of those mistakes is named as that mistake.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from ...metrics import cider_d as reference_cider_d
from ...metrics import ngrams
from .grading import Case, Checker, Wrong, equal_number

# ------------------------------------------------------------------ clipped n-gram precision


def _clipped(
    candidate: list[str], references: list[list[str]], n: int, clip: str = "max", per: str = "ngrams"
) -> float:
    """Clipped n-gram precision, or one of its usual mistakes: `clip` "max" (right: the most any one
    reference has), "none" (every n-gram found in some reference counts), "sum" (the counts of all
    references added up); `per` "ngrams" (right) or "words" (divided by the candidate's word count)."""
    grams = ngrams(candidate, n)
    if not grams:
        return 0.0
    best: Counter = Counter()
    for ref in references:
        best = best | ngrams(ref, n) if clip != "sum" else best + ngrams(ref, n)
    if clip == "none":
        hits = sum(c for g, c in grams.items() if best[g])
    else:
        hits = sum(min(c, best[g]) for g, c in grams.items())
    return hits / (sum(grams.values()) if per == "ngrams" else len(candidate))


_PRECISION_MISTAKES = [
    (
        dict(clip="none"),
        "not clipped: an n-gram repeated in the candidate counts each time it appears, "
        "although the references have it fewer times",
    ),
    (dict(clip="sum"), "clipped by the counts of all references added up; clip by the most that any ONE reference has"),
    (
        dict(per="words"),
        "divided by the number of words; divide by the number of the candidate's n-grams (len - n + 1)",
    ),
]


def _is_number(got) -> bool:
    """A Python number (not a bool) or a one-element tensor."""
    if torch.is_tensor(got):
        return got.numel() == 1
    return isinstance(got, (int, float)) and not isinstance(got, bool)


def _precision_case(name: str, cand: list[str], refs: list[list[str]], n: int) -> Case:
    expected = _clipped(cand, refs, n)

    def judge(got):
        number = _is_number(got)
        if number and math.isclose(float(got), expected, abs_tol=1e-9):
            return
        for options, mistake in _PRECISION_MISTAKES:
            wrong = _clipped(cand, refs, n, **options)
            if number and not math.isclose(wrong, expected) and math.isclose(float(got), wrong):
                raise Wrong(f"{mistake} (got {float(got):.4f}, expected {expected:.4f})")
        equal_number(got, expected, f"{n}-gram precision of {' '.join(cand)!r} against {refs}")

    return Case(f"{name} ({' '.join(cand)!r}, n={n})", (cand, refs, n), judge)


def _clipped_precision_cases() -> list[Case]:
    return [
        _precision_case("a repeated word", "the the the the".split(), ["the cat".split(), "the the dog".split()], 1),
        _precision_case("two references", "a red red circle".split(),
                        ["a red circle".split(), "the red circle".split()], 1),
        _precision_case("bigrams", "a red circle at the top left".split(),
                        ["a red circle at the top".split(), "a big red circle".split()], 2),
        _precision_case("a sentence", "the cat sat on the mat".split(), ["the cat is on the mat".split()], 1),
        _precision_case("too short for any bigram", ["one"], ["one two".split()], 2),
    ]  # fmt: skip


check_clipped_precision = Checker(
    "clipped_precision",
    _clipped_precision_cases,
    """`fn(candidate words, list of reference word lists, n) -> float`: BLEU's modified n-gram
    precision, each n-gram counted at most as often as it appears in any one reference.""",
)


# ------------------------------------------------------------------ CIDEr-D


def _cider(
    hyps: list[list[str]],
    refs: list[list[list[str]]],
    n: int = 4,
    sigma: float = 6.0,
    tfidf: bool = True,
    clip: bool = True,
    penalty: bool = True,
    scale: float = 10.0,
    df_per: str = "image",
    refs_mean: bool = True,
) -> float:
    """CIDEr-D on word lists, with switches that reproduce the usual mistakes (all on: the right one)."""
    df: Counter = Counter()
    for rs in refs:
        if df_per == "image":  # an n-gram counts once per image, however many of its references have it
            df.update({g for r in rs for k in range(1, n + 1) for g in ngrams(r, k)})
        else:
            for r in rs:
                df.update({g for k in range(1, n + 1) for g in ngrams(r, k)})
    log_n = math.log(len(refs))

    def vector(words):
        if not tfidf:
            return [dict(ngrams(words, k)) for k in range(1, n + 1)]
        return [
            {g: c * (log_n - math.log(max(1.0, df[g]))) for g, c in ngrams(words, k).items()} for k in range(1, n + 1)
        ]

    total = 0.0
    for h, rs in zip(hyps, refs, strict=True):
        vh = vector(h)
        nh = [math.sqrt(sum(v * v for v in d.values())) for d in vh]
        score = 0.0
        for r in rs:
            vr = vector(r)
            for k in range(n):
                nr = math.sqrt(sum(v * v for v in vr[k].values()))
                dot = sum((min(v, vr[k].get(g, 0.0)) if clip else v) * vr[k].get(g, 0.0) for g, v in vh[k].items())
                sim = dot / (nh[k] * nr) if nh[k] and nr else 0.0
                score += sim * (math.exp(-((len(h) - len(r)) ** 2) / (2 * sigma**2)) if penalty else 1.0)
        total += score / n / (len(rs) if refs_mean else 1) * scale
    return total / len(hyps)


_CIDER_MISTAKES = [
    (
        dict(tfidf=False),
        "no tf-idf weighting: raw n-gram counts make 'a' (in every caption, worth nothing) "
        "weigh as much as a rare, telling word; weight each count by log(images / df)",
    ),
    (
        dict(clip=False),
        "the hypothesis's tf-idf values are not clipped to the reference's (the 'D' in "
        "CIDEr-D): repeating a right word must not raise the score",
    ),
    (dict(penalty=False), "no length penalty: multiply each similarity by exp(-(len(hyp) - len(ref))^2 / (2 * 6^2))"),
    (
        dict(scale=1.0),
        "on a 0-1 scale: CIDEr-D multiplies by 10 (COCO's scorer does; papers print it x100 "
        "again, e.g. 1.131 -> 113.1)",
    ),
    (dict(scale=100.0), "times 100, as papers print it; the scorer itself (and vgpt.metrics) multiplies by 10 only"),
    (
        dict(df_per="reference"),
        "document frequency counted per reference caption; count each n-gram once "
        "per image, however many of its references contain it",
    ),
    (dict(refs_mean=False), "summed over an image's references instead of averaged over them"),
    (dict(penalty=False, clip=False), "neither clipped nor length-penalised: that is plain CIDEr, not CIDEr-D"),
]


def _log_of_zero(err) -> str | None:
    if err.is_a("ValueError") and "math domain" in err.message:
        return ("log(0): an n-gram of the hypothesis that no reference has has df 0; its weight is "
                "log(images / max(1, df))")  # fmt: skip
    return None


def _cider_case(name: str, hyps: list[list[str]], refs: list[list[list[str]]]) -> Case:
    expected = reference_cider_d([" ".join(h) for h in hyps], [[" ".join(r) for r in rs] for rs in refs])

    def judge(got):
        number = _is_number(got)
        if number and math.isclose(float(got), expected, rel_tol=1e-6, abs_tol=1e-9):
            return
        for options, mistake in _CIDER_MISTAKES:
            wrong = _cider(hyps, refs, **options)
            if number and not math.isclose(wrong, expected) and math.isclose(float(got), wrong, rel_tol=1e-6):
                raise Wrong(f"{mistake} (got {float(got):.4f}, expected {expected:.4f})")
        equal_number(got, expected, "CIDEr-D", tol=1e-6)

    return Case(name, (hyps, refs), judge, on_error=_log_of_zero)


def _cider_d_cases() -> list[Case]:
    w = str.split
    return [
        _cider_case(
            "repeated words and lengths",
            [w("a red red red circle"), w("a tiny blue square"), w("a green triangle")],
            [[w("a red circle")], [w("a small blue square at the top")], [w("a green triangle on the left")]],
        ),
        _cider_case(
            "several references per image",
            [w("a large red circle above a small blue square"), w("a yellow circle")],
            [
                [w("a large red circle above a small blue square"), w("a red circle above a blue square")],
                [w("a small yellow circle on the left"), w("a yellow circle"), w("a yellow circle on the left")],
            ],
        ),
        _cider_case(
            "exact captions",
            [w("a red circle at the top"), w("a blue square at the bottom"), w("a green triangle")],
            [[w("a red circle at the top")], [w("a blue square at the bottom")], [w("a green triangle")]],
        ),
    ]


check_cider_d = Checker(
    "cider_d",
    _cider_d_cases,
    """`fn(hypotheses: list of word lists, references: list (per image) of lists of word lists) -> float`:
    CIDEr-D as COCO's scorer computes it (n = 1..4, sigma 6, times 10), equal to `vgpt.metrics.cider_d`.""",
)

EXERCISES = (check_clipped_precision, check_cider_d)
