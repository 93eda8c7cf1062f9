"""Stage 06: train the bridge (projector + LoRA) from cached features; nothing else moves.

    for each epoch, in an order fixed by (seed, epoch), each image's captions kept together:
        for each batch:  factor = schedule(step)                      warmup + cosine, or constant
                         loss = train_step(opt, batch's loss, factor)  lr per group -> backward -> clip -> AdamW
        validation loss, the `on_epoch_end` hook, a checkpoint

`train` below is that loop, on one screen. What it stands on sits in `Run`, a few named lines away:
the device and mixed precision (`runtime.py`), the processes (one, or several under torchrun),
checkpoints every `checkpoint_every` steps or minutes and on an interruption (`resume=True` carries
on, mid-epoch included, with the same data order and schedule), the speed-ups (`speedups.py`).

`schedule` and `train_step` are the model's stages: notebook 06's exercises have their signatures,
so a learner's own can drive the loop.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .bridge import CHECKPOINT, Checkpointer, load_checkpoint
from .config import TrainConfig
from .prefix import tokenize_captions
from .runtime import ONE_PROCESS, autocast, autocast_dtype, grad_scaler, pick_device, progress
from .speedups import fuse_gelu, group_by_image


@dataclass
class CaptionData:
    """Pairs of (image id, caption) and where their features come from."""

    pairs: Sequence[tuple[str, str]]
    features: Callable[[list[str]], torch.Tensor]  # image ids -> (B, N, Dv)


# ------------------------------------------------------------- the schedule and one step


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """The learning-rate factor at optimizer step `step` (0-based) of `total`: linear warmup,
    (step + 1) / warmup, then cosine decay from 1 to 0."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def constant(step: int, total: int, warmup: int) -> float:
    """The seed recipe's schedule: the base learning rate at every step."""
    return 1.0


def train_step(opt, loss_fn, factor: float, clip_norm: float) -> float:
    """One optimizer step: each group's lr = its base_lr x `factor`, backward, clip the gradient norm
    of all the parameters together, step, clear the gradients. Returns the loss as a float."""
    for group in opt.param_groups:
        group["lr"] = group["base_lr"] * factor
    loss = loss_fn()
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], clip_norm)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def scaled_train_step(scaler) -> Callable:
    """`train_step` under fp16 (a T4): the loss scaled before backward, the gradients unscaled before
    clipping, the step skipped where they overflowed."""

    def step(opt, loss_fn, factor: float, clip_norm: float) -> float:
        for group in opt.param_groups:
            group["lr"] = group["base_lr"] * factor
        loss = loss_fn()
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_([p for group in opt.param_groups for p in group["params"]], clip_norm)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return step


