"""Stage 06: train the bridge (projector + LoRA) from cached features; nothing else moves.

    for each epoch: a fixed shuffled order (images kept with their captions)
      for each batch: loss over caption tokens -> backward (scaled under fp16)
        every `grad_accum` batches: learning rates from the schedule -> clip -> AdamW step
      validation loss, `on_epoch_end` hook, checkpoint

One loop for CPU, CUDA and MPS: mixed precision where the device has it
(`device.py`), gradient accumulation and clipping, warmup + cosine with a
base learning rate per parameter group (projector, LoRA), a progress bar and a
history to plot. A checkpoint (`checkpoint.py`) is written at each epoch end,
every `checkpoint_every` steps or minutes, and when training is interrupted;
`resume=True` carries on from it, mid-epoch included, with the same data order
and schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import distributed
from .checkpoint import CHECKPOINT, Checkpointer, load_checkpoint
from .device import autocast, autocast_dtype, grad_scaler, pick_device, use_cpu_threads
from .lean_forward import fuse_gelu
from .prefix import tokenize_captions
from .profiles import TrainConfig
from .progress import progress
from .schedule import warmup_cosine
from .shared_prefix import caption_forward, group_by_image

__all__ = ["CHECKPOINT", "CaptionData", "TrainConfig", "TrainState", "train", "validation_loss"]


@dataclass
class CaptionData:
    """Pairs of (image id, caption) and where their features come from."""

    pairs: Sequence[tuple[str, str]]
    features: Callable[[list[str]], torch.Tensor]  # image ids -> (B, N, Dv)


# ------------------------------------------------------------- data order


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of one epoch: fixed by (seed, epoch), so a resumed run sees the same."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def caption_order(pairs: Sequence[tuple[str, str]], seed: int, epoch: int, grouped: bool) -> list[int]:
    """The epoch's order of pairs. Grouped: images shuffled, each image's captions kept together,
    so that a batch holds few images and their prefixes can be shared."""
    if not grouped:
        return epoch_order(len(pairs), seed, epoch)
    groups: dict[str, list[int]] = {}
    for i, (image, _) in enumerate(pairs):
        groups.setdefault(image, []).append(i)
    lists = list(groups.values())
    return [i for g in epoch_order(len(lists), seed, epoch) for i in lists[g]]


def epoch_batches(data: CaptionData, config: TrainConfig, epoch: int) -> list[list[tuple[str, str]]]:
    """The batches of (image id, caption) pairs that `train` visits in `epoch`, in its order: the
    last one may be short. Notebook 06 takes one of them to repeat a step by hand."""
    order = caption_order(data.pairs, config.seed, epoch, has_groups(data))
    size = config.batch_size
    return [[data.pairs[i] for i in order[start : start + size]] for start in range(0, len(order), size)]


def has_groups(data: CaptionData) -> bool:
    """Does some image have several captions?"""
    return len({image for image, _ in data.pairs}) < len(data.pairs)


def uses_shared_prefix(data: CaptionData, config: TrainConfig) -> bool:
    return has_groups(data) if config.shared_prefix is None else config.shared_prefix


# ------------------------------------------------------------- one batch


class CaptionLoss(torch.nn.Module):
    """The loss of a batch as a module, so that DistributedDataParallel can wrap it (several processes)."""

    def __init__(self, model, lean: bool = False):
        super().__init__()
        self.model, self.lean = model, lean

    def forward(self, ids, mask, owner, features, shared: bool):
        return caption_forward(self.model, ids, mask, owner, features, shared, self.lean).loss


def batch_loss(model, chunk: Sequence[tuple[str, str]], data: CaptionData, device, shared: bool, loss_fn=None):
    """Mean loss over the caption tokens (and end-of-text) of a batch of (image id, caption) pairs,
    and how many tokens that is. `loss_fn` (a `CaptionLoss`, maybe DDP-wrapped) computes it."""
    captions = [c for _, c in chunk]
    ids, mask = tokenize_captions(model.tokenizer, captions, model.config.model.max_caption_tokens)
    images, owner = group_by_image([i for i, _ in chunk])
    features = data.features(images).to(device)
    loss_fn = loss_fn or CaptionLoss(model)
    return loss_fn(ids.to(device), mask.to(device), owner, features, shared), int(mask.sum())


def make_optimizer(model, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the bridge only: two parameter groups, each carrying its own base learning rate."""
    lora = [p for p in model.lm.parameters() if p.requires_grad]
    groups = [
        {"name": "projector", "params": list(model.projector.parameters()), "base_lr": config.lr_projector},
        {"name": "lora", "params": lora, "base_lr": config.lr_lora},
    ]
    for group in groups:
        group["lr"] = group["base_lr"]
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def set_learning_rates(opt, config: TrainConfig, step: int, total_steps: int) -> None:
    """Each group's base rate times the schedule's factor at this optimizer step."""
    factor = 1.0
    if config.schedule == "warmup_cosine":
        factor = warmup_cosine(step, total_steps, config.warmup_steps)
    for group in opt.param_groups:
        group["lr"] = group["base_lr"] * factor


