"""The bridge on disk, shared the way the Hugging Face Hub shares models, and training checkpoints.

    bridge/
      bridge.json                 the profile's name and the ModelSpec: frozen models, fingerprint, shapes
      projector.safetensors       the projector's weights
      adapter_model.safetensors   the LoRA weights, in peft's format (a hand-written LoRA is saved so too)
      adapter_config.json
      README.md                   the model card: the Hub's YAML metadata, the recipe, metrics, limits

    run/checkpoint/
      bridge/                     as above
      optimizer.safetensors       AdamW's moments (tensors); optimizer.json the rest
      trainer_state.json          epoch, batch, step, history, the TrainConfig

A bridge is a few MB on `seed` against the 1.7 GB of the models it connects. Loading checks that the
frozen models are the ones it was trained for (widths, vocabulary, a fingerprint of the vision
tower's weights) and refuses others with the reason. Everything is written aside and renamed into
place; nothing is pickled.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .config import PROFILES, REPO_ROOT, ModelSpec, UserError
from .features import tower_fingerprint
from .files import new_folder, repo_relative
from .loading import load_profile
from .lora import lora_config

BRIDGE_CONFIG, PROJECTOR_FILE, ADAPTER_FILE, ADAPTER_CONFIG = (
    "bridge.json",
    "projector.safetensors",
    "adapter_model.safetensors",
    "adapter_config.json",
)
CHECKPOINT = "checkpoint"
LICENSE = "mit"  # vgpt's; the frozen models keep their own
CARD_TEMPLATE = Path(__file__).with_name("model_card.md")


class BridgeMismatch(UserError):
    """A saved bridge does not fit the models it is being loaded into, or is not a bridge."""


# ------------------------------------------------------------------ the bridge


def spec_json(name: str, spec: ModelSpec) -> str:
    model = asdict(spec)
    for key in ("vision_model", "language_model"):
        model[key] = repo_relative(model[key])
    return json.dumps({"profile": name, "model": model, "vgpt_version": __version__}, indent=2) + "\n"


def read_config(folder: Path) -> tuple[str, ModelSpec]:
    """(profile name, ModelSpec) of a saved bridge, after checking that every file of one is there."""
    for name in (BRIDGE_CONFIG, PROJECTOR_FILE, ADAPTER_FILE, ADAPTER_CONFIG):
        if not (folder / name).is_file():
            raise BridgeMismatch(f"{folder}: not a vgpt bridge ({name} missing)")
    try:
        data = json.loads((folder / BRIDGE_CONFIG).read_text())
        model = dict(data["model"], lora_targets=tuple(data["model"]["lora_targets"]))
        if isinstance(features := model.pop("features", None), dict):  # bridges saved before the spec was flat
            model.update(
                feature_layer=features["layer"], keep_cls=features["keep_cls"], feature_layernorm=features["layernorm"]
            )
        for key in ("vision_model", "language_model"):  # saved relative to the repository when inside it
            if not Path(model[key]).is_absolute() and (REPO_ROOT / model[key]).exists():
                model[key] = str(REPO_ROOT / model[key])
        model.setdefault("vision_fingerprint", data.get("vision_fingerprint"))
        model.setdefault("vocab_size", data.get("vocab_size"))
        return data["profile"], ModelSpec(**model)
    except (ValueError, KeyError, TypeError) as err:
        raise BridgeMismatch(f"{folder / BRIDGE_CONFIG}: not a bridge config of this vgpt version ({err!r})") from err


def adapter_state(model) -> dict[str, torch.Tensor]:
    """The LoRA weights under peft's names, from peft or from a hand-written LoRA (`lora_A`, `lora_B`)."""
    if model.hand_lora is None:
        return get_peft_model_state_dict(model.lm, save_embedding_layers=False)
    return {
        f"base_model.model.{path}.{ab}.weight": getattr(layer, ab).detach()
        for path, layer in model.hand_lora.items()
        for ab in ("lora_A", "lora_B")
    }