def make_optimizer(model, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the bridge only: two parameter groups, each carrying its own base learning rate."""
    groups = [
        {"name": "projector", "params": list(model.projector.parameters()), "base_lr": config.lr_projector},
        {"name": "lora", "params": [p for p in model.lm.parameters() if p.requires_grad], "base_lr": config.lr_lora},
    ]
    for group in groups:
        group["lr"] = group["base_lr"]
    return torch.optim.AdamW(groups, weight_decay=config.weight_decay)


# ------------------------------------------------------------- data order


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of one epoch: fixed by (seed, epoch), so a resumed run sees the same."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()


def has_groups(data: CaptionData) -> bool:
    """Does some image have several captions?"""
    return len({image for image, _ in data.pairs}) < len(data.pairs)


def caption_order(pairs: Sequence[tuple[str, str]], seed: int, epoch: int, grouped: bool) -> list[int]:
    """The epoch's order of pairs. Grouped: images shuffled, each image's captions kept together, so
    that a batch holds few images and their prefixes can be shared."""
    if not grouped:
        return epoch_order(len(pairs), seed, epoch)
    groups: dict[str, list[int]] = {}
    for i, (image, _) in enumerate(pairs):
        groups.setdefault(image, []).append(i)
    lists = list(groups.values())
    return [i for g in epoch_order(len(lists), seed, epoch) for i in lists[g]]


def epoch_batches(data: CaptionData, config: TrainConfig, epoch: int) -> list[list[tuple[str, str]]]:
    """The batches of (image id, caption) pairs `train` visits in `epoch`, in its order (the last one
    may be short). Notebook 06 takes one of them to repeat a step by hand."""
    order, size = caption_order(data.pairs, config.seed, epoch, has_groups(data)), config.batch_size
    return [[data.pairs[i] for i in order[start : start + size]] for start in range(0, len(order), size)]


def batch_inputs(model, batch: Sequence[tuple[str, str]], data: CaptionData, device) -> dict:
    """A batch of (image id, caption) pairs as the model's forward takes it: caption ids and mask
    (B, T), the features of its I distinct images (I, N, Dv), each caption's image (B,)."""
    ids, mask = tokenize_captions(model.tokenizer, [c for _, c in batch], model.spec.max_caption_tokens)
    images, owner = group_by_image([i for i, _ in batch])
    return dict(
        input_ids=ids.to(device),
        text_mask=mask.to(device),
        features=data.features(images).to(device),
        owner=owner.to(device),
    )


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


def train(model, train_data: CaptionData, config: TrainConfig, val_data: CaptionData | None = None,
          run_dir: str | Path | None = None, resume: bool = False, device: str | None = None,
          on_epoch_end: Callable[[int, dict], None] | None = None,
          on_step: Callable[[int, float], None] | None = None, progress: bool = True,
          checkpoint_every: int | str | None = "10min", world=ONE_PROCESS) -> dict:  # fmt: skip
    """Train the bridge. Returns the history: per-step losses and per-epoch records.

    `on_epoch_end(epoch, record)` may add entries to the record (caption metrics, say);
    `on_step(step, loss)` is called after each optimizer step. `checkpoint_every`: steps (int) or
    minutes ("10min") between mid-epoch checkpoints in `run_dir`; a disconnect then loses at most that.
    `world`: the processes taking part (`scale.distributed.Torchrun` under torchrun).
    """
    run = Run(model, train_data, config, device, run_dir, checkpoint_every, progress, world)
    schedule = model.stages.get("schedule", warmup_cosine if config.schedule == "warmup_cosine" else constant)
    step = run.train_step()  # the model's stage; fp16 adds loss scaling around the package's own
    state = run.resume() if resume else TrainState()
    try:
        for epoch in range(state.epoch, config.epochs):
            model.train()
            for batch in run.batches(state, epoch):  # from where a resumed run stood
                factor = schedule(state.step, run.total_steps, config.warmup_steps)
                loss = step(run.opt, run.loss_fn(batch), factor, config.clip_norm)
                run.after_step(state, loss, on_step)  # the history, the bar, a mid-epoch checkpoint
            run.end_epoch(state, epoch, val_data, on_epoch_end)  # validation, the hook, a checkpoint
    except KeyboardInterrupt:
        run.interrupted(state)
        raise
    model.eval()
    return state.history


class Run:
    """One training run's moving parts: device and precision, the processes, the optimizer, the
    speed-ups, the data's batches, the checkpoints and the progress bar."""

    def __init__(
        self, model, data: CaptionData, config: TrainConfig, device, run_dir, checkpoint_every, progress, world
    ):
        self.model, self.data, self.config, self.world = model, data, config, world
        self.device = world.device(pick_device(device))
        self.dtype = autocast_dtype(self.device)
        self.scaler = grad_scaler(self.device, self.dtype)
        model.to(self.device)
        if config.compile:
            model.gpt2.transformer.compile()  # in place; LoRA layers are inside
        self.shared, self.lean = speedups_for(model, data, config)
        if self.lean:
            fuse_gelu(model.lm)  # in place, and kept after training: the same function, one kernel
        self.net = world.wrap(model)  # what computes the loss (DDP around the model, under torchrun)
        self.opt = make_optimizer(model, config)
        self.run_dir = Path(run_dir) if run_dir else None
        self.checkpoints = Checkpointer(self.run_dir if world.is_main else None, checkpoint_every)
        self.progress = progress and world.is_main
        self.batches_per_epoch = math.ceil(len(data.pairs) / config.batch_size)
        self.total_steps = math.ceil(self.batches_per_epoch / config.grad_accum) * config.epochs
        self.bar = None

    def train_step(self) -> Callable:
        if not self.scaler.is_enabled():
            return self.model.stages.get("train_step", train_step)
        if "train_step" in self.model.stages:
            raise ValueError("fp16 training needs loss scaling, which the package's train_step does: use bf16 or fp32")
        return scaled_train_step(self.scaler)

    def resume(self) -> TrainState:
        saved = load_checkpoint(self.model, self.opt, self.run_dir)
        return TrainState(**{k: v for k, v in saved.items() if k != "config"})

    def batches(self, state: TrainState, epoch: int):
        """The epoch's optimizer steps, from where `state` stands: each a list of `grad_accum` batches."""
        if state.batch == 0:
            state.epoch_start_step = state.step
        chunks, accum = epoch_batches(self.data, self.config, epoch), self.config.grad_accum
        steps = [chunks[start : start + accum] for start in range(state.batch, len(chunks), accum)]
        self.bar = progress(
            steps, desc=f"epoch {epoch + 1}/{self.config.epochs}", disable=not self.progress, leave=False
        )
        return self.bar

    def loss_fn(self, step_batches: list) -> Callable[[], torch.Tensor]:
        """The step's loss as `train_step` calls it. Its value is the mean over the step's batches (and
        processes); the micro-batches but the last are backpropagated inside, so the returned tensor
        carries the gradient of the last one only, and the gradients add up to the whole step's."""

        def loss() -> torch.Tensor:
            value, last = 0.0, None
            for k, batch in enumerate(step_batches):
                part, real = self.world.shard(batch)  # all of it, in one process
                inputs = batch_inputs(self.model, part, self.data, self.device)
                ending = k + 1 == len(step_batches)
                sync = contextlib.nullcontext() if ending else self.world.no_sync(self.net)  # DDP: average at the end
                with sync, autocast(self.device, self.dtype):
                    local = self.net(**inputs, shared_prefix=self.shared, lean=self.lean).loss
                scale, mean = self.world.global_batch(local, int(inputs["text_mask"].sum()), real)
                share, value = local * (scale if real else 0.0) / len(step_batches), value + mean / len(step_batches)
                if not ending:
                    self.scaler.scale(share).backward()  # accumulated; the step's train_step runs the last
                else:
                    last = share
            return last + (value - last.detach())  # the step's mean loss; the last batch's gradient

        return loss

    def after_step(self, state: TrainState, loss: float, on_step) -> None:
        state.step, state.batch = state.step + 1, min(state.batch + self.config.grad_accum, self.batches_per_epoch)
        state.step_loss.append(loss)
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)  # shown at the next redraw
        if on_step:
            on_step(state.step, loss)
        if self.checkpoints.due(state.step) and state.batch != self.batches_per_epoch:
            self.save(state)

    def end_epoch(self, state: TrainState, epoch: int, val_data, on_epoch_end) -> None:
        """The epoch's record (mean train loss, validation loss, the hook's entries), then a checkpoint."""
        losses = state.step_loss[state.epoch_start_step :]
        record = {"epoch": epoch + 1, "step": state.step, "train_loss": sum(losses) / max(len(losses), 1)}
        if self.world.is_main:
            if val_data is not None:
                record["val_loss"] = validation_loss(self.model, val_data, self.config, self.device, self.dtype)
            if on_epoch_end:
                on_epoch_end(epoch + 1, record)
        state.epochs.append(record)
        state.epoch, state.batch = epoch + 1, 0
        self.save(state)

    def save(self, state: TrainState) -> None:
        self.checkpoints.save(self.model, self.opt, state, self.config)

    def interrupted(self, state: TrainState) -> None:
        if self.run_dir and self.world.is_main:
            self.save(state)
            print(f"interrupted: checkpoint saved in {self.run_dir / CHECKPOINT}; continue with resume=True")


