"""Every notebook is a full chapter: enough explanation, pictures that teach, exercises with
checkers, "Try this" prompts, a recap with questions answered in notebooks/solutions/.

Counted on the committed notebooks (executed and stripped by .ci/execute_notebooks.py).
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHAPTERS = [p for p in NOTEBOOKS if p.name[:2] != "09"]  # 09 is the experiments notebook


def cells(path):
    return json.loads(path.read_text())["cells"]


def text(cell):
    return "".join(cell["source"])


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def words(path) -> int:
    prose = [re.sub(r"```.*?```", " ", text(c), flags=re.S) for c in cells(path) if c["cell_type"] == "markdown"]
    return sum(len(re.findall(r"[A-Za-z][A-Za-z'-]*", p)) for p in prose)


def pictures(path) -> int:
    return sum(
        1 for c in cells(path) if c["cell_type"] == "code" for o in c["outputs"] if "image/png" in o.get("data", {})
    )


def exercises(path) -> list[tuple[str, dict, dict]]:
    """(function name, exercise cell, checker cell) for every exercise of the notebook."""
    found, all_cells = [], cells(path)
    for i, cell in enumerate(all_cells):
        if "exercise" in tags(cell):
            name = re.search(r"^def (\w+)\(", text(cell), re.M).group(1)
            checker = next(c for c in all_cells[i + 1 :] if c["cell_type"] == "code")
            found.append((name, cell, checker))
    return found


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_at_least_1000_words_of_explanation(path):
    assert words(path) >= 1000, f"{path.name}: {words(path)} words of markdown"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_at_least_three_pictures(path):
    assert pictures(path) >= 3, f"{path.name}: {pictures(path)} pictures"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_the_pipeline_diagram_and_what_you_will_learn(path):
    number = int(path.name[:2])
    code = [text(c) for c in cells(path) if c["cell_type"] == "code"]
    assert any(f"pipeline_diagram(highlight={number})" in c for c in code[:4]), "no pipeline diagram near the top"
    prose = " ".join(text(c) for c in cells(path)[:6] if c["cell_type"] == "markdown").lower()
    assert "you will learn" in prose


@pytest.mark.parametrize("path", [p for p in CHAPTERS if p.name[:2] != "10"], ids=lambda p: p.stem)
def test_chapter_has_two_exercises_each_with_solution_markers_and_a_checker(path):  # 10's is a project of parts
    found = exercises(path)
    assert len(found) >= 2, f"{path.name}: {len(found)} exercises"
    for name, exercise, checker in found:
        source = text(exercise)
        assert source.count("### BEGIN SOLUTION") == 1 and source.count("### END SOLUTION") == 1, name
        grade = exercise["metadata"]["nbgrader"]
        assert grade["solution"] and not grade["grade"] and grade["grade_id"] == f"{path.stem}-{name}"
        assert "checker" in tags(checker) and checker["metadata"]["nbgrader"]["grade"], name
        assert re.search(rf"from vgpt\.course\.exercises import check_{name}\b", text(checker)), name
        assert f"assert check_{name}({name})" in text(checker), name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_notebook_imports_what_its_exercises_ask_for(path):
    names = [name for name, _, _ in exercises(path)]
    for cell in cells(path):
        if cell["cell_type"] != "code" or "checker" in tags(cell):
            continue
        for name in names:
            imported = re.search(rf"^\s*from vgpt[\w.]* import [^\n]*\b{name}\b", text(cell), re.M)
            assert not imported, f"{path.name} imports {name}, which its exercise asks the reader to write"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_two_try_this_cells(path):
    tries = [c for c in cells(path) if c["cell_type"] == "markdown" and re.search(r"\bTry this\b", text(c))]
    assert len(tries) >= 2, f"{path.name}: {len(tries)} 'Try this' cells"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_ends_with_a_recap_and_questions_answered_in_solutions(path):
    prose = [text(c) for c in cells(path) if c["cell_type"] == "markdown"]
    recap = next((i for i, p in enumerate(prose) if re.search(r"^#+ .*Recap", p, re.M)), None)
    assert recap is not None, "no recap heading"
    questions = re.findall(r"^\s*\d+\. .+\?", "\n".join(prose[recap:]), re.M)
    assert 3 <= len(questions) <= 8, f"{len(questions)} check-your-understanding questions"
    answers = ROOT / "notebooks" / "solutions" / f"{path.stem}.md"
    assert answers.is_file(), f"no answers in {answers.relative_to(ROOT)}"
    assert len(re.findall(r"^\s*\d+\. ", answers.read_text(), re.M)) >= len(questions)


def test_experiments_notebook_exists_with_its_table():
    path = ROOT / "notebooks" / "09_experiments.ipynb"
    outputs = [o for c in cells(path) if c["cell_type"] == "code" for o in c["outputs"]]
    tables = [o for o in outputs if "text/html" in o.get("data", {}) or "exact" in "".join(o.get("text", ""))]
    assert tables, "no results table printed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_placeholder_is_left_in_the_prose(path):
    """A writer's marker such as RESULTS-PROSE, where a paragraph is still to be written, reads as nonsense."""
    prose = "\n".join(text(c) for c in cells(path) if c["cell_type"] == "markdown")
    answers = ROOT / "notebooks" / "solutions" / f"{path.stem}.md"
    prose += answers.read_text() if answers.is_file() else ""
    assert not re.findall(r"\b[A-Z]{3,}(?:-[A-Z]{3,})+\b", prose)
