"""Checkers for the made-up notebook of tests/test_classroom.py, written the way the course's are.

Each is cases (inputs and a judge built from the right answer) for a
`Checker`: the grader hands the inputs to the student's function in the
sandbox and judges what comes back here. The tests copy this file next to the
teacher's notebook, as a teacher's own checker module beside the notebooks.
"""

import math

from vgpt.course.exercises.grading import Case, Checker, Wrong


def _add_judge(got):
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        raise Wrong(f"add(2, 3) gave {got!r}, expected 5.")
    if got == -1:
        raise Wrong("add(2, 3) gave -1: subtracts instead of adding.")
    if got != 5:
        raise Wrong(f"add(2, 3) gave {got!r}, expected 5.")


check_add = Checker("add", lambda: [Case("2 + 3", (2, 3), _add_judge)], "`fn(a, b) -> a + b`")


def _warmup_case(step, total, warmup, expected):
    def judge(got):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isclose(got, expected, abs_tol=1e-9):
            raise Wrong(f"step {step} of {total} (warmup {warmup}) gave {got!r}, expected {expected}.")

    return Case(f"step {step} of {total}, warmup {warmup}", (step, total, warmup), judge)


check_warmup_cosine = Checker(
    "warmup_cosine",
    lambda: [
        _warmup_case(*c) for c in [(0, 10, 2, 0.5), (1, 10, 2, 1.0), (2, 10, 2, 1.0), (6, 10, 2, 0.5), (10, 10, 2, 0.0)]
    ],  # fmt: skip
    "`fn(step, total, warmup) -> float`: linear warmup, then cosine decay to 0",
)
