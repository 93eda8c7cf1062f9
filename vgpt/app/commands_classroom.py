"""The handlers of `python -m vgpt classroom release | grade`: the student version of the notebooks
written, submissions graded (the work itself is in `course/classroom.py`)."""

from __future__ import annotations

from ..errors import UsageError


def classroom_release(args) -> int:
    from ..course.classroom import default_source, release

    written = release(args.source or default_source(), args.out)
    print(f"released {len(written)} notebooks into {args.out} (solutions stubbed, solutions/ left out)")
    return 0


def classroom_grade(args) -> int:
    from ..course.classroom import grade, print_progress, summary, write_csv

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
