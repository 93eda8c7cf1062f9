"""Several processes, one training run: PyTorch's DistributedDataParallel launched by `torchrun`.

    torchrun --nproc_per_node N -m vgpt train --profile seed --data FOLDER --out runs/x

torchrun starts N copies of the command and tells each its RANK and
WORLD_SIZE; `init()` joins them into one process group (NCCL on GPUs, gloo on
CPUs). A plain `python -m vgpt train` is a world of one and takes none of
these paths. What changes with N processes:

- each optimizer step's global batch (the profile's batch size) is cut into N
  shards at image boundaries, so an image's captions stay together and still
  share one prefix pass; each rank runs its shard;
- DDP averages the gradients; each rank scales its loss so that the average
  is the gradient of the whole batch's mean loss (`global_loss_scale`);
- feature extraction is sharded across ranks into one cache;
- only rank 0 writes checkpoints, logs, metrics and progress bars.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    """Rank 0, the one process that writes files and prints."""
    return rank() == 0


def init() -> int:
    """Join the process group torchrun described in the environment; returns the world size (1 alone)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or world_size() > 1:
        return world_size()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return world_size()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def device_for_rank(device: torch.device) -> torch.device:
    """Each rank on its own GPU (LOCAL_RANK); CPUs are shared."""
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard(chunk: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], bool]:
    """This rank's part of a global batch of (image id, caption) pairs, and whether it is real.

    Cut into contiguous runs of whole images with caption counts as even as the
    boundaries allow; where a batch has fewer images than ranks it is cut by
    captions instead. A rank left with nothing gets the batch's first pair with
    `real=False`: it still runs forward and backward (DDP needs every rank),
    with its loss scaled to zero.
    """
    n = world_size()
    if n == 1:
        return list(chunk), True
    starts = [i for i in range(len(chunk)) if i == 0 or chunk[i][0] != chunk[i - 1][0]]
    if len(starts) < n:
        starts = list(range(len(chunk)))
    cuts = [0]
    for r in range(1, n):  # the boundary nearest to an even split
        target = r * len(chunk) / n
        later = [s for s in [*starts, len(chunk)] if s >= cuts[-1]]
        cuts.append(min(later, key=lambda s: (abs(s - target), -s)))  # a tie goes to the earlier rank
    cuts.append(len(chunk))
    part = list(chunk[cuts[rank()] : cuts[rank() + 1]])
    return (part, True) if part else (list(chunk[:1]), False)


def global_batch(loss: torch.Tensor, tokens: int, real: bool = True) -> tuple[float, float]:
    """(scale for this rank's mean loss, the mean loss over the whole global batch).

    DDP averages gradients over N ranks, so each rank's mean loss is scaled by
    N x its tokens / all tokens: the average is then the gradient of
    (sum of every token's loss) / (all tokens), as in one process.
    """
    n = world_size()
    if n == 1:
        return 1.0, loss.item()
    local = tokens if real else 0
    sums = torch.tensor([loss.item() * local, float(local)], device=loss.device, dtype=torch.float64)
    dist.all_reduce(sums)
    total_loss, total_tokens = sums.tolist()
    return n * local / max(total_tokens, 1.0), total_loss / max(total_tokens, 1.0)


def gather_dict(local: dict) -> dict:
    """The union of every rank's dict (e.g. the unreadable images each rank met)."""
    if world_size() == 1:
        return dict(local)
    parts: list[dict] = [{} for _ in range(world_size())]
    dist.all_gather_object(parts, local)
    return {k: v for part in parts for k, v in part.items()}
