"""How many CPU threads torch should use: one per core that other programs leave free.

torch splits each operation across its threads and ends it at a barrier where OpenMP threads spin,
waiting for each other; when another process holds one of the cores, every operation waits for the
operating system to schedule the last thread again. On a 2-core machine beside one busy process a
tiny training step took 25x as long with torch's default of 2 threads as alone, and 1 thread about
as long as alone (`python -m vgpt bench --under-load` measures it). Always one thread would avoid
the wait too, but costs 1.3 to 1.6x where nothing else runs: hence a count that follows the load,
set where long CPU work begins (a notebook's first cell, each command of the command line).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

# torch's own choice when vgpt was imported: one thread per physical core, or OMP_NUM_THREADS
DEFAULT_CPU_THREADS = torch.get_num_threads()


def cpu_threads(busy_elsewhere: float | None, cores: int, most: int | None = None) -> int:
    """Intra-op CPU threads: one for each core that other processes leave free, at least 1, at most
    `most` (torch's default); `most` where the load is unknown (`busy_elsewhere` None).

    Others' use is rounded up from a quarter of a core: a program idling at 10% of one leaves all
    threads, one at 30% takes a thread.
    """
    most = DEFAULT_CPU_THREADS if most is None else most
    if busy_elsewhere is None:
        return most
    return max(1, min(most, math.floor(cores - busy_elsewhere + 0.25)))


def _busy_seconds(cpus: set[int], stat: str) -> float:
    """CPU seconds spent busy (all but idle and iowait) so far on `cpus`, from /proc/stat's text."""
    ticks = 0
    for line in stat.splitlines():
        name, *fields = line.split()
        if name[:3] == "cpu" and name[3:].isdigit() and int(name[3:]) in cpus:
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            ticks += sum(values) - values[3] - values[4]
    return ticks / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds this process has used, all its threads together."""
    times = os.times()
    return times.user + times.system


def busy_elsewhere(interval: float = 0.2) -> float | None:
    """How many of this process's CPUs other processes kept busy over the next `interval` seconds
    (their CPU time over the wall time, steal time included); None off Linux, where /proc/stat is missing."""
    stat = Path("/proc/stat")
    if not hasattr(os, "sched_getaffinity") or not stat.is_file():
        return None
    cpus = os.sched_getaffinity(0)
    busy, own, start = _busy_seconds(cpus, stat.read_text()), _own_seconds(), time.perf_counter()
    time.sleep(interval)
    busy, own = _busy_seconds(cpus, stat.read_text()) - busy, _own_seconds() - own
    return max(0.0, (busy - own) / (time.perf_counter() - start))


def cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def use_cpu_threads() -> int:
    """Set torch's intra-op threads (for the whole process) by `cpu_threads` for the load now, unless
    OMP_NUM_THREADS says how many; returns the number in use."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cpu_threads(busy_elsewhere(), cores()))
    return torch.get_num_threads()
