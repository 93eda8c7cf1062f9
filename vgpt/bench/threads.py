"""`python -m vgpt bench --under-load`: a CPU training step with one thread and with torch's default,
alone and beside one busy process, side by side in one run.

Why `scale.threads.cpu_threads` gives small models one thread: with two, every small
operation ends at a barrier where the two OpenMP threads wait for each other,
and when another program holds one of the cores that wait lasts until the
operating system schedules the second thread again. The table shows what that
costs and what one thread costs on an idle machine. The busy process is
`python -c 'while True: pass'`, started and stopped here. (OMP_WAIT_POLICY,
the other lever, is read once when torch loads, so it cannot be compared in
one process; `scale.threads.cpu_threads`' docstring gives its figures.)
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time

import torch

from ..scale.threads import DEFAULT_CPU_THREADS, busy_elsewhere, cores, cpu_threads
from ..train import make_optimizer, train_step
from .speed import bench_models
from .timing import caption_batch


@contextlib.contextmanager
def busy_process():
    """One process that keeps a core fully busy, as a browser tab or a second notebook can. It runs in
    a session of its own, as another program would: Linux shares the CPU between sessions first
    (autogroup scheduling), so a busy process in this one would compete less than a real one."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        yield burner
    finally:
        burner.kill()
        burner.wait()


def training_step(model, profile, captions: int):
    """One optimizer step on CPU, as training takes it: `captions` captions, each with its own
    image's (random) features, forward + backward + clipped AdamW step."""
    spec, config = profile.model, profile.train
    ids, mask, owner = caption_batch(captions, 1, model.spec.vocab_size)
    features = torch.randn(captions, spec.visual_tokens, spec.vision_width)
    opt = make_optimizer(model, config)
    model.train()

    def step():
        train_step(opt, lambda: model(ids, mask, features=features, owner=owner).loss, 1.0, config.clip_norm)

    return step


def seconds_per_step(step, threads: int, steps: int) -> float:
    """Median wall seconds of `steps` steps on `threads` intra-op threads, after one warm-up step."""
    torch.set_num_threads(threads)
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def thread_timings(step, thread_counts, steps: int, rounds: int):
    """Median s/step by (threads, beside a busy process) over `rounds` rounds, and in each condition
    the thread count `scale.threads.cpu_threads` picks from the load it measures there. Within a round every
    combination runs back to back, so slow spells of the machine hit them all alike."""
    seen: dict[tuple[int, bool], list[float]] = {}
    picks: dict[bool, list[int]] = {False: [], True: []}
    for _ in range(rounds):
        for busy in (False, True):
            with busy_process() if busy else contextlib.nullcontext():
                picks[busy].append(cpu_threads(busy_elsewhere(), cores()))
                for threads in sorted({*thread_counts, picks[busy][-1]}):
                    seen.setdefault((threads, busy), []).append(seconds_per_step(step, threads, steps))
    medians = {key: statistics.median(values) for key, values in seen.items()}
    return medians, {busy: statistics.mode(values) for busy, values in picks.items()}


def run_thread_bench(
    profile: str = "tiny", steps: int = 10, rounds: int = 3, captions: int | None = None, log=print
) -> dict:
    """Print and return the table: s/step alone and beside a busy process, for 1 thread, torch's
    default and vgpt's pick; a step trains on `captions` captions (default: the profile's batch size)."""
    torch.manual_seed(0)
    model, chosen = bench_models(profile)
    captions = captions or chosen.train.batch_size
    counts = sorted({1, DEFAULT_CPU_THREADS})
    log(f"CPU training step, {chosen.name} profile, {captions} captions; torch {torch.__version__}; "
        f"{cores()} cores; median s/step of {steps} x {rounds} rounds")  # fmt: skip
    before = torch.get_num_threads()
    try:
        figures, picks = thread_timings(training_step(model, chosen, captions), counts, steps, rounds)
    finally:
        torch.set_num_threads(before)
    rows = {f"{n} thread{'s' * (n > 1)}" + (" (torch's default)" if n == DEFAULT_CPU_THREADS else ""):
            (figures[(n, False)], figures[(n, True)]) for n in counts}  # fmt: skip
    rows[f"vgpt: {picks[False]} alone, {picks[True]} beside"] = (figures[(picks[False], False)],
                                                                figures[(picks[True], True)])  # fmt: skip
    log(f"  {'threads':<34}{'alone':>8}{'beside a busy process':>24}{'slowdown':>10}")
    for name, (alone, busy) in rows.items():
        log(f"  {name:<34}{alone:>8.3f}{busy:>24.3f}{busy / alone:>9.2f}x")
    default, vgpt = rows[next(k for k in rows if "default" in k)], rows[next(reversed(rows))]
    log(f"vgpt over torch's default: {default[0] / vgpt[0]:.2f}x as fast alone, "
        f"{default[1] / vgpt[1]:.2f}x beside a busy process")  # fmt: skip
    return {
        "profile": chosen.name,
        "captions": captions,
        "vgpt_threads": {"alone": picks[False], "busy": picks[True]},
        "seconds_per_step": {name: {"alone": a, "busy": b} for name, (a, b) in rows.items()},
    }
