"""How every exercise is checked: cases built and judged by the checker, the student's function only called.

A checker is three parts, so that the part that decides never runs beside
the student's code:

- **cases**: each `Case` names what to hand the function (`args`, data: tensors,
  numbers, lists, strings), how to call it (`call`, one of `calls.CALLS`: plain
  `apply`, or one that builds an object from the data first, an image, a
  module, an optimizer, a language model) and its `judge`, built beside the
  inputs from the right answer and the answers the usual mistakes give;
- **the call**: `calls.call(case.call, fn, args)` runs the student's function on
  the inputs and gives back what it returned, as data (`wire`);
- **the judge**: `case.judge(got)` returns if `got` is right, or raises `Wrong`
  naming the mistake.

`check_x(fn)` in a notebook runs all three in the notebook's kernel (the
call's result still goes through `wire`, so the judge sees the same data the
grader would); prints "Correct!" or what went wrong on which case, and returns
True or False. It never raises: a function that still raises
`NotImplementedError` is reported as not written yet, so a notebook with an
unfinished exercise still runs to the end. The grader runs the calls in the
student's sandboxed process and the judging in its own (`vgpt.classroom`).

A function defined inside `vgpt` is refused: the exercise is to write it.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .. import parts
from .calls import call
from .wire import Raised, kind, roundtrip


class Wrong(Exception):
    """A case's answer is wrong; the message names the mistake."""


@dataclass(frozen=True)
class Case:
    """One case of a checker: its inputs as data, how the function is called, and how the answer is judged."""

    name: str  # what the messages call it: "two padded captions, vocabulary 7"
    args: tuple  # the function's inputs (or the call's, for calls that build objects), as data
    judge: Callable[[object], str | None]  # raises Wrong unless the call's result is right; may return a note
    call: str = "apply"
    kwargs: dict = field(default_factory=dict)
    on_error: Callable[[Raised], str | None] | None = None  # names a mistake from what the function raised


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    not_written: bool = False  # the function still raises NotImplementedError (a stub)


