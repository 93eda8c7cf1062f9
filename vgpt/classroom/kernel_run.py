"""One grading notebook run in a fresh kernel, cell by cell, each result reported as a line of JSON.

The grader (`vgpt.classroom.release`) starts this module in a process of its
own for every (student, notebook), so that a submission that hangs, floods or
kills its kernel takes nothing else down with it:

    python -m vgpt.classroom.kernel_run NOTEBOOK WORKDIR REPORT --timeout 300 --startup-timeout 180 --kernel NAME

REPORT receives, one JSON object per line, flushed as they happen (so the
grader keeps what was reported even if it has to kill this process):

    {"event": "kernel", "pid": 1234}                    the kernel process (its own process group)
    {"event": "cell", "index": 5, "text": "...", "error": null | {"ename", "evalue"}}
    {"event": "timeout", "index": 7, "seconds": 300}    the notebook's time ran out in cell 7
    {"event": "died", "index": 7}                       the kernel died in cell 7 (os._exit, segfault...)
    {"event": "nostart", "reason": "..."}               the kernel never became ready
    {"event": "done"}

The time limit is for the whole notebook, kernel start excluded: each cell
gets what is left of it, and a cell that overruns stops the notebook (the
kernel is killed, not interrupted, so a loop that swallows KeyboardInterrupt
stops too).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

MAX_TEXT = 4000  # characters of a cell's output kept: a checker's message, not a student's print loop


def cell_text(cell) -> tuple[str, dict | None]:
    """The printed text of an executed cell (streams and plain-text results) and its error, if any."""
    parts, error = [], None
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", "") + "\n")
        elif out.get("output_type") == "error":
            error = {"ename": out.get("ename", ""), "evalue": str(out.get("evalue", ""))[:MAX_TEXT]}
    text = "".join(parts)
    return (text if len(text) <= MAX_TEXT else text[: MAX_TEXT // 2] + "\n...\n" + text[-MAX_TEXT // 2 :]), error


def run(notebook: Path, workdir: Path, report: Path, timeout: float, startup_timeout: float, kernel: str) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(notebook, as_version=4)
    with open(report, "a", encoding="utf-8") as sink:

        def say(**event) -> None:
            sink.write(json.dumps(event) + "\n")
            sink.flush()

        client = NotebookClient(
            nb,
            kernel_name=kernel,
            startup_timeout=int(startup_timeout),
            allow_errors=True,
            interrupt_on_timeout=False,
            shutdown_kernel="immediate",
            record_timing=False,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.km = client.create_kernel_manager()
        try:
            client.start_new_kernel()
            say(event="kernel", pid=client.km.provisioner.process.pid)
            with client.setup_kernel():  # waits until the kernel is ready; kills it on the way out
                deadline = time.monotonic() + timeout
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    left = deadline - time.monotonic()
                    if left <= 0:
                        say(event="timeout", index=index, seconds=timeout)
                        return
                    client.timeout = max(1, math.ceil(left))
                    try:
                        client.execute_cell(cell, index)
                    except CellTimeoutError:
                        say(event="timeout", index=index, seconds=timeout)
                        return
                    except DeadKernelError:
                        say(event="died", index=index)
                        return
                    text, error = cell_text(cell)
                    say(event="cell", index=index, text=text, error=error)
        except (RuntimeError, TimeoutError) as err:  # wait_for_ready gave up: the kernel never answered
            say(event="nostart", reason=f"{err.__class__.__name__}: {err}")
            return
        say(event="done")  # only when every cell ran


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--startup-timeout", type=float, required=True)
    parser.add_argument("--kernel", required=True)
    args = parser.parse_args(argv)
    run(args.notebook, args.workdir, args.report, args.timeout, args.startup_timeout, args.kernel)


if __name__ == "__main__":
    main()
