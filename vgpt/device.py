"""Where to run, in which precision, and on how many CPU threads: CUDA (bf16 from compute
capability 8.0, else fp16 with a gradient scaler), Apple MPS, or the CPU in plain fp32."""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import torch

# torch's own choice when vgpt was imported: one thread per physical core, or OMP_NUM_THREADS
DEFAULT_CPU_THREADS = torch.get_num_threads()


def pick_device(name: str | None = None) -> torch.device:
    """`name` if given, else cuda, then mps, then cpu."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs of compute capability 8.0 and newer (A100, RTX 30xx and later, H100), fp16 on
    older ones (T4 is 7.5, V100 7.0), none on CPU or MPS.

    Decided by compute capability, not by `torch.cuda.is_bf16_supported()`: in torch 2.13 that
    counts emulated bf16 by default (`including_emulation=True`) and says yes on a T4, whose
    tensor cores have no bf16 (it came with Ampere, 8.0): there fp16 with loss scaling is the fast
    path.
    """
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A mixed-precision context, or a do-nothing one where dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None):
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def cpu_threads(busy_elsewhere: float | None, cores: int, most: int | None = None) -> int:
    """Intra-op CPU threads: one for each core that other processes leave free, at least 1, at most
    `most` (torch's default); `most` where the load is unknown (`busy_elsewhere` None).

    Measured on a 2-core CPU with torch 2.13, median s/step of a training step (forward + backward +
    AdamW) beside nothing and beside one `python -c 'while True: pass'`:

        threads                     tiny, 64 captions          seed, 2 captions
                                    alone   beside busy        alone   beside busy
        2 (torch's default)         0.18    4.5  (25x)         2.8     14.2  (5x)
        1                           0.23    0.22               4.4     4.8
        2, OMP_WAIT_POLICY=PASSIVE  0.52    0.24

    Each operation is split across the threads and ends at a barrier where OpenMP threads spin,
    waiting for each other; when another process holds one of the cores, every operation waits for
    the operating system to schedule the last thread again, however big the model. Threads only on
    the cores nobody else uses avoid that wait; always one thread would too, but costs 1.3 to 1.6x
    where nothing else runs, hence a count that follows the load. (Passive waiting is set by an
    environment variable read when torch loads, too late for a notebook, and is 2.9x slower
    alone.) Others' use is rounded up from a quarter of a core: a program idling at 10% of one
    leaves all threads, one at 30% takes a thread.
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
    OMP_NUM_THREADS says how many; returns the number in use. Called where long CPU work begins:
    loading a profile, each training epoch, building a feature cache."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cpu_threads(busy_elsewhere(), cores()))
    return torch.get_num_threads()
