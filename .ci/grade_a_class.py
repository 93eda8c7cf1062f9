"""Time the grading of a class: N made-up students, every notebook of the course with exercises, graded
by `python -m vgpt classroom grade` in the sandbox.

    python .ci/grade_a_class.py --students 30 --jobs 2

Each student hands in the released notebooks with their exercise cells filled in: the worked solutions
for most, and for some students a stub left unwritten, a wrong answer or an import of the package's own
implementation (refused). The script prints the grading's wall time, the time per student, and the
table of points; it checks that every student got what the mix says.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vgpt.classroom.exercise_cells import grade_id, source_of, tags, worked_solution  # noqa: E402


def filled(released: Path, teacher: Path, student: int) -> tuple[nbformat.NotebookNode, int]:
    """The released notebook with student `student`'s cells: the worked solutions but for every third
    student's first exercise (a stub left as released) and every fifth student's second (a wrong one)."""
    nb, solutions = nbformat.read(released, 4), {}
    for cell in nbformat.read(teacher, 4).cells:
        if "exercise" in tags(cell):
            solutions[grade_id(cell)] = worked_solution(cell, teacher.name)
    passing, number = 0, 0
    for cell in nb.cells:
        if "exercise" not in tags(cell):
            continue
        if number == 0 and student % 3 == 0:
            pass  # the stub
        elif number == 1 and student % 5 == 0:
            cell.source = source_of(cell).replace("raise NotImplementedError()", "return None")
        else:
            cell.source, passing = solutions[grade_id(cell)], passing + 1
        number += 1
    return nb, passing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vgpt-class-") as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "vgpt", "classroom", "release", str(tmp / "handout")], check=True)
        expected = {}
        teachers = sorted((ROOT / "notebooks").glob("0*.ipynb"))
        for n in range(args.students):
            folder = tmp / "class" / f"student{n:02d}"
            folder.mkdir(parents=True)
            expected[folder.name] = 0
            for teacher in teachers:
                nb, passing = filled(tmp / "handout" / teacher.name, teacher, n)
                nbformat.write(nb, folder / teacher.name)
                expected[folder.name] += passing
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "vgpt", "classroom", "grade", *map(str, sorted((tmp / "class").iterdir())),
             "--out", str(tmp / "grades.csv"), "--jobs", str(args.jobs)],
            check=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        with open(tmp / "grades.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    earned = {}
    for row in rows:
        earned[row["student"]] = earned.get(row["student"], 0) + int(row["passed"])
    wrong = {s: (earned.get(s), e) for s, e in expected.items() if earned.get(s) != e}
    exercises = len(rows) // max(1, args.students)
    print(f"{args.students} students x {len(teachers)} notebooks ({exercises} exercises each), --jobs {args.jobs}: "
          f"{seconds:.0f} s, {seconds / args.students:.1f} s per student")  # fmt: skip
    if wrong:
        print(f"grades not as the mix says (got, expected): {wrong}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