def save_bridge(model, folder: str | Path, card: dict | None = None) -> Path:
    """Write projector + LoRA adapter + bridge.json + the model card; the folder appears whole or not at all."""
    spec = model.spec
    with new_folder(folder) as work:
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in model.projector.state_dict().items()}, work / PROJECTOR_FILE
        )
        save_file({k: v.cpu().contiguous() for k, v in adapter_state(model).items()}, work / ADAPTER_FILE)
        adapter = lora_config(spec.lora_r, spec.lora_alpha, spec.lora_targets, spec.lora_dropout).to_dict()
        adapter.update(
            base_model_name_or_path=repo_relative(spec.language_model), target_modules=list(spec.lora_targets)
        )
        (work / ADAPTER_CONFIG).write_text(json.dumps(adapter, indent=2, default=list) + "\n")
        (work / BRIDGE_CONFIG).write_text(spec_json(model.profile.name, spec))
        (work / "README.md").write_text(model_card(model.profile.name, spec, card or {}))
    return Path(folder)


def load_weights(model, folder: Path) -> None:
    """Read a saved bridge's projector and adapter into `model`."""
    try:
        model.projector.load_state_dict(load_file(folder / PROJECTOR_FILE))
        adapter = load_file(folder / ADAPTER_FILE)
    except (SafetensorError, OSError) as err:
        raise BridgeMismatch(f"{folder}: cannot read weights ({err})") from err
    except RuntimeError as err:  # wrong shapes
        raise BridgeMismatch(f"{folder}: projector does not fit: {err}") from err
    if model.hand_lora is not None:
        mine = adapter_state(model)
        if set(mine) != set(adapter) or any(mine[k].shape != adapter[k].shape for k in mine):
            raise BridgeMismatch(f"{folder}: adapter does not fit the model's LoRA layers")
        with torch.no_grad():
            for key, tensor in mine.items():
                tensor.copy_(adapter[key])
        return
    result = set_peft_model_state_dict(model.lm, adapter)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise BridgeMismatch(
            f"{folder}: adapter does not fit the model (missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})"
        )


def check_fits(spec: ModelSpec, vision, lm, folder: Path) -> None:
    """Refuse frozen models of another width, vocabulary or vision tower, saying which."""
    if hasattr(lm, "peft_config"):
        raise BridgeMismatch("the language model already carries adapters; load a fresh one with load_profile")
    checks = [
        ("text width", spec.text_width, lm.config.n_embd),
        ("vocabulary size", spec.vocab_size, lm.config.vocab_size),
        ("vision width", spec.vision_width, vision.config.hidden_size),
        ("vision tower", spec.vision_fingerprint, tower_fingerprint(vision)),
    ]
    for what, saved, here in checks:
        if saved != here:
            raise BridgeMismatch(
                f"{folder}: bridge was trained for {what} {saved} ({spec.vision_model} + "
                f"{spec.language_model}), but the loaded frozen models have {here}"
            )


def local_folder(source: str | Path) -> Path:
    """A bridge folder here, or the snapshot of a Hub model repo `owner/name` (downloaded once)."""
    if Path(source).is_dir():
        return Path(source)
    if Path(source).exists() or str(source).count("/") != 1:
        raise BridgeMismatch(f"{source}: not a bridge folder, nor a Hugging Face Hub id (owner/name)")
    try:
        return Path(snapshot_download(str(source), repo_type="model"))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        raise BridgeMismatch(
            f"{source}: cannot fetch this bridge from the Hugging Face Hub ({err.__class__.__name__})"
        ) from err


def load_frozen(name: str, spec: ModelSpec, folder: Path):
    """The frozen models of the profile a bridge names."""
    if name not in PROFILES:
        raise BridgeMismatch(f"{folder / BRIDGE_CONFIG}: unknown profile {name!r}; pass the frozen models as parts")
    return load_profile(PROFILES[name], verbose=False)


# ------------------------------------------------------------------ sharing


