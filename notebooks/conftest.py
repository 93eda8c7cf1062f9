"""nbval reads a stored output as a reference only where the cell has an execution count.

The committed notebooks carry none (counts change on every run and only add
noise to diffs; `tests/test_notebooks.py` keeps them out), so the cells are
numbered here, in order, as nbval reads each notebook.
"""

import os
import tempfile

import nbformat
from nbval import plugin


class _NumberedNotebooks:
    """`nbformat` as nbval sees it: every code cell gets an execution count."""

    def __getattr__(self, name):
        return getattr(nbformat, name)

    @staticmethod
    def read(path, as_version):
        nb = nbformat.read(path, as_version=as_version)
        code = [c for c in nb.cells if c.cell_type == "code"]
        for count, cell in enumerate(code, start=1):
            cell.execution_count = count
        return nb


plugin.nbformat = _NumberedNotebooks()


def pytest_runtest_setup(item):
    """The notebooks run from an empty work folder, as a learner's first time does: the tests before them
    may have left a trained bridge in runs/notebooks, which notebook 06 would load instead of training,
    and their times are the reference `.ci/notebooks_under_load.py` compares a loaded run with."""
    if "VGPT_RUNS" not in os.environ:  # set before the first notebook's kernel starts; kernels inherit it
        os.environ["VGPT_RUNS"] = tempfile.mkdtemp(prefix="vgpt-nbval-runs-")
