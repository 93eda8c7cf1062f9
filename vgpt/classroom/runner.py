"""The grader's process inside a student's sandbox: each exercise cell run in a child process of its own.

    python /sandbox/start.py JOB INPUTS      (the sandbox runs it; `sandbox.command` writes the line)

JOB/job.json lists this student's exercises: the function's name, the
exercise cell's source, the checker whose cases to run, the seconds allowed.
INPUTS/inputs.bin holds every checker's cases as data (`wire`): what to call
the function with and how, never the answers.

The runner sets the sandbox's limits, drops to the sandbox's own uid when it
starts as root, imports torch (and transformers if a call needs it) once,
then for each exercise forks a child that runs the cell in a fresh namespace,
calls the function on every case (`calls.call`), writes what came back to a
pipe and exits. The cell's prints go to a file of their own, never to the
grader. Whatever the child does (hangs, crashes, exits, forks, floods), the
runner waits at most the exercise's seconds and reads at most its report's
bytes, then kills every process of the sandbox but itself, empties /tmp for
the next exercise, and reports on its stdout, one JSON line each:

    {"event": "ready"}                                           started, limits set
    {"event": "start", "index": 3}                               exercise 3 begins
    {"event": "result", "index": 3, "blob": "<base64 of wire.dumps(...)>"}
    {"event": "stopped", "index": 3, "reason": "time", "detail": "..."}
    {"event": "done"}

A child's code can kill the runner too (it is the same uid): the grader sees
the stream end and starts a fresh sandbox for the exercises not yet reached.
"""

from __future__ import annotations

import base64
import builtins
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time

from vgpt.course.exercises import calls, wire

STOP_SIGNALS = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "output"}
NO_REPORT = 70  # a child's exit code: something of its own failed before it could report
_events = [1]  # the event stream's fd: the runner's stdout, moved aside by `run` (other prints go to stderr)


def say(**event) -> None:
    line = (json.dumps(event) + "\n").encode()
    while line:
        line = line[os.write(_events[0], line) :]


def set_limits(limits: dict) -> None:
    """The sandbox's limits, hard as well as soft, so that nothing inside raises them again."""
    for name, value in (("RLIMIT_DATA", limits["memory"]), ("RLIMIT_NPROC", limits["processes"]),
                        ("RLIMIT_FSIZE", limits["output"]), ("RLIMIT_CORE", 0)):  # fmt: skip
        resource.setrlimit(getattr(resource, name), (value, value))


def drop_root() -> None:
    """Root grades with bubblewrap outside a user namespace: become the sandbox's own uid (given by the
    grader), which RLIMIT_NPROC binds and which owns nothing on the machine."""
    uid = os.environ.get("VGPT_SANDBOX_UID")
    if os.getuid() == 0 and uid:
        os.setgroups([])
        os.setgid(int(uid))
        os.setuid(int(uid))
        if os.getuid() == 0 or os.geteuid() == 0:
            raise SystemExit("the sandbox runner is still root after dropping its uid")


def run_cell(source: str, function: str) -> tuple[dict, object]:
    """In the child: one exercise cell run in a fresh namespace; (what went wrong, as plain values, or {}; the
    function it defines, or None)."""
    namespace = {"__name__": "__exercise__", "__builtins__": builtins}
    try:
        exec(compile(source, f"<exercise cell of {function}>", "exec"), namespace)  # noqa: S102
    except BaseException as err:  # noqa: BLE001 (SystemExit and KeyboardInterrupt are the cell's doing too)
        return {"cell": wire.Raised.of(err)}, None
    fn = namespace.get(function)
    if fn is None:
        return {"defined": False, "names": sorted(n for n in namespace if not n.startswith("__"))[:20]}, None
    return {}, fn


def run_exercise(exercise: dict, cases: list) -> dict:
    """In the child: the cell run, the function called on every case. What happened, as plain values. A
    project of parts ("cells": part -> its cell) runs each part's cell alone and hands the cases
    {part: function}."""
    if "cells" in exercise:
        fn = {}
        for part, source in exercise["cells"].items():
            trouble, fn[part] = run_cell(source, part)
            if trouble:
                return trouble | {"part": part}
        modules = [str(getattr(f, "__module__", None) or "") for f in fn.values()]
        module = next((m for m in modules if m == "vgpt" or m.startswith("vgpt.")), "")
    else:
        trouble, fn = run_cell(exercise["source"], exercise["function"])
        if trouble:
            return trouble
        module = str(getattr(fn, "__module__", None) or "")
    results = []
    for kind, args, kwargs in cases:
        try:
            results.append(calls.call(kind, fn, args, kwargs))
        except BaseException as err:  # noqa: BLE001
            results.append(err)
    return {"defined": True, "module": module, "results": results}


