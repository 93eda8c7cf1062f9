"""Run notebooks top to bottom in place, keep their outputs, strip what changes from run to run.

    python .ci/execute_notebooks.py                  # every notebooks/NN_*.ipynb
    python .ci/execute_notebooks.py notebooks/04_*.ipynb

What a reader should see stays (text, pictures); progress bars, execution
counts, timings, widget state and kernel details go, so a re-run only changes the diff where an
output really changed. `tests/test_notebooks.py` fails on a notebook that was
committed without this. Prints each notebook's wall time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info", "colab")
KEEP_CELL_METADATA = ("tags", "nbgrader")


def strip(nb) -> None:
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in KEEP_NOTEBOOK_METADATA}
    if "language_info" in nb.metadata:
        nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}
        cell.pop("id", None)
        if cell.cell_type == "code":
            cell.execution_count = None
            # a widget (a progress bar, the demo) lives only in a running kernel; stored, it is
            # a stale text fallback such as "0%|          | 0/101", so it goes
            cell.outputs = [
                o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})
            ]
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = None
                out.get("metadata", {}).clear()
    nb.nbformat, nb.nbformat_minor = 4, 4


def execute(path: Path, timeout: int = 900) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    seconds = time.perf_counter() - start
    strip(nb)
    nbformat.write(nb, path)
    return seconds


def main(paths: list[str]) -> int:
    os.environ["TQDM_DISABLE"] = "1"  # progress bars help a reader live, not in a saved output
    notebooks = [Path(p) for p in paths] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    total = 0.0
    for path in notebooks:
        seconds = execute(path)
        total += seconds
        print(f"{path.name:<40}{seconds:7.1f} s", flush=True)
    print(f"{'all':<40}{total:7.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
