"""`python -m vgpt classroom release | grade`: the parser of the command and its handlers.

`add_commands(subparsers)` adds the `classroom` command to the project's
command line (vgpt/app/cli.py calls it); the work itself is in `release.py`
and `grade.py`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import UserError
from .sandbox import Limits

SOURCE_HELP = "the teacher's notebooks folder (default: the repository's notebooks/)"
GRADE_HELP = """Grade each SUBMISSION (a student's folder of notebooks, or one notebook, as downloaded from Jupyter,
Colab or Drive) against the teacher's notebooks. Only the exercise cells are taken from the student (matched
by nbgrader grade_id, else by the function they define), each graded alone: in a sandbox (bubblewrap), the
cell runs and its function is called on the checker's cases, in a process of its own with memory, process,
CPU-time and output limits; what it returns comes back as data and is judged here, by the checker, so
nothing the student's code does (print "Correct!", patch the checker, exit early) can change a verdict.
The sandbox has no network and sees neither the repository's notebooks (the worked solutions), nor the
other submissions, nor the grades. A cell that imports vgpt (the package's own implementation) is refused.
Writes one CSV row per (student, notebook, exercise): student, notebook, exercise, passed (0/1), points,
message, and prints a students x notebooks table.

Without bubblewrap (apt-get install bubblewrap) the grader refuses to run, unless --no-sandbox: then the
students' code runs as you, with your files and network in reach. Use that only for code you trust."""


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
        help="grade students' notebooks, each exercise alone in a sandbox",
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
        default=Limits.seconds,
        help="seconds each exercise may run, wall clock and CPU time (default: %(default)s)",
    )
    q.add_argument("--jobs", type=int, default=1, help="students graded at once (default: %(default)s)")
    q.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run the students' code without bubblewrap, as you: only for code you trust",
    )
    q.set_defaults(func=classroom_grade)


def classroom_release(args) -> int:
    from .grade import default_source
    from .release import release

    written = release(args.source or default_source(), args.out)
    print(f"released {len(written)} notebooks into {args.out} (solutions stubbed, solutions/ left out; "
          f"every worked solution passed when graded alone)")  # fmt: skip
    return 0


def classroom_grade(args) -> int:
    from .grade import NO_SANDBOX_WARNING, grade, print_progress, summary, write_csv

    if args.timeout <= 0 or args.jobs < 1:
        raise UserError("--timeout must be positive and --jobs at least 1")
    if args.no_sandbox:
        print(NO_SANDBOX_WARNING, file=sys.stderr, flush=True)
    rows = grade(
        args.submissions,
        args.source,
        isolated=not args.no_sandbox,
        limits=Limits(seconds=args.timeout),
        jobs=args.jobs,
        out=args.out,
        progress=print_progress,
    )
    write_csv(rows, args.out)
    print(summary(rows))
    print(f"{len(rows)} grades written to {args.out}")
    if args.no_sandbox:
        print(NO_SANDBOX_WARNING, file=sys.stderr)
    return 0
