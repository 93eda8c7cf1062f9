"""How every exercise is graded: run the student's function on cases, say "Correct!" or name the mistake.

Each `check_...(fn)` runs the student's function on cases that the usual
mistakes get wrong, the most telling case first, prints "Correct!" or what
went wrong on which case, and returns True or False. It never raises: a
function that still raises `NotImplementedError` is reported as not written
yet, so a notebook with an unfinished exercise still runs to the end. (The
checker cells say `assert check_...(fn)`, which is what nbgrader grades.)

A function defined inside `vgpt` is refused: the exercise is to write it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


class Wrong(Exception):
    """A case's answer is wrong; the message names the mistake."""


def grade(title: str, fn: Callable, cases: list[tuple[str, Callable[[Callable], None]]]) -> bool:
    """Run `cases` (name, case) on `fn` in order; print and return whether all passed."""
    module = getattr(fn, "__module__", None) or ""
    if module == "vgpt" or module.startswith("vgpt."):
        print(
            f"{title}: that is vgpt's own {module}.{getattr(fn, '__qualname__', fn)}; "
            f"the exercise is to write it yourself."
        )
        return False
    for name, case in cases:
        try:
            case(fn)
        except NotImplementedError:
            print(f"{title}: not written yet. Fill in the function, run its cell, then run this one again.")
            return False
        except Wrong as err:
            print(f"{title}: not yet. On {name}: {err}")
            return False
        except Exception as err:  # the student's code crashed: say where, keep the notebook running
            print(f"{title}: not yet. On {name} it raised {err.__class__.__name__}: {err}")
            return False
    print(f"{title}: Correct! ({len(cases)} cases)")
    return True


def same(got, expected, what: str, atol: float = 1e-5) -> None:
    """Raise `Wrong` unless `got` is a tensor of `expected`'s shape and values."""
    if not torch.is_tensor(got):
        raise Wrong(f"expected a tensor for {what}, got {type(got).__name__}")
    if got.shape != expected.shape:
        raise Wrong(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(got.float(), expected.float(), atol=atol, rtol=1e-4):
        where = (got.float() - expected.float()).abs().argmax().item()
        raise Wrong(
            f"{what} differs (first large difference at flat index {where}: "
            f"got {got.flatten()[where].item():.4g}, expected {expected.flatten()[where].item():.4g})"
        )


def equal_number(got, expected, what: str, tol: float = 1e-6) -> None:
    """Raise `Wrong` unless `got` is a number close to `expected`."""
    if got is None or not math.isclose(float(got), float(expected), rel_tol=tol, abs_tol=tol):
        raise Wrong(f"{what}: got {got}, expected {expected}")
