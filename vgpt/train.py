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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .device import autocast, autocast_dtype, grad_scaler, pick_device
from .prefix import tokenize_captions
from .profiles import TrainConfig
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


def batch_loss(model, chunk: Sequence[tuple[str, str]], data: CaptionData, device, shared: bool):
    """Mean loss over the caption tokens (and end-of-text) of a batch of (image id, caption) pairs,
    and how many tokens that is."""
    captions = [c for _, c in chunk]
    ids, mask = tokenize_captions(model.tokenizer, captions, model.config.model.max_caption_tokens)
    images, owner = group_by_image([i for i, _ in chunk])
    features = data.features(images).to(device)
    out = caption_forward(model, ids.to(device), mask.to(device), owner, features, shared)
    return out.loss, int(mask.sum())


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
    pairs = [data.pairs[i] for i in caption_order(data.pairs, 0, 0, has_groups(data))]
    size = config.batch_size * 4
    for start in range(0, len(pairs), size):
        with autocast(device, dtype):
            loss, tokens = batch_loss(model, pairs[start : start + size], data, device, shared)
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


class Checkpointer:
    """Writes checkpoints into `run_dir` (if any) every `every` steps (an int) or minutes ("10min")."""

    def __init__(self, run_dir: Path | None, every: int | str | None):
        self.run_dir, self.steps, self.seconds = run_dir, None, None
        if isinstance(every, str):
            self.seconds = 60 * float(every.removesuffix("min"))
        elif every:
            self.steps = int(every)
        self.last = time.monotonic()

    def save(self, model, opt, state: TrainState, config: TrainConfig) -> None:
        if self.run_dir:
            save_checkpoint(model, opt, {**asdict(state), "config": asdict(config)}, self.run_dir)
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.steps:
            return step % self.steps == 0
        return self.seconds is not None and time.monotonic() - self.last >= self.seconds


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
    device = pick_device(device)
    dtype = autocast_dtype(device)
    scaler = grad_scaler(device, dtype)
    model.to(device)
    if config.compile:
        model.lm.get_base_model().transformer.compile()  # in place; LoRA layers are inside
    opt = make_optimizer(model, config)
    run_dir = Path(run_dir) if run_dir else None
    state = TrainState(**{k: v for k, v in load_checkpoint(model, opt, run_dir).items() if k != "config"}) if resume else TrainState()
    checkpoints = Checkpointer(run_dir, checkpoint_every)
    batches = math.ceil(len(train_data.pairs) / config.batch_size)
    total_steps = math.ceil(batches / config.grad_accum) * config.epochs
    shared = uses_shared_prefix(train_data, config)
    try:
        for epoch in range(state.epoch, config.epochs):
            chunks = epoch_batches(train_data, config, epoch)
            if state.batch == 0:
                state.epoch_start_step = state.step
            model.train()
            bar = tqdm(range(state.batch, batches), desc=f"epoch {epoch + 1}/{config.epochs}",
                       disable=not progress, leave=False)  # fmt: skip
            for b in bar:
                with autocast(device, dtype):
                    loss, _ = batch_loss(model, chunks[b], train_data, device, shared)
                scaler.scale(loss / config.grad_accum).backward()
                if (b + 1) % config.grad_accum and b + 1 != batches:
                    continue  # accumulate; an interruption here redoes these batches on resume
                set_learning_rates(opt, config, state.step, total_steps)
                optimizer_step(model, opt, scaler, config.clip_norm)
                state.step, state.batch = state.step + 1, b + 1
                state.step_loss.append(loss.item())
                bar.set_postfix(loss=f"{state.step_loss[-1]:.3f}")
                if on_step:
                    on_step(state.step, state.step_loss[-1])
                if checkpoints.due(state.step) and b + 1 != batches:
                    checkpoints.save(model, opt, state, config)
            losses = state.step_loss[state.epoch_start_step :]
            record = {"epoch": epoch + 1, "step": state.step, "train_loss": sum(losses) / max(len(losses), 1)}
            if val_data is not None:
                record["val_loss"] = validation_loss(model, val_data, config, device, dtype)
            if on_epoch_end:
                on_epoch_end(epoch + 1, record)
            state.epochs.append(record)
            state.epoch, state.batch = epoch + 1, 0
            checkpoints.save(model, opt, state, config)
    except KeyboardInterrupt:
        if run_dir:
            checkpoints.save(model, opt, state, config)
            print(f"interrupted: checkpoint saved in {run_dir / CHECKPOINT}; continue with resume=True")
        raise
    model.eval()
    return state.history
