"""The capstone graded as a teacher grades it: `python -m vgpt classroom grade` on the course's own notebooks
01-08 and 10, handed in by a student who solved every exercise and by one whose notebook 04 forgets
causality. The grader takes each part from the student's notebook of it, gates it by its own exercise and
trains the captioner in the sandbox."""

import csv
import json
import shutil

import pytest
from classroom_fixtures import needs_sandbox

from vgpt.__main__ import main
from vgpt.config import REPO_ROOT

pytestmark = pytest.mark.slow
SOURCE = REPO_ROOT / "notebooks"
FORGETS_CAUSALITY = """    ### BEGIN SOLUTION
    blocked = ~mask.bool()[:, None, :].expand(-1, mask.shape[1], -1)
    return torch.zeros(blocked.shape).masked_fill(blocked, float("-inf"))
    ### END SOLUTION"""


def hand_in(folder, broken_mask=False):
    folder.mkdir()
    for path in [*SOURCE.glob("0[1-8]_*.ipynb"), SOURCE / "10_your_captioner.ipynb"]:
        shutil.copy(path, folder / path.name)
    if broken_mask:
        path = folder / "04_joint_attention_mask.ipynb"
        nb = json.loads(path.read_text())
        cell = next(c for c in nb["cells"] if "exercise" in c["metadata"].get("tags", [])
                    and "def attention_bias(" in "".join(c["source"]))  # fmt: skip
        source = "".join(cell["source"])
        start = source.index("    ### BEGIN SOLUTION")
        end = source.index("### END SOLUTION") + len("### END SOLUTION")
        cell["source"] = (source[:start] + FORGETS_CAUSALITY + source[end:]).splitlines(keepends=True)
        path.write_text(json.dumps(nb))
    return folder


def test_the_capstone_is_graded_from_the_students_own_notebooks(tmp_path):
    needs_sandbox()
    solved, broken = hand_in(tmp_path / "solved"), hand_in(tmp_path / "broken", broken_mask=True)
    grades = tmp_path / "grades.csv"
    assert main(["classroom", "grade", str(solved), str(broken), "--out", str(grades), "--jobs", "1"]) == 0
    with open(grades, newline="") as f:
        rows = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    mine = rows["solved", "my_parts"]
    assert mine["passed"] == "1" and int(mine["points"]) > 0, mine
    assert "exact match" in mine["message"] and "the package's own parts" in mine["message"], mine
    assert all(r["passed"] == "1" for (student, _), r in rows.items() if student == "solved")
    assert rows["broken", "attention_bias"]["passed"] == "0"
    assert "forgot causality" in rows["broken", "attention_bias"]["message"]
    theirs = rows["broken", "my_parts"]
    assert theirs["points"] == "0" and "own exercise first" in theirs["message"]
    assert "attention_bias" in theirs["message"], theirs
