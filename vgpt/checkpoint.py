"""Checkpoints of a training run: the bridge, the optimizer and where the loop stood.

    run_dir/checkpoint/
      bridge/                  the bridge as `bridge.save_bridge` writes it
      optimizer.safetensors    AdamW's moments (tensors)
      optimizer.json           its param groups and step counts (the rest)
      trainer_state.json       epoch, batch, step, history, the TrainConfig

Written to a side folder and renamed into place, so a run killed at any
moment leaves the previous checkpoint or the new one, never half of one.
Nothing is pickled.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .errors import UserError
from .paths import swap_into_place

CHECKPOINT = "checkpoint"


def save_optimizer(opt: torch.optim.Optimizer, folder: Path) -> None:
    """Optimizer state as safetensors (tensors) + JSON (the rest)."""
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


def load_optimizer(opt: torch.optim.Optimizer, folder: Path) -> None:
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
    save_optimizer(opt, work)
    (work / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2))
    return swap_into_place(work, final)


def load_checkpoint(model, opt, run_dir: Path | None) -> dict:
    """Put a run's checkpoint back into `model` and `opt`; returns the trainer state it saved."""
    folder = run_dir / CHECKPOINT if run_dir else None
    if folder is None or not (folder / "trainer_state.json").is_file():
        raise UserError(f"nothing to resume: no checkpoint in {run_dir}")
    model.load_bridge_weights(folder / "bridge")
    load_optimizer(opt, folder)
    return json.loads((folder / "trainer_state.json").read_text())


class Checkpointer:
    """Writes checkpoints into `run_dir` (if any) every `every` steps (an int) or minutes ("10min")."""

    def __init__(self, run_dir: Path | None, every: int | str | None):
        self.run_dir, self.steps, self.seconds = run_dir, None, None
        if isinstance(every, str):
            self.seconds = 60 * float(every.removesuffix("min"))
        elif every:
            self.steps = int(every)
        self.last = time.monotonic()

    def save(self, model, opt, state, config) -> None:
        """A checkpoint of the loop's `state` (a dataclass) and its `config` (one too)."""
        if self.run_dir:
            save_checkpoint(model, opt, {**asdict(state), "config": asdict(config)}, self.run_dir)
        self.last = time.monotonic()

    def due(self, step: int) -> bool:
        if self.steps:
            return step % self.steps == 0
        return self.seconds is not None and time.monotonic() - self.last >= self.seconds


def finished_run(run_dir: str | Path | None, config) -> bool:
    """Does `run_dir` hold the checkpoint of a finished run of exactly this `TrainConfig`? Then
    `train(..., resume=True)` loads it and returns its history at once, without a step."""
    state = Path(run_dir) / CHECKPOINT / "trainer_state.json" if run_dir else None
    if state is None or not state.is_file():
        return False
    saved = json.loads(state.read_text())
    # a field added to the config since the run was saved counts as its default (the recipe then)
    saved_config = saved.get("config") and {**asdict(type(config)()), **saved["config"]}
    same_config = saved_config == json.loads(json.dumps(asdict(config)))  # as JSON stores it
    return same_config and saved.get("epoch") == config.epochs and saved.get("batch") == 0