def child(index: int, exercise: dict, cases: list, limits: dict, work: str, isolated: bool, answers: int) -> None:
    """The exercise's own process: runs it, writes what came back to the `answers` pipe; never returns."""
    try:
        os.close(_events[0])
        if not isolated:  # no process namespace to empty afterwards: a process group of its own instead
            os.setsid()
        out = os.open(os.path.join(work, f"exercise-{index}.out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        cpu = max(1, int(cpu_seconds(exercise, limits)))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        blob = memoryview(wire.dumps(run_exercise(exercise, cases)))
        while blob:
            blob = blob[os.write(answers, blob) :]
        os._exit(0)
    except BaseException:  # noqa: BLE001 (nothing of the child's may reach the runner's loop)
        os._exit(NO_REPORT)


def collect(pid: int, answers: int, seconds: float, cap: int, isolated: bool) -> tuple[bytes, int, str]:
    """Read the child's answers while it runs; its wait status, and "" or why the runner stopped it
    ("time": past `seconds`; "report": answers past `cap` bytes)."""
    deadline, chunks, size, stopped, status = time.monotonic() + seconds, [], 0, "", None
    while status is None:
        readable, _, _ = select.select([answers], [], [], 0.02)
        if readable:
            chunk = os.read(answers, 1 << 20)
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                stopped = "report"
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            status = wait_status
        elif stopped or time.monotonic() > deadline:
            stopped = stopped or "time"
            kill_the_rest(pid, isolated)
            status = os.waitpid(pid, 0)[1]
    while not stopped and select.select([answers], [], [], 0)[0]:  # what the child wrote just before it exited
        chunk = os.read(answers, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        stopped = "report" if size > cap else ""
    return b"".join(chunks), status, stopped


def empty_tmp(work: str, isolated: bool) -> None:
    """What the next exercise finds: an empty work folder, and in the sandbox an empty /tmp but for it."""
    for folder in ("/tmp", work) if isolated else (work,):
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if path != work:
                shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def cpu_seconds(exercise: dict, limits: dict) -> float:
    return float(limits.get("cpu") or exercise.get("seconds", limits["seconds"]))


def kill_the_rest(pid: int, isolated: bool) -> None:
    """What an exercise left behind: in the sandbox, every process but the runner and the sandbox's init
    (kill(-1) inside a process namespace); without one, the child's process group."""
    try:
        if isolated:
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_reason(status: int, killed: bool, cpu: float, seconds: float, cpu_limit: float) -> tuple[str, str]:
    """Why a child ended without a result: (time | cpu | output | signal | exit, detail)."""
    if killed:
        return "time", f"ran past {seconds:g} s"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in STOP_SIGNALS:
            return STOP_SIGNALS[sig], signal.Signals(sig).name
        if sig == signal.SIGKILL and cpu >= cpu_limit:  # the hard CPU limit
            return "cpu", "SIGKILL at the CPU-time limit"
        name = signal.Signals(sig).name if sig in signal.Signals.__members__.values() else str(sig)
        return "signal", name
    return "exit", f"exit code {os.WEXITSTATUS(status)}"


def run(job_dir: str, inputs_dir: str) -> None:
    _events[0] = os.dup(1)
    os.dup2(2, 1)  # a print or warning of an import goes to stderr, never into the event stream
    with open(os.path.join(job_dir, "job.json"), encoding="utf-8") as f:
        job = json.load(f)
    if job.get("probe"):
        drop_root()
        say(event="probe", uid=os.getuid())
        return
    limits, isolated = job["limits"], bool(job.get("isolated"))
    set_limits(limits)
    drop_root()
    work = tempfile.mkdtemp(prefix="vgpt-runner-")  # in the sandbox, inside its private /tmp
    with open(os.path.join(inputs_dir, "inputs.bin"), "rb") as f:
        inputs = wire.loads(f.read())
    import torch  # once, here: every child is a fork of this process

    torch.set_num_threads(1)
    if calls.needs_transformers({kind for exercise in job["exercises"] for kind, _, _ in inputs[exercise["checker"]]}):
        import transformers.pytorch_utils  # noqa: F401 (imported once, for every child)
        from transformers import GPT2LMHeadModel  # noqa: F401
    say(event="ready")
    for index, exercise in enumerate(job["exercises"]):
        say(event="start", index=index)
        seconds = float(exercise.get("seconds", limits["seconds"]))
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        answers, written = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(answers)
            child(index, exercise, inputs[exercise["checker"]], limits, work, isolated, written)
        os.close(written)
        blob, status, stopped = collect(pid, answers, seconds, limits["report"], isolated)
        os.close(answers)
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - cpu_before
        kill_the_rest(pid, isolated)
        if stopped == "report":
            say(event="stopped", index=index, reason="report", detail=f"more than {limits['report']} bytes")
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and blob:
            say(event="result", index=index, blob=base64.b64encode(blob).decode())
        else:
            reason, detail = stop_reason(status, stopped == "time", cpu, seconds, cpu_seconds(exercise, limits))
            say(event="stopped", index=index, reason=reason, detail=detail)
        empty_tmp(work, isolated)
    say(event="done")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    run(argv[0], argv[1])
