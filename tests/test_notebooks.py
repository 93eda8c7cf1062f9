"""The notebooks as files: numbered, Colab-ready, committed executed and stripped, each with an exercise.

(nbval runs them: `notebooks/` is a test path, see pyproject.toml.)
"""

import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
STAGES = [
    "00_two_alien_models",
    "01_feature_extraction",
    "02_projector",
    "03_prefix_concatenation",
    "04_joint_attention_mask",
    "05_lora_injection",
    "06_training",
    "07_generation",
    "08_evaluation_and_demo",
    "09_experiments",
    "10_your_captioner",
]


def load(path):
    return json.loads(path.read_text())


def source(cell):
    return "".join(cell["source"])


def test_one_notebook_per_stage_in_order():
    assert [p.stem for p in NOTEBOOKS] == STAGES


def bootstrap_script():
    """.ci/notebook_bootstrap.py, which writes cells 1 and 2 of every notebook."""
    spec = importlib.util.spec_from_file_location("notebook_bootstrap", ROOT / ".ci" / "notebook_bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there (Python 3.11)
    spec.loader.exec_module(module)
    return module


def test_bootstrap_clones_once_installs_the_hf_extra_and_takes_the_repository_from_a_variable():
    boot = bootstrap_script().BOOTSTRAP
    assert 'if "google.colab" in sys.modules:' in boot
    assert f'os.environ.get("VGPT_REPO", "{REPOSITORY}")' in boot
    assert "if not os.path.isdir(clone):\n        !git clone --quiet --depth 1 {repo} {clone}" in boot
    assert '%pip install --quiet -e "{clone}[hf]"' in boot


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_badge_colab_bootstrap_and_keep_work(path):
    cells = load(path)["cells"]
    github = REPOSITORY.removeprefix("https://github.com/")
    badge = f"https://colab.research.google.com/github/{github}/blob/main/notebooks/{path.name}"
    assert cells[0]["cell_type"] == "markdown" and badge in source(cells[0])
    script, fix = bootstrap_script(), "run .ci/notebook_bootstrap.py"
    assert cells[1]["cell_type"] == "code" and source(cells[1]) == script.BOOTSTRAP, f"cell 1: not the bootstrap; {fix}"
    assert cells[2]["cell_type"] == "code" and source(cells[2]) == script.KEEP_WORK, f"cell 2: not keep_work; {fix}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed_and_stripped(path):
    nb = load(path)
    assert set(nb["metadata"]) <= {"kernelspec", "language_info", "colab"}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in nb["cells"]:
        kept = {"tags", "nbgrader"}  # nbgrader: the exercise and checker cells of the classroom tooling
        assert set(cell.get("metadata", {})) <= kept, "volatile cell metadata: run .ci/execute_notebooks.py"
    for cell in code:
        assert cell["execution_count"] is None, "execution counts left in: run .ci/execute_notebooks.py"
        assert all(o.get("execution_count") is None for o in cell["outputs"])
        assert not any(o["output_type"] == "error" for o in cell["outputs"]), source(cell)[:80]
        if re.search(r"^\s*print\(|\bcheck_\w+\(|plt\.|viz\.", source(cell), re.M) and "google.colab" not in source(
            cell
        ):
            assert cell["outputs"], f"unexecuted cell (no output): {source(cell)[:80]!r}"
    assert any(o.get("data", {}).get("image/png") for c in code for o in c["outputs"]), "no picture"
    assert any("nbval-check-output" in c.get("metadata", {}).get("tags", []) for c in code), "no compared cell"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] not in ("09", "10")], ids=lambda p: p.stem)
def test_notebook_ends_with_an_exercise_and_its_checker(path):  # 09 has experiments to run, 10 a project
    code = [c for c in load(path)["cells"] if c["cell_type"] == "code"]
    exercises = [i for i, c in enumerate(code) if "exercise" in c.get("metadata", {}).get("tags", [])]
    assert exercises, "no exercise cell (a code cell tagged 'exercise')"
    for i in exercises:
        name = re.search(r"^def (\w+)\(", source(code[i]), re.M).group(1)
        assert "checker" in code[i + 1].get("metadata", {}).get("tags", []), f"{name}: no checker cell after it"
        assert re.search(rf"from vgpt\.course\.exercises import check_{name}\b", source(code[i + 1]))


def test_the_capstone_ends_with_its_project_check():
    """Notebook 10 has no exercise of its own: its graded cell is the project's checker, run on the learner's
    parts gathered from notebooks 01-08, then the check-my-work table."""
    code = [c for c in load(ROOT / "notebooks" / "10_your_captioner.ipynb")["cells"] if c["cell_type"] == "code"]
    project = [c for c in code if {"checker", "project"} <= set(c.get("metadata", {}).get("tags", []))]
    assert len(project) == 1 and "check_my_captioner(my_parts)" in source(project[0])
    assert "check-my-work" in code[-1].get("metadata", {}).get("tags", [])
