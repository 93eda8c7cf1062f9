"""Stage 08: caption metrics, BLEU-1..4, ROUGE-L and CIDEr-D, as the COCO caption evaluation
computes them (several references per image). Shapes World's exact match and per-attribute accuracy
are in `world/scores.py`.

The COCO code tokenizes with the Stanford PTB tokenizer; `tokenize` here is a
simple stand-in (lowercase, punctuation removed, split on spaces), which gives
the same tokens for plain captions.
"""

from __future__ import annotations

import math
import re
from collections import Counter


def tokenize(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def ngrams(words: list[str], n: int) -> Counter:
    """Counts of the n-grams (tuples of n words) in a list of words."""
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def bleu(hypotheses: list[str], references: list[list[str]], max_n: int = 4) -> list[float]:
    """Corpus BLEU-1..max_n: clipped n-gram counts summed over the corpus, and
    a brevity penalty from each hypothesis's closest reference length."""
    tiny, small = 1e-15, 1e-9  # the COCO scorer's smoothing constants
    correct, guess = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        h, rs = tokenize(hyp), [tokenize(r) for r in refs]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]  # closest, ties to shorter
        for n in range(1, max_n + 1):
            counts = ngrams(h, n)
            most = Counter()
            for r in rs:
                most |= ngrams(r, n)  # per n-gram, the most any one reference has
            correct[n - 1] += sum(min(c, most[g]) for g, c in counts.items())
            guess[n - 1] += max(len(h) - n + 1, 0)
    ratio = (hyp_len + tiny) / (ref_len + small)
    penalty = 1.0 if ratio >= 1 else math.exp(1 - 1 / ratio)
    scores, product = [], 1.0
    for n in range(max_n):
        product *= (correct[n] + tiny) / (guess[n] + small)
        scores.append(product ** (1 / (n + 1)) * penalty)
    return scores


def _lcs(a: list[str], b: list[str]) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def rouge_l(hypotheses: list[str], references: list[list[str]], beta: float = 1.2) -> float:
    """Mean over images of the LCS F-measure, with precision and recall each the
    best over that image's references."""
    total = 0.0
    for hyp, refs in zip(hypotheses, references):
        h = tokenize(hyp)
        lcs = [(_lcs(h, r), len(r)) for r in map(tokenize, refs)]
        p = max((common / len(h) if h else 0.0) for common, _ in lcs)
        r = max((common / n if n else 0.0) for common, n in lcs)
        total += (1 + beta**2) * p * r / (r + beta**2 * p) if p > 0 and r > 0 else 0.0
    return total / max(len(hypotheses), 1)


def cider_d(hypotheses: list[str], references: list[list[str]], n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr-D: tf-idf n-gram cosine similarity to each reference, with the
    hypothesis counts clipped to the reference's and a Gaussian length
    penalty; averaged over n = 1..4 and references, times 10."""
    refs_tok = [[tokenize(r) for r in refs] for refs in references]
    df = Counter()
    for refs in refs_tok:
        df.update({g for r in refs for k in range(1, n + 1) for g in ngrams(r, k)})
    log_images = math.log(max(len(references), 1))

    def vector(words):
        vec = [
            {g: c * (log_images - math.log(max(1.0, df[g]))) for g, c in ngrams(words, k).items()}
            for k in range(1, n + 1)
        ]
        norms = [math.sqrt(sum(v * v for v in d.values())) for d in vec]
        return vec, norms, len(words)

    total = 0.0
    for hyp, refs in zip(hypotheses, refs_tok):
        vh, nh, lh = vector(tokenize(hyp))
        score = [0.0] * n
        for ref in refs:
            vr, nr, lr = vector(ref)
            for k in range(n):
                val = sum(min(v, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, v in vh[k].items())
                if nh[k] and nr[k]:
                    val /= nh[k] * nr[k]
                score[k] += val * math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
        total += sum(score) / n / len(refs) * 10.0
    return total / max(len(hypotheses), 1)


def caption_scores(hypotheses: list[str], references: list[list[str]]) -> dict[str, float]:
    """BLEU-1..4, ROUGE-L and CIDEr-D in one dict."""
    b = bleu(hypotheses, references)
    return {
        **{f"BLEU-{i + 1}": b[i] for i in range(4)},
        "ROUGE-L": rouge_l(hypotheses, references),
        "CIDEr-D": cider_d(hypotheses, references),
    }
