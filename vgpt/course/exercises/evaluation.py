"""The checkers of notebook 08's exercises."""

from __future__ import annotations

from collections import Counter

from ...metrics import ngrams
from .grading import equal_number, grade


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
    cases = [
        ("the cat sat on the mat".split(), ["the cat is on the mat".split()], 1),
        ("the the the the".split(), ["the cat".split(), "the the dog".split()], 1),
        ("a red circle at the top left".split(), ["a red circle at the top".split(), "a big red circle".split()], 2),
        ("one".split(), ["one two".split()], 2),
    ]

    def run(cand, refs, n):
        def case(f):
            equal_number(f(cand, refs, n), _clipped(cand, refs, n), f"{n}-gram precision of {' '.join(cand)!r}")

        return case

    return grade("clipped_precision", fn, [(f"case {i + 1}", run(*c)) for i, c in enumerate(cases)])
