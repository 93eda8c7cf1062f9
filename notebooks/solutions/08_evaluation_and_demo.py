"""Solution to notebook 08's exercise."""

from collections import Counter


def clipped_precision(candidate, references, n):
    def grams(words):
        return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))

    counts = grams(candidate)
    if not counts:
        return 0.0
    most = Counter()
    for ref in references:
        most |= grams(ref)  # | keeps the larger count of each n-gram
    return sum(min(c, most[g]) for g, c in counts.items()) / sum(counts.values())
