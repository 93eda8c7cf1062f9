"""`python -m vgpt classroom release | grade`: the parser of the command and its handlers.

`add_commands(subparsers)` adds the `classroom` command to the project's
command line (vgpt/app/cli.py calls it); the work itself is in `release.py`
and `grade.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError

SOURCE_HELP = "the teacher's notebooks folder (default: the repository's notebooks/)"
GRADE_HELP = """Grade each SUBMISSION (a student's folder of notebooks, or one notebook) against the teacher's
notebooks. For each student and notebook a grading notebook is built from the teacher's source, with only
the exercise cells (matched by nbgrader grade_id) taken from the student: checker cells always come from
the source. It runs in a fresh kernel, in a process and temporary folder of its own, with a time limit;
every checker gets its chance even after errors. Writes one CSV row per (student, notebook, exercise):
student, notebook, exercise, passed (0/1), points, message, and prints a students x notebooks table.

NOT A SECURITY SANDBOX: submissions run as you, with your files and network. This isolates students from
each other and from crashes and hangs, not from a hostile student. Grade untrusted code in a throwaway
container or account."""


def add_commands(sub) -> None:
    """Add `classroom` (with its actions `release` and `grade`) to the command line's subparsers."""
    p = sub.add_parser(
        "classroom",
        help="hand the notebooks out to a class and grade them",
        description="Release the student version of the notebooks, or grade submissions.",
    )
    room = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = room.add_parser(
        "release",
        help="write the student version of the notebooks",
        description="Copy the notebooks folder into OUT with every exercise's solution (between "
        "### BEGIN SOLUTION and ### END SOLUTION) replaced by a stub that raises "
        "NotImplementedError, exercise and checker outputs cleared, and solutions/ "
        "left out. Refuses unbalanced solution markers, naming notebook and cell.",
    )
    q.add_argument("out", type=Path, metavar="OUT", help="new (or empty) folder for the student version")
    q.add_argument("--source", type=Path, default=None, help=SOURCE_HELP)
    q.set_defaults(func=classroom_release)
    q = room.add_parser(
        "grade",
        help="run and grade students' notebooks (not a sandbox)",
        description=GRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument(
        "submissions",
        type=Path,
        nargs="+",
        metavar="SUBMISSION",
        help="a student's folder of notebooks (the folder's name is the student's) or one .ipynb",
    )
    q.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV file (default: %(default)s)")
    q.add_argument("--source", type=Path, default=None, help=SOURCE_HELP)
    q.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds each notebook may run, kernel start excluded (default: %(default)s)",
    )
    q.add_argument(
        "--startup-timeout", type=float, default=180, help="seconds a kernel may take to start (default: %(default)s)"
    )
    q.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default: %(default)s)")
    q.set_defaults(func=classroom_grade)


def classroom_release(args) -> int:
    from .release import default_source, release

    written = release(args.source or default_source(), args.out)
    print(f"released {len(written)} notebooks into {args.out} (solutions stubbed, solutions/ left out)")
    return 0


def classroom_grade(args) -> int:
    from .release import grade, print_progress, summary, write_csv

    if args.timeout <= 0 or args.startup_timeout <= 0 or args.jobs < 1:
        raise UsageError("--timeout and --startup-timeout must be positive and --jobs at least 1")
    rows = grade(
        args.submissions,
        args.source,
        timeout=args.timeout,
        startup_timeout=args.startup_timeout,
        jobs=args.jobs,
        progress=print_progress,
    )
    write_csv(rows, args.out)
    print(summary(rows))
    print(f"{len(rows)} grades written to {args.out}")
    return 0
