"""Where a run runs: the device and its precision, the processes taking part, progress bars.

device      CUDA (bf16 from compute capability 8.0, else fp16 with a gradient scaler),
            Apple MPS, or the CPU in plain fp32
processes   ONE_PROCESS here; `scale.distributed.Torchrun` when `torchrun` starts several
progress    tqdm bars that redraw a fixed number of times, however slow the machine
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable

import torch
from tqdm.auto import tqdm


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
    """bf16 on GPUs of compute capability 8.0 and newer (A100, RTX 30xx, H100), fp16 on older ones
    (T4 is 7.5), none on CPU or MPS. Decided by compute capability: `torch.cuda.is_bf16_supported()`
    counts emulated bf16 and says yes on a T4, whose tensor cores have none."""
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


class OneProcess:
    """The processes of a run when there is only this one. `scale.distributed.Torchrun` has the same
    methods for several: each takes a shard of every batch, and gradients are averaged across them."""

    rank, size, is_main = 0, 1, True

    def barrier(self) -> None:
        pass

    def gather(self, local: dict) -> dict:
        """The union of every process's dict (the unreadable images each met)."""
        return dict(local)

    def device(self, device: torch.device) -> torch.device:
        return device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module whose forward gives the loss (under torchrun: DistributedDataParallel around it)."""
        return model

    def no_sync(self, net):
        """Skip the gradient averaging on a micro-batch that does not end a step."""
        return contextlib.nullcontext()

    def shard(self, batch: list) -> tuple[list, bool]:
        """This process's part of a batch, and whether it is real (a process left without any runs
        the batch's first pair at zero weight)."""
        return list(batch), True

    def global_batch(self, loss: torch.Tensor, tokens: int, real: bool) -> tuple[float, float]:
        """(scale of this process's mean loss, the whole batch's mean loss)."""
        return 1.0, loss.item()


ONE_PROCESS = OneProcess()

REDRAWS = 20  # per bar: one every 5%, about 60 output messages in a notebook
MININTERVAL = 0.5  # seconds; a fast loop redraws less often still


def progress(iterable: Iterable, desc: str | None = None, total: int | None = None, redraws: int = REDRAWS, **options):
    """`tqdm.auto.tqdm(iterable, desc=...)` that redraws at most about `redraws` times.

    In Jupyter every redraw of a bar is a few messages to the front end, and tqdm redraws by the
    clock: on a slow machine a training cell sent thousands, more than nbval's 5 s per message
    could drain. A fixed `miniters` replaces tqdm's speed-adaptive one, and an infinite
    `maxinterval` stops its monitor thread from resetting `miniters` on a slow bar. Update a bar's
    text with `set_postfix(..., refresh=False)`, shown at the next redraw.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    every = max(1, math.ceil(total / redraws)) if total else 1
    return tqdm(
        iterable, desc=desc, total=total, miniters=every, mininterval=MININTERVAL, maxinterval=math.inf, **options
    )
