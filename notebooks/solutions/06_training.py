"""Solution to notebook 06's exercise."""

import math


def warmup_cosine(step, total, warmup):
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1 + math.cos(math.pi * progress))
