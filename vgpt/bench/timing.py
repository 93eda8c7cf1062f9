"""The timing harness behind `python -m vgpt bench`: run a variant a few times after one warm-up,
and from that warm-up count its FLOPs (torch's FLOP counter) and the bytes autograd keeps for the
backward pass; and random caption batches to time it on. Knows nothing of the models; `speed.py`
says what is measured."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils import flop_counter


@dataclass
class Timing:
    name: str
    seconds: list[float]  # per run
    flops: int = 0  # of one run, from the warm-up
    tokens: int = 0  # generated, for generation runs
    saved_bytes: int = 0  # tensors kept for the backward pass, in the warm-up run

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


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


def measure(name: str, run, repeats: int, warmup=None, device=None) -> Timing:
    """Time `run()` `repeats` times after one warm-up (`warmup()` if given), which is FLOP-counted
    and whose saved activations are added up."""
    counter = flop_counter.FlopCounterMode(display=False, custom_mapping=_sdpa_flops())
    saved = SavedTensors()
    with counter, saved:
        (warmup or run)()
    seconds = []
    for _ in range(repeats):
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return Timing(name, seconds, counter.get_total_flops(), saved_bytes=saved.total)


def caption_batch(images: int, per_image: int, vocab: int, seed: int = 0):
    """Random caption ids of Flickr8k-like lengths (10 to 20 tokens + end-of-text), right-padded."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(10, 21, (images * per_image,), generator=g)
    ids = torch.randint(1, vocab, (len(lengths), int(lengths.max())), generator=g)
    mask = (torch.arange(ids.shape[1]) < lengths[:, None]).long()
    owner = torch.arange(images).repeat_interleave(per_image)
    return ids, mask, owner
