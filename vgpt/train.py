"""Stage 06: train the bridge (projector + LoRA) from cached features; nothing else moves.

One loop for CPU, CUDA and MPS: mixed precision where the device has it,
gradient accumulation and clipping, warmup + cosine learning rate with
separate rates for the projector and LoRA, a validation loss each epoch, a
progress bar, and a history to plot. A checkpoint (the bridge, the optimizer
and the position in the data) is written atomically at the end of each epoch
and when training is interrupted; `resume=True` carries on from it with the
same data order and schedule.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .device import autocast, autocast_dtype, grad_scaler, pick_device
from .files import swap_into_place
from .prefix import tokenize_captions
from .schedule import warmup_cosine
from .shared_prefix import caption_forward, group_by_image

CHECKPOINT = "checkpoint"


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 8
    lr_projector: float = 2e-4
    lr_lora: float = 2e-4
    weight_decay: float = 0.0
    schedule: str = "warmup_cosine"  # or "constant"
    warmup_steps: int = 100
    grad_accum: int = 1  # optimizer step every `grad_accum` batches
    clip_norm: float = 1.0
    max_caption_tokens: int = 40
    seed: int = 0
    # one prefix pass per image for all its captions in a batch (see shared_prefix.py);
    # None: on when some image has several captions
    shared_prefix: bool | None = None
    # torch.compile GPT-2's transformer body: faster steps on a GPU after a compile of a minute
    # or so; recompiles for new caption lengths, so it pays off on long runs only
    compile: bool = False

    def __post_init__(self):
        if self.schedule not in ("constant", "warmup_cosine"):
            raise ValueError(f"schedule must be 'constant' or 'warmup_cosine', not {self.schedule!r}")

    @classmethod
    def from_profile(cls, profile, **changes) -> "TrainConfig":
        base = cls(epochs=profile.epochs, batch_size=profile.batch_size, lr_projector=profile.lr_projector,
                   lr_lora=profile.lr, schedule=profile.schedule, warmup_steps=profile.warmup_steps,
                   max_caption_tokens=profile.max_caption_tokens)
        return cls(**{**asdict(base), **changes})


@dataclass
class CaptionData:
    """Pairs of (image id, caption) and where their features come from."""
    pairs: Sequence[tuple[str, str]]
    features: Callable[[list[str]], torch.Tensor]  # image ids -> (B, N, Dv)


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


def has_groups(data: CaptionData) -> bool:
    """Does some image have several captions?"""
    return len({image for image, _ in data.pairs}) < len(data.pairs)


def uses_shared_prefix(data: CaptionData, config: TrainConfig) -> bool:
    return has_groups(data) if config.shared_prefix is None else config.shared_prefix


def batch_loss(model, chunk: Sequence[tuple[str, str]], data: CaptionData, config: TrainConfig, device,
               shared: bool) -> tuple[torch.Tensor, int]:
    """Mean loss over the caption tokens (and end-of-text) of a batch of (image id, caption) pairs,
    and how many tokens that is."""
    ids, mask = tokenize_captions(model.tokenizer, [c for _, c in chunk], config.max_caption_tokens)
    images, owner = group_by_image([i for i, _ in chunk])
    out = caption_forward(model, ids.to(device), mask.to(device), owner, data.features(images).to(device), shared)
    return out.loss, int(mask.sum())


def _optimizer_groups(model, config: TrainConfig) -> list[dict]:
    lora = [p for n, p in model.lm.named_parameters() if p.requires_grad]
    return [{"params": list(model.projector.parameters()), "lr": config.lr_projector, "name": "projector"},
            {"params": lora, "lr": config.lr_lora, "name": "lora"}]


def _save_optimizer(opt: torch.optim.Optimizer, folder: Path) -> None:
    """Optimizer state as safetensors (tensors) + JSON (the rest): nothing pickled."""
    state = opt.state_dict()
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{key}"] = value
    save_file(tensors, folder / "optimizer.safetensors")
    (folder / "optimizer.json").write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars}))


def _load_optimizer(opt: torch.optim.Optimizer, folder: Path) -> None:
    meta = json.loads((folder / "optimizer.json").read_text())
    state: dict[int, dict] = {}
    for name, tensor in load_file(folder / "optimizer.safetensors").items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    for name, value in meta["scalars"].items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(model, opt, trainer_state: dict, run_dir: Path) -> Path:
    """Bridge + optimizer + trainer state, written to a side folder then renamed into place."""
    final = run_dir / CHECKPOINT
    work = run_dir / (CHECKPOINT + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    model.save_bridge(work / "bridge")
    _save_optimizer(opt, work)
    (work / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2))
    return swap_into_place(work, final)


@torch.no_grad()
def validation_loss(model, data: CaptionData, config: TrainConfig, device, dtype) -> float:
    model.eval()
    total, count = 0.0, 0
    shared = uses_shared_prefix(data, config)
    pairs = [data.pairs[i] for i in caption_order(data.pairs, 0, 0, has_groups(data))]
    for start in range(0, len(pairs), config.batch_size * 4):
        chunk = pairs[start:start + config.batch_size * 4]
        with autocast(device, dtype):
            loss, tokens = batch_loss(model, chunk, data, config, device, shared)
        total, count = total + float(loss) * tokens, count + tokens
    return total / max(count, 1)


def train(model, train_data: CaptionData, config: TrainConfig, val_data: CaptionData | None = None,
          run_dir: str | Path | None = None, resume: bool = False, device: str | None = None,
          on_epoch_end: Callable[[int, dict], None] | None = None,
          on_step: Callable[[int, float], None] | None = None, progress: bool = True) -> dict:
    """Train the bridge. Returns the history: per-step losses and per-epoch records.

    `on_epoch_end(epoch, record)` may add entries to the record (caption
    metrics, say); `on_step(step, loss)` is called after each optimizer step.
    """
    device = pick_device(device)
    dtype = autocast_dtype(device)
    scaler = grad_scaler(device, dtype)
    model.to(device)
    if config.compile:
        model.lm.get_base_model().transformer.compile()  # in place; LoRA layers are inside
    opt = torch.optim.AdamW(_optimizer_groups(model, config), weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_data.pairs) // (config.batch_size * config.grad_accum))
    total_steps = steps_per_epoch * config.epochs
    run_dir = Path(run_dir) if run_dir else None
    state = {"epoch": 0, "batch": 0, "step": 0, "epoch_start_step": 0, "history": {"step_loss": [], "epochs": []},
             "config": asdict(config)}
    if resume:
        folder = run_dir / CHECKPOINT if run_dir else None
        if folder is None or not (folder / "trainer_state.json").is_file():
            raise FileNotFoundError(f"nothing to resume: no checkpoint in {run_dir}")
        state = json.loads((folder / "trainer_state.json").read_text())
        model.load_bridge_weights(folder / "bridge")
        _load_optimizer(opt, folder)
    history = state["history"]
    batches = -(-len(train_data.pairs) // config.batch_size)
    shared = uses_shared_prefix(train_data, config)
    try:
        for epoch in range(state["epoch"], config.epochs):
            order = caption_order(train_data.pairs, config.seed, epoch, has_groups(train_data))
            if state["batch"] == 0:
                state["epoch_start_step"] = state["step"]
            model.train()
            bar = tqdm(range(state["batch"], batches), desc=f"epoch {epoch + 1}/{config.epochs}",
                       disable=not progress, leave=False)
            for b in bar:
                chunk = [train_data.pairs[i] for i in order[b * config.batch_size:(b + 1) * config.batch_size]]
                with autocast(device, dtype):
                    loss, _ = batch_loss(model, chunk, train_data, config, device, shared)
                scaler.scale(loss / config.grad_accum).backward()
                if (b + 1) % config.grad_accum and b + 1 != batches:
                    continue  # accumulate; an interruption here redoes these batches on resume
                factor = (warmup_cosine(state["step"], total_steps, config.warmup_steps)
                          if config.schedule == "warmup_cosine" else 1.0)
                for group, base in zip(opt.param_groups, (config.lr_projector, config.lr_lora)):
                    group["lr"] = base * factor
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.trainable_parameters(), config.clip_norm)
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                state["step"], state["batch"] = state["step"] + 1, b + 1
                value = loss.item()
                history["step_loss"].append(value)
                bar.set_postfix(loss=f"{value:.3f}")
                if on_step:
                    on_step(state["step"], value)
            losses = history["step_loss"][state["epoch_start_step"]:]
            record = {"epoch": epoch + 1, "step": state["step"], "train_loss": sum(losses) / max(len(losses), 1)}
            if val_data is not None:
                record["val_loss"] = validation_loss(model, val_data, config, device, dtype)
            if on_epoch_end:
                on_epoch_end(epoch + 1, record)
            history["epochs"].append(record)
            state["epoch"], state["batch"] = epoch + 1, 0
            if run_dir:
                save_checkpoint(model, opt, state, run_dir)
    except KeyboardInterrupt:
        if run_dir:
            save_checkpoint(model, opt, state, run_dir)
            print(f"interrupted: checkpoint saved in {run_dir / CHECKPOINT}; continue with resume=True")
        raise
    model.eval()
    return history
