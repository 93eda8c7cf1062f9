"""Checkers for the made-up notebook of tests/test_classroom.py, written the way the course's are.

Each prints "Correct!" or names the mistake, returns True or False, and refuses
the package's own implementation. The tests copy this file next to the
teacher's notebook, as a support file the grader copies into each run's folder.
"""

import math


def _refused(fn, title: str) -> bool:
    module = getattr(fn, "__module__", None) or ""
    if module.split(".")[0] == "vgpt":
        print(f"{title}: refused, this is vgpt's own {module}.{fn.__name__}; write your own.")
        return True
    return False


def check_add(fn) -> bool:
    if _refused(fn, "add"):
        return False
    try:
        got = fn(2, 3)
    except NotImplementedError:
        print("add: not written yet.")
        return False
    if got == -1:
        print("add: not yet. add(2, 3) gave -1: subtracts instead of adding.")
        return False
    if got != 5:
        print(f"add: not yet. add(2, 3) gave {got!r}, expected 5.")
        return False
    print("add: Correct!")
    return True


def check_warmup_cosine(fn) -> bool:
    if _refused(fn, "warmup_cosine"):
        return False
    cases = [(0, 10, 2, 0.5), (1, 10, 2, 1.0), (2, 10, 2, 1.0), (6, 10, 2, 0.5), (10, 10, 2, 0.0)]
    try:
        for step, total, warmup, expected in cases:
            got = fn(step, total, warmup)
            if not math.isclose(got, expected, abs_tol=1e-9):
                print(
                    f"warmup_cosine: not yet. Step {step} of {total} (warmup {warmup}) gave {got}, expected {expected}."
                )
                return False
    except NotImplementedError:
        print("warmup_cosine: not written yet.")
        return False
    print(f"warmup_cosine: Correct! ({len(cases)} cases)")
    return True
