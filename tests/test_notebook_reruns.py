"""A learner reruns cells to inspect tensors: every notebook survives each code cell run twice in a
row, then "Run All" again, in one kernel. Any error fails the notebook and names the cell."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_twice_then_run_all_again(path):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=900, startup_timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    with client.setup_kernel():
        for rounds, plan in (("each cell twice", [x for x in code for _ in range(2)]), ("run all again", code)):
            for index, cell in plan:
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as err:
                    pytest.fail(f"{path.name}, {rounds}, cell {index}: {str(err)[-800:]}")
