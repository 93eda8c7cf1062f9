"""Write the Colab bootstrap (cell 1) and the keep-work cell (cell 2) into every notebook, the same in each.

    python .ci/notebook_bootstrap.py                  # every notebooks/NN_*.ipynb
    python .ci/notebook_bootstrap.py notebooks/07_*.ipynb
    python .ci/notebook_bootstrap.py --check          # exit 1, naming them, if some notebook differs

Cell 1 fetches and installs vgpt on Colab, and does nothing anywhere else; a
second run does not clone again. `VGPT_REPO` (a URL or a local folder) is the
repository it clones, `VGPT_CONTENT` stands for Colab's /content: the Colab
simulation (tests/test_colab.py) sets both. Cell 2 chooses where the notebook
keeps its work (`notebook.keep_work`, see vgpt/course/colab.py); its stored
output is what it prints in the repository.

It also points cell 0's Colab badge at the repository of pyproject.toml, so that
a fork changes `Repository` there and runs this. Running it again changes
nothing: cell 1 is replaced, and every earlier keep-work cell is removed
before the one at index 2 is written. Notebooks are
read and written as `.ci/execute_notebooks.py` leaves them (nbformat 4.4, no
cell ids), so no other cell changes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)

BOOTSTRAP = f"""\
# On Colab: fetch vgpt and install it (about a minute; run again, it does not fetch again).
# Anywhere else this cell does nothing: `pip install -e ".[dev]"` in the repository installed it.
import os
import sys

if "google.colab" in sys.modules:
    repo = os.environ.get("VGPT_REPO", "{REPOSITORY}")  # or your fork
    clone = os.path.join(os.environ.get("VGPT_CONTENT", "/content"), "vgpt")
    if not os.path.isdir(clone):
        !git clone --quiet --depth 1 {{repo}} {{clone}}
    %pip install --quiet -e "{{clone}}[hf]"
    if clone not in sys.path:
        sys.path.insert(0, clone)"""

GITHUB = REPOSITORY.removeprefix("https://github.com/")
BADGE = re.compile(r"(https://colab\.research\.google\.com/github/)[^/\s]+/[^/\s]+(/blob/)")

KEEP_WORK_CALL = "notebook.keep_work("
KEEP_WORK = f"""\
# Where this notebook keeps its work: data, feature cache, trained bridges. On Colab each notebook
# runs on a fresh machine, and /content is wiped when the runtime is recycled: on_drive=True keeps
# the work (and the Hugging Face downloads) on your Google Drive, in MyDrive/vgpt, where the other
# notebooks find it. On the seed profile (a GPU runtime) set it True in every notebook: notebooks
# 07-09 need the bridge notebook 06 trains. Anywhere else the work stays in runs/notebooks.
from vgpt.course import notebook

{KEEP_WORK_CALL}on_drive=False)"""


def keep_work_output() -> str:
    """What the keep-work cell prints in the repository, off Colab, with no VGPT_* variable set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VGPT_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-c", KEEP_WORK], cwd=ROOT / "notebooks", env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"the keep-work cell fails in the repository:\n{done.stderr}")
    return done.stdout


def is_bootstrap(cell) -> bool:
    return cell.cell_type == "code" and 'if "google.colab" in sys.modules:' in cell.source


def rewrite(nb, output: str) -> None:
    """Cell 1 := BOOTSTRAP (no outputs); every keep-work cell out; KEEP_WORK, with `output`, at index 2;
    the Colab badge of cell 0 pointed at REPOSITORY (a fork changes it in pyproject.toml)."""
    if nb.cells and nb.cells[0].cell_type == "markdown":
        nb.cells[0].source = BADGE.sub(rf"\g<1>{GITHUB}\g<2>", nb.cells[0].source)
    if len(nb.cells) < 2 or not is_bootstrap(nb.cells[1]):
        raise ValueError('cell 1 is not the Colab bootstrap (a code cell with `if "google.colab" in sys.modules:`)')
    nb.cells[1].source, nb.cells[1].outputs, nb.cells[1].execution_count = BOOTSTRAP, [], None
    nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and KEEP_WORK_CALL in c.source)]
    cell = nbformat.v4.new_code_cell(KEEP_WORK)
    cell.pop("id", None)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)] if output else []
    nb.cells.insert(2, cell)


def main(args: list[str]) -> int:
    check = "--check" in args
    paths = [Path(a) for a in args if a != "--check"] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    output, differ = keep_work_output(), []
    for path in paths:
        before = path.read_text(encoding="utf-8")
        nb = nbformat.reads(before, as_version=4)
        try:
            rewrite(nb, output)
        except ValueError as err:
            raise SystemExit(f"{path}: {err}") from None
        after = nbformat.writes(nb)
        after += "" if after.endswith("\n") else "\n"  # as nbformat.write leaves a file
        if after != before:
            differ.append(path)
            if not check:
                path.write_text(after, encoding="utf-8")
    verb = "differ" if check else "rewritten"
    print(f"{len(differ)} of {len(paths)} notebooks {verb}" + "".join(f"\n  {p.name}" for p in differ))
    return 1 if check and differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
