"""The bridge on disk: what trains (projector + LoRA adapter), and the config that names its base models.

    bridge/
      bridge.json                 BridgeConfig: profile, ModelSpec, vision tower fingerprint, vocabulary
      projector.safetensors       the projector's weights
      adapter_model.safetensors   the LoRA weights (peft's format)
      adapter_config.json

A bridge is a few MB on `seed` against the 1.7 GB of the models it connects,
so a checkpoint holds the bridge only. Loading checks that the base models
are the ones it was trained for (widths, vocabulary, and a fingerprint of the
vision tower's weights) and refuses others with the reason.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from safetensors.torch import load_file, save_file

from . import __version__
from .errors import UserError
from .features import tower_fingerprint
from .paths import repo_relative, swap_into_place
from .profiles import FeatureSpec, ModelSpec, Profile

BRIDGE_CONFIG = "bridge.json"
PROJECTOR_FILE = "projector.safetensors"
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


class BridgeMismatch(UserError):
    """A saved bridge does not fit the base models it is being loaded into, or is not a bridge."""


@dataclass(frozen=True)
class BridgeConfig:
    profile: str  # the profile it was trained on
    model: ModelSpec  # widths as the loaded models have them
    vision_fingerprint: str  # architecture + a hash of the tower's weights (features.tower_fingerprint)
    vocab_size: int
    vgpt_version: str = __version__

    @classmethod
    def for_models(cls, profile: Profile, vision, lm) -> BridgeConfig:
        """The profile's model spec, with the widths read off the models actually loaded."""
        spec = replace(profile.model, vision_width=vision.config.hidden_size, text_width=lm.config.n_embd)
        return cls(profile.name, spec, tower_fingerprint(vision), lm.config.vocab_size)

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("vision_model", "language_model"):
            data["model"][key] = repo_relative(data["model"][key])
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: Path) -> BridgeConfig:
        try:
            data = json.loads(text)
            model = dict(data["model"], features=FeatureSpec(**data["model"]["features"]))
            model["lora_targets"] = tuple(model["lora_targets"])
            return cls(data["profile"], ModelSpec(**model), data["vision_fingerprint"], data["vocab_size"],
                       data.get("vgpt_version", "?"))  # fmt: skip
        except (ValueError, KeyError, TypeError) as err:
            raise BridgeMismatch(f"{where}: not a bridge config of this vgpt version ({err!r})") from err


def save_bridge(model, folder: str | Path) -> Path:
    """Write projector + LoRA adapter + bridge.json; the folder appears whole or not at all."""
    folder = Path(folder)
    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.projector.state_dict().items()}
    save_file(weights, work / PROJECTOR_FILE)
    # the adapter only: never a copy of the frozen embeddings, even with LoRA on lm_head
    model.lm.save_pretrained(work, safe_serialization=True, save_embedding_layers=False)
    (work / "README.md").unlink(missing_ok=True)  # peft's model-card template: nothing of ours in it
    adapter = json.loads((work / "adapter_config.json").read_text())
    adapter["base_model_name_or_path"] = repo_relative(adapter.get("base_model_name_or_path"))
    (work / "adapter_config.json").write_text(json.dumps(adapter, indent=2) + "\n")
    (work / BRIDGE_CONFIG).write_text(model.config.to_json())
    return swap_into_place(work, folder)


def load_bridge_weights(model, folder: str | Path) -> None:
    """Read a saved bridge's projector and adapter into `model` (used to resume training too)."""
    from peft import set_peft_model_state_dict
    from safetensors import SafetensorError

    folder = Path(folder)
    try:
        model.projector.load_state_dict(load_file(folder / PROJECTOR_FILE))
        adapter = load_file(folder / "adapter_model.safetensors")
    except (SafetensorError, OSError) as err:
        raise BridgeMismatch(f"{folder}: cannot read weights ({err})") from err
    except RuntimeError as err:  # wrong shapes
        raise BridgeMismatch(f"{folder}: projector does not fit: {err}") from err
    result = set_peft_model_state_dict(model.lm, adapter)
    missing = [k for k in result.missing_keys if "lora_" in k]
    if missing or result.unexpected_keys:
        raise BridgeMismatch(
            f"{folder}: adapter does not fit the model (missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})"
        )


def read_bridge_config(folder: str | Path) -> BridgeConfig:
    """The config of a saved bridge, after checking that every file of one is there."""
    folder = Path(folder)
    for name in (BRIDGE_CONFIG, PROJECTOR_FILE, *ADAPTER_FILES):
        if not (folder / name).is_file():
            raise BridgeMismatch(f"{folder}: not a vgpt bridge ({name} missing)")
    return BridgeConfig.from_json((folder / BRIDGE_CONFIG).read_text(), folder / BRIDGE_CONFIG)


def check_fits(config: BridgeConfig, vision, lm, folder: Path) -> None:
    """Refuse base models of another width, vocabulary or vision tower, saying which."""
    if hasattr(lm, "peft_config"):
        raise BridgeMismatch("the language model already carries adapters; load a fresh one with load_profile")
    spec = config.model
    checks = [
        ("text width", spec.text_width, lm.config.n_embd),
        ("vocabulary size", config.vocab_size, lm.config.vocab_size),
        ("vision width", spec.vision_width, vision.config.hidden_size),
        ("vision tower", config.vision_fingerprint, tower_fingerprint(vision)),
    ]
    for what, saved, here in checks:
        if saved != here:
            raise BridgeMismatch(
                f"{folder}: bridge was trained for {what} {saved} "
                f"({spec.vision_model} + {spec.language_model}), but the loaded base models have {here}"
            )
