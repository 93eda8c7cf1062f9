"""Your parts, gathered for notebook 10: each part of the captioner (`parts.PARTS`) found, checked, and said.

    my_parts = gather.my_parts(globals())

A part is the function of its name defined in notebook 10 itself, else the exercise cell its own
notebook's checker kept (`parts.keep`), run here in the learner's kernel. Each one found is checked again
with its exercise's checker; one not written yet (a stub that raises NotImplementedError), not found, or
whose kept cell does not run alone is left out, and the package's stage stands in for it in the captioner
(`capstone.py`). The table this prints says which, and why.
"""

from __future__ import annotations

import contextlib
import io

from . import exercises, notebook, parts
from .parts import PARTS

CHECKERS = {p.name: getattr(exercises, f"check_{p.name}") for p in PARTS}


def my_parts(namespace: dict | None = None, kept: bool = True) -> dict:
    """The learner's parts, as {name: function}, and a table of where each came from.

    A part is the function of its name in `namespace` (pass `globals()`: one defined in this notebook
    wins), else the cell its notebook's checker kept (with `kept`), run here. Each is checked with its
    own exercise's checker; one not written yet (it still raises NotImplementedError), not found, or
    whose kept cell does not run, is left out, and the table says the package's stands in for it."""
    found, rows = {}, []
    for part in PARTS:
        fn, where, trouble = _find(part, namespace or {}, kept)
        if fn is None:
            rows.append((part, "the package's", trouble))
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            verdict = CHECKERS[part.name].verdict(fn)
        if verdict.not_written:
            rows.append((part, "the package's", f"{where} is not written yet (it raises NotImplementedError)"))
            continue
        found[part.name] = fn
        said = "passes its checker" if verdict.passed else verdict.message.removeprefix(f"{part.name}: ")
        rows.append((part, "yours", f"{where}; {said}"))
    if kept:
        print(f"parts kept by the notebooks' checkers: {notebook.where(parts.folder())}")
    width = max(len(p.name) for p in PARTS)
    print(f"{'part':<{width}}  nb  {'in your captioner':<14} where from")
    for part, whose, said in rows:
        print(f"{part.name:<{width}}  {part.notebook[:2]}  {whose:<14} {said.splitlines()[0]}")
    mine = len(found)
    print(f"{mine} of {len(PARTS)} parts are yours" + ("." if mine == len(PARTS) else "; the package's stands in for "
          f"the other {len(PARTS) - mine}, said above."))  # fmt: skip
    return found


def _find(part, namespace: dict, kept: bool):
    """(function, where it came from, why none) for one part."""
    fn = namespace.get(part.name)
    if callable(fn):
        module = getattr(fn, "__module__", "") or ""
        if module == "vgpt" or module.startswith("vgpt."):
            return None, "", f"{part.name} here is vgpt's own ({module}), not yours"
        return fn, "defined in this notebook", ""
    cell = parts.kept(part.name) if kept else None
    if cell is None:
        return None, "", f"not found: neither defined here nor kept by notebook {part.notebook[:2]}'s checker"
    path, source = cell
    space = {"__name__": f"your_{part.name}"}
    try:
        exec(compile(source, str(path), "exec"), space)  # noqa: S102 (the learner's own cell, in the learner's kernel)
    except Exception as err:  # noqa: BLE001 (a kept cell may fail any way)
        return (
            None,
            "",
            f"{path.name} does not run here ({type(err).__name__}: {err}); an exercise cell must stand alone",
        )
    if not callable(space.get(part.name)):
        return None, "", f"{path.name} defines no {part.name}"
    return space[part.name], f"kept by notebook {part.notebook[:2]}'s checker", ""