def model_card(name: str, spec: ModelSpec, card: dict) -> str:
    """README.md with the Hub's YAML metadata (base models, dataset, this run's metrics, license) and
    the text of `model_card.md`: what the bridge is, its metrics, recipe, limitations, how to load it."""
    data, metrics, title = card.get("data"), card.get("metrics", {}), card.get("title", f"vgpt bridge ({name})")
    scored = [(split, key, value) for split, scores in metrics.items() for key, value in scores.items()]
    dataset = dict(dataset_type=data or "shapes-world", dataset_name=data or "Shapes World")
    results = [EvalResult(task_type="image-to-text", **dataset, dataset_split=split, metric_type=key.lower(),
                          metric_value=round(float(value), 4), metric_name=key)
               for split, key, value in scored]  # fmt: skip
    on_hub = name in PROFILES and PROFILES[name].needs_hub
    meta = ModelCardData(license=LICENSE, pipeline_tag="image-to-text", tags=["vgpt", "image-captioning", "lora"],
                         base_model=[spec.vision_model, spec.language_model] if on_hub else None,
                         datasets=[data] if data and "/" in data and not Path(data).exists() else None,
                         model_name=title, eval_results=results or None)  # fmt: skip
    recipe = card.get("recipe") or {}
    recipe = recipe if isinstance(recipe, dict) else asdict(recipe)
    table = ["| split | metric | value |", "|---|---|---|", *(f"| {s} | {k} | {v:.4g} |" for s, k, v in scored)]
    text = CARD_TEMPLATE.read_text().format(
        meta=meta.to_yaml(), title=title, spec=spec, name=name, version=__version__,
        data=data or "Shapes World, generated by vgpt",
        vision=repo_relative(spec.vision_model), language=repo_relative(spec.language_model),
        targets=", ".join(spec.lora_targets), metrics="\n".join(table) if scored else "Not scored.",
        recipe="\n".join(f"- {k}: {v}" for k, v in recipe.items()) or "Not recorded.",
        notes="".join(f"- {note}\n" for note in card.get("notes", [])), source=card.get("repo_id", "FOLDER_OR_HUB_ID"),
    )  # fmt: skip
    return str(ModelCard(text))


def push_to_hub(model, repo_id: str, card: dict | None = None, api=None, private: bool = False) -> str:
    """Create the model repo (if missing), save the bridge with its card, upload the folder."""
    api = api or HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_bridge(model, Path(tmp) / "bridge", {**(card or {}), "repo_id": repo_id})
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(folder),
            commit_message=f"vgpt bridge ({model.profile.name})",
        )
    return str(getattr(info, "commit_url", info))


# ------------------------------------------------------------------ checkpoints


def save_optimizer(opt: torch.optim.Optimizer, folder: Path) -> None:
    """Optimizer state as safetensors (tensors) + JSON (the rest)."""
    tensors, scalars = {}, {}
    state = opt.state_dict()
    for index, values in state["state"].items():
        for key, value in values.items():
            (tensors if torch.is_tensor(value) else scalars)[f"{index}.{key}"] = (
                value.detach().cpu().contiguous() if torch.is_tensor(value) else value
            )
    save_file(tensors, folder / "optimizer.safetensors")
    (folder / "optimizer.json").write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars}))


def load_optimizer(opt: torch.optim.Optimizer, folder: Path) -> None:
    meta = json.loads((folder / "optimizer.json").read_text())
    state: dict[int, dict] = {}
    for name, value in [*load_file(folder / "optimizer.safetensors").items(), *meta["scalars"].items()]:
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(model, opt, trainer_state: dict, run_dir: Path) -> Path:
    """Bridge + optimizer + trainer state, in `run_dir/checkpoint`, whole or not at all."""
    with new_folder(Path(run_dir) / CHECKPOINT) as work:
        save_bridge(model, work / "bridge")
        save_optimizer(opt, work)
        (work / "trainer_state.json").write_text(json.dumps(trainer_state, indent=2))
    return Path(run_dir) / CHECKPOINT


def load_checkpoint(model, opt, run_dir: Path | None) -> dict:
    """Put a run's checkpoint back into `model` and `opt`; returns the trainer state it saved."""
    folder = Path(run_dir) / CHECKPOINT if run_dir else None
    if folder is None or not (folder / "trainer_state.json").is_file():
        raise UserError(f"nothing to resume: no checkpoint in {run_dir}")
    load_weights(model, folder / "bridge")
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
        """A checkpoint of the loop's `state` and its `config` (two dataclasses)."""
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
