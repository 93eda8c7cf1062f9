"""Several processes, one training run: PyTorch's DistributedDataParallel launched by `torchrun`.

    torchrun --nproc_per_node N -m vgpt train --profile seed --data FOLDER --out runs/x

torchrun starts N copies of the command and tells each its RANK and WORLD_SIZE; `Torchrun()` joins
them into one process group (NCCL on GPUs, gloo on CPUs) and is handed to `train` and
`features.build_cache` as their `world`, in place of `runtime.ONE_PROCESS`. What changes:

- each optimizer step's batch (the profile's batch size) is cut into N shards at image boundaries,
  so an image's captions stay together and still share one prefix pass; each rank runs its shard;
- DDP averages the gradients; each rank scales its loss so that the average is the gradient of the
  whole batch's mean loss (`global_batch`);
- feature extraction is sharded across ranks into one cache;
- only rank 0 writes checkpoints, logs, metrics and progress bars.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..runtime import ONE_PROCESS, OneProcess


def launched() -> bool:
    """Did torchrun start this process as one of several?"""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def world():
    """`Torchrun()` under torchrun with several processes, else `runtime.ONE_PROCESS`."""
    return Torchrun() if launched() else ONE_PROCESS


class Torchrun(OneProcess):
    """The processes torchrun started, joined into one process group."""

    def __init__(self):
        if not dist.is_initialized():
            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        self.rank, self.size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0

    def barrier(self) -> None:
        dist.barrier()

    def gather(self, local: dict) -> dict:
        parts: list[dict] = [{} for _ in range(self.size)]
        dist.all_gather_object(parts, local)
        return {k: v for part in parts for k, v in part.items()}

    def device(self, device: torch.device) -> torch.device:
        """Each rank on its own GPU (LOCAL_RANK); CPUs are shared."""
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if device.type == "cuda" else device

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        ids = [torch.cuda.current_device()] if next(model.parameters()).is_cuda else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def no_sync(self, net):
        return net.no_sync()

    def shard(self, batch: list) -> tuple[list, bool]:
        """Contiguous runs of whole images with caption counts as even as the boundaries allow; where
        a batch has fewer images than ranks it is cut by captions instead. A rank left with nothing
        gets the batch's first pair with `real=False`: it still runs forward and backward (DDP needs
        every rank), with its loss scaled to zero."""
        return shard(batch, self.rank, self.size)

    def global_batch(self, loss: torch.Tensor, tokens: int, real: bool) -> tuple[float, float]:
        """DDP averages gradients over N ranks, so each rank's mean loss is scaled by N x its tokens /
        all tokens: the average is then the gradient of (every token's loss) / (all tokens)."""
        local = tokens if real else 0
        sums = torch.tensor([loss.item() * local, float(local)], device=loss.device, dtype=torch.float64)
        dist.all_reduce(sums)
        total_loss, total_tokens = sums.tolist()
        return self.size * local / max(total_tokens, 1.0), total_loss / max(total_tokens, 1.0)


def shard(batch: list[tuple[str, str]], rank: int, size: int) -> tuple[list[tuple[str, str]], bool]:
    """Rank `rank`'s part of a batch of (image id, caption) pairs among `size`, and whether it is real."""
    if size == 1:
        return list(batch), True
    starts = [i for i in range(len(batch)) if i == 0 or batch[i][0] != batch[i - 1][0]]
    if len(starts) < size:
        starts = list(range(len(batch)))
    cuts = [0]
    for r in range(1, size):  # the boundary nearest to an even split
        target = r * len(batch) / size
        later = [s for s in [*starts, len(batch)] if s >= cuts[-1]]
        cuts.append(min(later, key=lambda s: (abs(s - target), -s)))  # a tie goes to the earlier rank
    cuts.append(len(batch))
    part = list(batch[cuts[rank] : cuts[rank + 1]])
    return (part, True) if part else (list(batch[:1]), False)