def speedups_for(model, data: CaptionData, config: TrainConfig) -> tuple[bool, bool]:
    """(shared prefix, lean forward) for this model, data and config. Both use the package's own prefix
    and mask stages, so neither is taken where a learner's stands in, or with a prefix-LM mask."""
    if {"prefix_inputs", "attention_bias", "position_ids"} & set(model.stages) or model.spec.attention != "causal":
        return False, False
    return (has_groups(data) if config.shared_prefix is None else config.shared_prefix), config.lean_forward


@torch.no_grad()
def validation_loss(model, data: CaptionData, config: TrainConfig, device, dtype) -> float:
    """Mean loss per caption token over the whole of `data`, in a fixed order."""
    model.eval()
    shared, lean = speedups_for(model, data, config)
    pairs = [data.pairs[i] for i in caption_order(data.pairs, 0, 0, has_groups(data))]
    total, count, size = 0.0, 0, config.batch_size * 4
    for start in range(0, len(pairs), size):
        inputs = batch_inputs(model, pairs[start : start + size], data, device)
        with autocast(device, dtype):
            loss = model(**inputs, shared_prefix=shared, lean=lean).loss
        tokens = int(inputs["text_mask"].sum())
        total, count = total + float(loss) * tokens, count + tokens
    return total / max(count, 1)