class Checker:
    """`check_x = Checker("x", cases)`; `check_x(fn)` checks `fn` here and prints the verdict.

    The grader finds the checker a checker cell names (`assert check_x(x)`), builds its cases
    once, has each student's function called on them in a sandbox, and calls `judge` on the
    results. `cases` builds the cases from a fixed seed, without touching the caller's random
    generators; they are built once per process.
    """

    def __init__(
        self,
        name: str,
        cases: Callable[[], list[Case]],
        doc: str = "",
        *,
        view: str = "exercises",
        seconds: float | None = None,
        requires: tuple[Checker, ...] = (),
        parts: dict[str, str] | None = None,
    ):
        self.name, self._build, self.__doc__ = name, cases, doc
        self.view = view  # what the grader's sandbox holds of vgpt: "exercises" (the call side only) or "package"
        self.seconds = seconds  # the time one student's function gets here, if not the grader's --timeout
        self.requires = requires  # checkers the same function must pass first, in the "exercises" sandbox
        # a project made of parts from other notebooks: function -> the notebook whose exercise it is. The
        # function checked is then {name: function}, each part from its own cell, and `requires` their checkers
        self.parts = dict(parts or {})
        self._cases: list[Case] | None = None

    def __repr__(self) -> str:
        return f"<checker of {self.name}>"

    def cases(self) -> list[Case]:
        if self._cases is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                self._cases = self._build()
        return self._cases

    def __call__(self, fn) -> bool:
        """Check `fn` here and print the verdict. A part of the captioner that passes is kept for notebook 10
        (`course.parts.keep`: the cell that defined it, in the work folder)."""
        verdict = self.verdict(fn)
        print(verdict.message)
        if verdict.passed:
            parts.keep(self.name, fn)
        return verdict.passed

    def verdict(self, fn) -> Verdict:
        """Check `fn` in this process: case by case, stopping at the first that is not right."""
        for one in fn.values() if isinstance(fn, dict) else [fn]:  # a project's parts come as a dict
            module = getattr(one, "__module__", None) or ""
            if module == "vgpt" or module.startswith("vgpt."):
                return Verdict(False, f"{self.name}: that is vgpt's own {module}.{getattr(one, '__qualname__', one)}; "
                                      f"the exercise is to write it yourself.")  # fmt: skip
        notes = []
        for case in self.cases():
            args, kwargs = roundtrip((case.args, case.kwargs))  # fresh copies: the function may change them
            try:
                got = call(case.call, fn, args, kwargs)
            except Exception as err:  # the student's code crashed: judged as data, the notebook keeps running
                got = err
            failed = self.judge_case(case, roundtrip(got), notes)
            if failed:
                return failed
        return self.passed(notes)

    def judge(self, results: list) -> Verdict:
        """The verdict on results the grader got back from the sandbox, one per case (a value or a Raised)."""
        cases = self.cases()
        if len(results) != len(cases):
            return Verdict(False, f"{self.name}: the run reported {len(results)} results for {len(cases)} cases")
        notes = []
        for case, got in zip(cases, results, strict=True):
            failed = self.judge_case(case, got, notes)
            if failed:
                return failed
        return self.passed(notes)

    def passed(self, notes: list[str]) -> Verdict:
        said = "".join(f"; {note}" for note in notes)
        return Verdict(True, f"{self.name}: Correct! ({len(self.cases())} cases{said})")

    def judge_case(self, case: Case, got, notes: list[str]) -> Verdict | None:
        """None if `got` (the call's result, after the trip through `wire`) is right, else the verdict; what a
        judge says of a right answer (a project's metric) goes to `notes`."""
        try:
            if isinstance(got, Raised):
                raise got
            note = case.judge(got)
            if isinstance(note, str):
                notes.append(note)
            return None
        except Raised as err:
            if err.not_implemented:
                return Verdict(False, f"{self.name}: not written yet. Fill in the function, run its cell, "
                                      f"then run this one again.", not_written=True)  # fmt: skip
            named = case.on_error(err) if case.on_error else None
            if named:
                return Verdict(False, f"{self.name}: not yet. On {case.name}: {named}")
            if err.is_a("MemoryError"):
                return Verdict(False, f"{self.name}: not yet. On {case.name} it ran out of memory (MemoryError)")
            return Verdict(False, f"{self.name}: not yet. On {case.name} it raised {err.type_name}: {err.message}")
        except Wrong as err:
            return Verdict(False, f"{self.name}: not yet. On {case.name}: {err}")
        except Exception as err:  # noqa: BLE001 (an answer of a shape no judge foresaw)
            return Verdict(False, f"{self.name}: not yet. On {case.name} the answer could not be checked "
                                  f"({type(err).__name__}: {err})")  # fmt: skip


def check_my_work(checkers: list[Checker], namespace: dict) -> list[tuple[str, bool, str]]:
    """Every checker on the function of its name in `namespace` (a notebook's globals()): a table of
    (exercise, passed, message), printed. An exercise not written yet, or whose cell was never run,
    says so; what the functions print while they are checked is left out of the table."""
    rows = []
    for checker in checkers:
        fn = namespace.get(checker.name)
        if fn is None:
            rows.append((checker.name, False, "not defined: run its exercise cell first"))
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            verdict = checker.verdict(fn)
        message = verdict.message.removeprefix(f"{checker.name}: ")
        rows.append((checker.name, verdict.passed, message))
    width = max(len("exercise"), *(len(name) for name, _, _ in rows))
    print(f"{'exercise':<{width}}  passed  message")
    for name, passed, message in rows:
        lines = message.splitlines() or [""]
        print(f"{name:<{width}}  {'yes' if passed else 'no':<6}  {lines[0]}")
        for line in lines[1:]:
            print(f"{'':<{width}}  {'':<6}  {line}")
    done = sum(passed for _, passed, _ in rows)
    print(f"{done} of {len(rows)} exercises pass" + (": all done." if done == len(rows) else "."))
    return rows


def same(got, expected, what: str, atol: float = 1e-5) -> None:
    """Raise `Wrong` unless `got` is a tensor of `expected`'s shape and values."""
    if not torch.is_tensor(got):
        raise Wrong(f"expected a tensor for {what}, got {kind(got)}")
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
    if isinstance(got, bool) or not isinstance(got, (int, float)) and not (torch.is_tensor(got) and got.numel() == 1):
        raise Wrong(f"{what}: got {got!r}, expected {expected}")
    if not math.isclose(float(got), float(expected), rel_tol=tol, abs_tol=tol):
        raise Wrong(f"{what}: got {float(got)}, expected {expected}")
