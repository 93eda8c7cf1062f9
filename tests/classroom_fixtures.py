"""A made-up teacher's notebook for the classroom tests, and students' notebooks made from it.

The teacher's folder holds `01_sums.ipynb` (two exercises, `add` and
`warmup_cosine`, checked by `classroom_checkers.py`, copied beside it as the
teacher's own checker module), a data file, and `solutions/`. Not in
conftest.py: `notebooks/` has a conftest of its own.
"""

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from vgpt.classroom import sandbox

HERE = Path(__file__).resolve().parent
STEM = "01_sums"
ADD = '''def add(a, b):
    """The sum of two numbers."""
    ### BEGIN SOLUTION
    total = a + b
    return total
    ### END SOLUTION'''
WARMUP = '''import math


def warmup_cosine(step, total, warmup):
    """Learning-rate multiplier: linear warmup, then cosine decay to 0."""
    ### BEGIN SOLUTION
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    ### END SOLUTION'''
SOLUTION_CODE = ("total = a + b", "(step + 1) / warmup", "math.cos(math.pi")
ADD_OK = "def add(a, b):\n    return a + b"
WARMUP_OK = WARMUP.replace("    ### BEGIN SOLUTION\n", "").replace("\n    ### END SOLUTION", "")


def exercise(name, source):
    cell = new_code_cell(
        source,
        metadata={
            "tags": ["exercise"],
            "nbgrader": {
                "grade": False,
                "solution": True,
                "locked": False,
                "task": False,
                "schema_version": 3,
                "grade_id": f"{STEM}-{name}",
            },
        },
    )
    cell.outputs, cell.execution_count = [new_output("stream", name="stdout", text="solution ran\n")], 3
    return cell


def checker(name):
    cell = new_code_cell(
        f"from classroom_checkers import check_{name}\n\nassert check_{name}({name})",
        metadata={
            "tags": ["checker"],
            "nbgrader": {
                "grade": True,
                "solution": False,
                "locked": True,
                "task": False,
                "points": 1,
                "schema_version": 3,
                "grade_id": f"{STEM}-check-{name}",
            },
        },
    )
    cell.outputs, cell.execution_count = [new_output("stream", name="stdout", text=f"{name}: Correct!\n")], 4
    return cell


def teacher_folder(folder: Path, add_source: str = ADD, warmup_source: str = WARMUP) -> Path:
    """notebooks/ as a teacher has it: the notebook with solutions, a checker module, a data file, solutions/."""
    folder.mkdir(parents=True)
    setup = new_code_cell("import math\nprint(math.pi > 3)")
    setup.outputs = [new_output("stream", name="stdout", text="True\n")]
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Sums\n\nTwo small exercises, between `### BEGIN SOLUTION` and `### END SOLUTION`."),
            setup,
            new_markdown_cell("## Exercise: add"),
            exercise("add", add_source),
            checker("add"),
            new_markdown_cell("## Exercise: a schedule"),
            exercise("warmup_cosine", warmup_source),
            checker("warmup_cosine"),
            new_code_cell("print('the end')"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nb.nbformat_minor = 4  # like the repository's notebooks: nbformat 4.4, cells without ids
    for cell in nb.cells:
        del cell["id"]
    nbformat.write(nb, folder / f"{STEM}.ipynb")
    shutil.copy(HERE / "classroom_checkers.py", folder)
    (folder / "numbers.txt").write_text("2 3\n")
    (folder / "solutions").mkdir()
    (folder / "solutions" / f"{STEM}.py").write_text("def add(a, b):\n    return a + b\n")
    return folder


def fill(released: Path, **sources) -> nbformat.NotebookNode:
    """A student's copy of the released notebook with their exercise cells (None: the cell deleted)."""
    nb = nbformat.read(released, 4)
    for cell in nb.cells:
        name = cell.metadata.get("nbgrader", {}).get("grade_id", "").removeprefix(f"{STEM}-")
        if name in sources:
            cell.source = sources[name]
    nb.cells = [c for c in nb.cells if c.source is not None]
    return nb


def as_colab_download(nb) -> dict:
    """The notebook as Colab's "Download .ipynb" writes it: nbformat 4.0, Colab's metadata, each cell's id in its
    metadata (none at the top level), cell metadata otherwise gone (tags and nbgrader included), sources as lists
    of lines, execution counts and outputs kept."""
    cells = []
    for number, cell in enumerate(nb.cells):
        out = {"cell_type": cell.cell_type, "metadata": {"id": f"c{number:04d}x"},
               "source": cell.source.splitlines(keepends=True)}  # fmt: skip
        if cell.cell_type == "code":
            out["execution_count"] = number + 1
            out["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["ran\n"]}]
        cells.append(out)
    return {
        "nbformat": 4,
        "nbformat_minor": 0,
        "metadata": {
            "colab": {"provenance": [], "name": f"Copy of {STEM}.ipynb"},
            "kernelspec": {"name": "python3", "display_name": "Python 3"},
            "language_info": {"name": "python"},
            "accelerator": "GPU",
        },
        "cells": cells,
    }


def needs_sandbox() -> None:
    """Skip, saying why, where bubblewrap cannot run; fail instead where VGPT_REQUIRE_SANDBOX is set (CI)."""
    why = sandbox.probe()
    if why and os.environ.get("VGPT_REQUIRE_SANDBOX"):
        pytest.fail(f"VGPT_REQUIRE_SANDBOX is set and there is no sandbox: {why}")
    if why:
        pytest.skip(f"no sandbox here: {why}")
