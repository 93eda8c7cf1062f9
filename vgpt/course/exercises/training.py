"""The checkers of notebook 06's exercises."""

from __future__ import annotations

from ...schedule import warmup_cosine
from .grading import equal_number, grade


def check_warmup_cosine(fn) -> bool:
    """`fn(step, total, warmup) -> float`: linear warmup to 1 over `warmup` steps (step 0 gives
    1 / warmup), then cosine decay to 0 at `total`."""

    def run(total, warmup):
        def case(f):
            for step in range(total):
                equal_number(
                    f(step, total, warmup),
                    warmup_cosine(step, total, warmup),
                    f"step {step} of {total} with {warmup} warmup steps",
                )

        return case

    return grade(
        "warmup_cosine",
        fn,
        [("10 steps, 3 warmup", run(10, 3)), ("100 steps, 10 warmup", run(100, 10)), ("no warmup", run(7, 0))],
    )