def optimizer_step(model, opt, scaler, clip_norm: float) -> None:
    """Unscale (fp16), clip the bridge's gradient norm, step, and clear the gradients."""
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), clip_norm)
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)


@torch.no_grad()
def validation_loss(model, data: CaptionData, config: TrainConfig, device, dtype) -> float:
    """Mean loss per caption token over the whole of `data`, in a fixed order."""
    model.eval()
    total, count = 0.0, 0
    shared = uses_shared_prefix(data, config)
    loss_fn = CaptionLoss(model, config.lean_forward)
    pairs = [data.pairs[i] for i in caption_order(data.pairs, 0, 0, has_groups(data))]
    size = config.batch_size * 4
    for start in range(0, len(pairs), size):
        with autocast(device, dtype):
            loss, tokens = batch_loss(model, pairs[start : start + size], data, device, shared, loss_fn)
        total, count = total + float(loss) * tokens, count + tokens
    return total / max(count, 1)


# ------------------------------------------------------------- the loop


@dataclass
class TrainState:
    """Where the loop stands; saved in every checkpoint as JSON."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches of the current epoch finished
    step: int = 0  # optimizer steps taken
    epoch_start_step: int = 0  # `step` when the current epoch began
    step_loss: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)  # one record per finished epoch

    @property
    def history(self) -> dict:
        return {"step_loss": self.step_loss, "epochs": self.epochs}


def _maybe_no_sync(loss_fn, stepping: bool):
    """Under DDP, gradients are averaged across ranks only on the micro-batch that ends a step."""
    import contextlib

    if stepping or not hasattr(loss_fn, "no_sync"):
        return contextlib.nullcontext()
    return loss_fn.no_sync()


class _Run:
    """One training run's moving parts (model, loss, optimizer, precision, data, checkpoints) and its steps."""

    def __init__(self, model, data: CaptionData, config: TrainConfig, device, run_dir, checkpoint_every, progress):
        self.model, self.data, self.config = model, data, config
        self.device = distributed.device_for_rank(pick_device(device))
        self.dtype = autocast_dtype(self.device)
        self.scaler = grad_scaler(self.device, self.dtype)
        model.to(self.device)
        if config.compile:
            model.lm.get_base_model().transformer.compile()  # in place; LoRA layers are inside
        if config.lean_forward:
            fuse_gelu(model.lm)  # in place, and kept after training: the same function, one kernel
        self.loss_fn = CaptionLoss(model, config.lean_forward)
        if distributed.world_size() > 1:  # torchrun: gradients averaged across ranks in backward
            ids = [self.device] if self.device.type == "cuda" else None
            self.loss_fn = torch.nn.parallel.DistributedDataParallel(self.loss_fn, device_ids=ids)
        self.opt = make_optimizer(model, config)
        self.run_dir = Path(run_dir) if run_dir else None
        self.checkpoints = Checkpointer(self.run_dir if distributed.is_main() else None, checkpoint_every)
        self.progress = progress and distributed.is_main()
        self.batches = math.ceil(len(data.pairs) / config.batch_size)
        self.total_steps = math.ceil(self.batches / config.grad_accum) * config.epochs
        self.shared = uses_shared_prefix(data, config)

    def resume(self) -> TrainState:
        saved = load_checkpoint(self.model, self.opt, self.run_dir)
        return TrainState(**{k: v for k, v in saved.items() if k != "config"})

    def backward(self, chunk, stepping: bool) -> float:
        """Forward and backward of this process's part of a batch; returns the whole batch's mean loss."""
        chunk, real = distributed.shard(chunk)  # all of it in one process
        with _maybe_no_sync(self.loss_fn, stepping):
            with autocast(self.device, self.dtype):
                loss, tokens = batch_loss(self.model, chunk, self.data, self.device, self.shared, self.loss_fn)
            scale, global_loss = distributed.global_batch(loss, tokens, real)
            self.scaler.scale(loss * (scale / self.config.grad_accum)).backward()
        return global_loss

    def epoch(self, state: TrainState, epoch: int, on_step) -> None:
        """The batches of one epoch, from where `state` stands."""
        config = self.config
        chunks = epoch_batches(self.data, config, epoch)
        if state.batch == 0:
            state.epoch_start_step = state.step
        if self.device.type == "cpu":
            use_cpu_threads()  # as many threads as the cores other programs leave free, each epoch
        self.model.train()
        bar = progress(range(state.batch, self.batches), desc=f"epoch {epoch + 1}/{config.epochs}",
                       disable=not self.progress, leave=False)  # fmt: skip
        for b in bar:
            stepping = (b + 1) % config.grad_accum == 0 or b + 1 == self.batches
            loss = self.backward(chunks[b], stepping)
            if not stepping:
                continue  # accumulate; an interruption here redoes these batches on resume
            set_learning_rates(self.opt, config, state.step, self.total_steps)
            optimizer_step(self.model, self.opt, self.scaler, config.clip_norm)
            state.step, state.batch = state.step + 1, b + 1
            state.step_loss.append(loss)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)  # shown at the next redraw
            if on_step:
                on_step(state.step, loss)
            if self.checkpoints.due(state.step) and b + 1 != self.batches:
                self.save(state)

    def end_epoch(self, state: TrainState, epoch: int, val_data, on_epoch_end) -> None:
        """The epoch's record (mean train loss, validation loss, the hook's entries), then a checkpoint."""
        losses = state.step_loss[state.epoch_start_step :]
        record = {"epoch": epoch + 1, "step": state.step, "train_loss": sum(losses) / max(len(losses), 1)}
        if distributed.is_main():
            if val_data is not None:
                record["val_loss"] = validation_loss(self.model, val_data, self.config, self.device, self.dtype)
            if on_epoch_end:
                on_epoch_end(epoch + 1, record)
        state.epochs.append(record)
        state.epoch, state.batch = epoch + 1, 0
        self.save(state)

    def save(self, state: TrainState) -> None:
        self.checkpoints.save(self.model, self.opt, state, self.config)


def train(
    model,
    train_data: CaptionData,
    config: TrainConfig,
    val_data: CaptionData | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    progress: bool = True,
    checkpoint_every: int | str | None = "10min",
) -> dict:
    """Train the bridge. Returns the history: per-step losses and per-epoch records.

    `on_epoch_end(epoch, record)` may add entries to the record (caption
    metrics, say); `on_step(step, loss)` is called after each optimizer step.
    `checkpoint_every`: steps (int) or minutes ("10min") between mid-epoch
    checkpoints in `run_dir`; a disconnect then loses at most that much.
    """
    run = _Run(model, train_data, config, device, run_dir, checkpoint_every, progress)
    state = run.resume() if resume else TrainState()
    try:
        for epoch in range(state.epoch, config.epochs):
            run.epoch(state, epoch, on_step)
            run.end_epoch(state, epoch, val_data, on_epoch_end)
    except KeyboardInterrupt:
        if run.run_dir and distributed.is_main():
            run.save(state)
            print(f"interrupted: checkpoint saved in {run.run_dir / CHECKPOINT}; continue with resume=True")
        raise
    model.eval()
    return state.history
