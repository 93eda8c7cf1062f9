"""The learning-rate schedule every training loop here uses: linear warmup, then cosine decay to 0."""

import math


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Multiplier for the base learning rate at `step` (0-based) of `total`."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
