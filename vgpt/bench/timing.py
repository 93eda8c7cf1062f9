"""The timing harness behind `python -m vgpt bench`: run a variant a few times after one warm-up,
and from that warm-up count its FLOPs (torch's FLOP counter), its kernels and the bytes autograd
keeps for the backward pass; and random caption batches to time it on. Knows nothing of the models;
`speed.py` says what is measured."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode


@dataclass
class Timing:
    name: str
    seconds: list[float]  # per run
    flops: int = 0  # of one run, from the warm-up
    tokens: int = 0  # generated, for generation runs
    saved_bytes: int = 0  # tensors kept for the backward pass, in the warm-up run
    kernels: Counter = field(default_factory=Counter)  # operations that run a kernel, by name, in the warm-up
    host_ops: int = 0  # operations on small index tensors that stay on the host on a GPU

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.seconds), max(self.seconds)


def _sdpa_flops():
    """CPU attention kernels the FLOP counter does not know, counted like the GPU ones."""
    aten = torch.ops.aten

    def forward(q, k, v, *args, out_shape=None, **kw):
        return flop_counter.sdpa_flop_count(q, k, v)

    def backward(grad, q, k, v, *args, out_shape=None, **kw):
        return flop_counter.sdpa_backward_flop_count(grad, q, k, v)

    return {
        aten._scaled_dot_product_flash_attention_for_cpu: forward,
        aten._scaled_dot_product_flash_attention_for_cpu_backward: backward,
    }


class SavedTensors(torch.autograd.graph.saved_tensors_hooks):
    """Adds up the bytes autograd keeps for the backward pass (each storage once): the activation
    memory of a training step, measurable on any device."""

    def __init__(self):
        self.storages: dict[int, int] = {}

        def pack(t):
            storage = t.untyped_storage()
            self.storages[storage.data_ptr()] = storage.nbytes()
            return t

        super().__init__(pack, lambda t: t)

    @property
    def total(self) -> int:
        return sum(self.storages.values())


class KernelCount(TorchDispatchMode):
    """Counts the operations of a step, backward included, as they reach their kernels (after autograd and
    the composite operations' decomposition): views and allocations are free, everything else is one kernel
    on a GPU, roughly (a CPU runs dropout as three operations, CUDA as one). Operations inside a function
    wrapped by `host` are counted apart: on a GPU they work on small CPU tensors and launch nothing."""

    FREE = {"empty", "empty_strided", "empty_like", "_unsafe_view", "_local_scalar_dense", "lift_fresh", "resize_"}

    def __init__(self):
        super().__init__()
        self.kernels, self.host_ops, self._host = Counter(), 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if self._host:
            self.host_ops += 1
        elif not func.is_view and name not in self.FREE:
            self.kernels[name] += 1
        return func(*args, **(kwargs or {}))

    def host(self, fn):
        def wrapped(*args, **kwargs):
            self._host += 1
            try:
                return fn(*args, **kwargs)
            finally:
                self._host -= 1

        return wrapped


def count_kernels(run, host=()) -> KernelCount:
    """Run `run()` once and count its kernels; `host`: (module, name) of functions whose operations stay on the host."""
    counter = KernelCount()
    originals = [(module, name, getattr(module, name)) for module, name in host]
    for module, name, fn in originals:
        setattr(module, name, counter.host(fn))
    try:
        with counter:
            run()
    finally:
        for module, name, fn in originals:
            setattr(module, name, fn)
    return counter


def measure(name: str, run, repeats: int, warmup=None, device=None, host=()) -> Timing:
    """Time `run()` `repeats` times after one warm-up (`warmup()` if given), which is FLOP-counted
    and whose saved activations are added up; then one more run whose kernels are counted."""
    return measure_all({name: (run, warmup)}, repeats, device, host)[0]


def measure_all(runs: dict, repeats: int, device=None, host=()) -> list[Timing]:
    """`runs`: name -> (run, warmup or None). Each warmed up and counted as `measure` does, then timed
    `repeats` times in turn (a, b, c, a, b, c, ...), so that a slow spell of a shared machine hits all alike."""
    timings = []
    for name, (run, warmup) in runs.items():
        counter = flop_counter.FlopCounterMode(display=False, custom_mapping=_sdpa_flops())
        saved = SavedTensors()
        with counter, saved:
            (warmup or run)()
        kernels = count_kernels(warmup or run, host)
        timings.append(Timing(name, [], counter.get_total_flops(), 0, saved.total, kernels.kernels, kernels.host_ops))
    for _ in range(repeats):
        for timing, (run, _) in zip(timings, runs.values()):
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            run()
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize()
            timing.seconds.append(time.perf_counter() - start)
    return timings


def caption_batch(images: int, per_image: int, vocab: int, seed: int = 0):
    """Random caption ids of Flickr8k-like lengths (10 to 20 tokens + end-of-text), right-padded."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(10, 21, (images * per_image,), generator=g)
    ids = torch.randint(1, vocab, (len(lengths), int(lengths.max())), generator=g)
    mask = (torch.arange(ids.shape[1]) < lengths[:, None]).long()
    owner = torch.arange(images).repeat_interleave(per_image)
    return ids, mask, owner
