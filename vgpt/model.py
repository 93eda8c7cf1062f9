"""VisionGPT2: the stages composed, and save / load of the bridge.

    pixels --01 features--> (B, N, Dv) --02 projector--> (B, N, Dt)
        --03 prefix ++ caption embeddings--> (B, N + T, Dt) --04 joint mask-->
        --05 GPT-2 + LoRA--> logits (B, N + T, V), loss on caption tokens only

The vision tower and GPT-2's own weights stay frozen. What trains, the
*bridge*, is the projector and the LoRA adapters: a few MB on `seed` against
the 1.7 GB of the models it connects. So a checkpoint holds the bridge only,
with a config that names the base models it belongs to.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .features import FeatureSpec, extract_features, tower_fingerprint
from .files import swap_into_place
from .lora import count_parameters, inject_lora
from .masks import joint_attention_mask
from .prefix import caption_labels, concat_prefix
from .profiles import repo_relative
from .projector import build_projector, match_embedding_scale

BRIDGE_CONFIG = "bridge.json"
PROJECTOR_FILE = "projector.safetensors"


class BridgeMismatch(ValueError):
    """A saved bridge does not fit the base models it is being loaded into."""


@dataclass
class BridgeConfig:
    profile: str
    vision_model: str
    language_model: str
    vision_fingerprint: str
    vision_width: int
    text_width: int
    vocab_size: int
    visual_tokens: int
    feature_layer: int
    keep_cls: bool
    feature_layernorm: bool
    projector: str
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_targets: list[str]
    max_caption_tokens: int
    vgpt_version: str = __version__

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec(self.feature_layer, self.keep_cls, self.feature_layernorm)

    @classmethod
    def for_models(cls, profile, vision, lm) -> "BridgeConfig":
        return cls(profile=profile.name, vision_model=profile.vision_model,
                   language_model=profile.language_model, vision_fingerprint=tower_fingerprint(vision),
                   vision_width=vision.config.hidden_size, text_width=lm.config.n_embd,
                   vocab_size=lm.config.vocab_size, visual_tokens=profile.visual_tokens,
                   feature_layer=profile.feature_layer, keep_cls=profile.keep_cls,
                   feature_layernorm=profile.feature_layernorm, projector=profile.projector,
                   lora_r=profile.lora_r, lora_alpha=profile.lora_alpha, lora_dropout=profile.lora_dropout,
                   lora_targets=list(profile.lora_targets), max_caption_tokens=profile.max_caption_tokens)


class VisionGPT2(nn.Module):
    def __init__(self, vision: nn.Module, lm: nn.Module, config: BridgeConfig, tokenizer=None):
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.vision = vision.eval().requires_grad_(False)
        self.projector = build_projector(config.projector, config.vision_width, config.text_width)
        self.lm = inject_lora(lm.requires_grad_(False), config.lora_r, config.lora_alpha,
                              tuple(config.lora_targets), config.lora_dropout)

    @classmethod
    def from_parts(cls, parts, profile=None) -> "VisionGPT2":
        """From `profiles.load_profile(...)`'s components (the models are wrapped, not copied)."""
        profile = profile or parts.profile
        config = BridgeConfig.for_models(profile, parts.vision, parts.language_model)
        return cls(parts.vision, parts.language_model, config, parts.tokenizer)

    # ------------------------------------------------------------ stages

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Stage 01: (B, 3, H, W) -> (B, N, Dv), no gradients."""
        return extract_features(self.vision, pixel_values, self.config.feature_spec)

    def visual_prefix(self, features: torch.Tensor) -> torch.Tensor:
        """Stage 02: (B, N, Dv) -> (B, N, Dt)."""
        weight = next(self.projector.parameters())
        return self.projector(features.to(weight.device, weight.dtype))

    def prefix_for(self, pixel_values: torch.Tensor | None = None,
                   features: torch.Tensor | None = None) -> torch.Tensor:
        """Stages 01-02 together: (B, N, Dt) from pixels, or from cached features when given."""
        if features is None:
            if pixel_values is None:
                raise ValueError("give pixel_values or cached features")
            features = self.features(pixel_values)
        return self.visual_prefix(features)

    def calibrate_projector(self, features: torch.Tensor) -> float:
        """Scale the projector so that the prefix starts at the size of GPT-2's token embeddings."""
        table = self.lm.get_input_embeddings().weight
        return match_embedding_scale(self.projector, features.to(table.device), table)

    def token_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm.get_input_embeddings()(input_ids)

    def forward(self, input_ids: torch.Tensor, text_mask: torch.Tensor,
                pixel_values: torch.Tensor | None = None, features: torch.Tensor | None = None,
                with_loss: bool = True):
        """Captions (B, T) with their mask, and either pixels or cached features.

        Returns the language model's output: `.logits` (B, N + T, V) and, with
        `with_loss`, `.loss` over the caption tokens and their end-of-text.
        """
        prefix = self.prefix_for(pixel_values, features)  # (B, N, Dt)
        embeds = concat_prefix(prefix, self.token_embeddings(input_ids))  # (B, N + T, Dt)
        mask = joint_attention_mask(text_mask, prefix.shape[1])  # (B, N + T)
        labels = caption_labels(input_ids, text_mask, prefix.shape[1]) if with_loss else None
        return self.lm(inputs_embeds=embeds, attention_mask=mask, labels=labels)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_report(self) -> dict[str, int]:
        trainable, total = count_parameters(self)
        lora = sum(p.numel() for n, p in self.lm.named_parameters() if p.requires_grad)
        vision = sum(p.numel() for p in self.vision.parameters())
        return {"trainable": trainable, "total": total, "projector": trainable - lora, "lora": lora,
                "vision": vision, "language_model": total - trainable - vision}

    # ------------------------------------------------------- save / load

    def save_bridge(self, folder: str | Path) -> Path:
        """Write projector + LoRA adapter + bridge.json; the folder appears whole or not at all."""
        folder = Path(folder)
        work = folder.with_name(folder.name + ".partial")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.projector.state_dict().items()},
                  work / PROJECTOR_FILE)
        # the adapter only: never a copy of the frozen embeddings, even with LoRA on lm_head
        self.lm.save_pretrained(work, safe_serialization=True, save_embedding_layers=False)
        (work / "README.md").unlink(missing_ok=True)  # peft's model-card template: nothing of ours in it
        adapter = json.loads((work / "adapter_config.json").read_text())
        adapter["base_model_name_or_path"] = repo_relative(adapter.get("base_model_name_or_path"))
        (work / "adapter_config.json").write_text(json.dumps(adapter, indent=2) + "\n")
        config = asdict(self.config)
        config.update(vision_model=repo_relative(config["vision_model"]), language_model=repo_relative(config["language_model"]))
        (work / BRIDGE_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
        return swap_into_place(work, folder)

    def load_bridge_weights(self, folder: str | Path) -> None:
        """Read a saved bridge's projector and adapter into this model (used to resume training)."""
        from peft import set_peft_model_state_dict
        from safetensors import SafetensorError

        folder = Path(folder)
        try:
            self.projector.load_state_dict(load_file(folder / PROJECTOR_FILE))
            adapter = load_file(folder / "adapter_model.safetensors")
        except (SafetensorError, OSError) as err:
            raise BridgeMismatch(f"{folder}: cannot read weights ({err})") from err
        except RuntimeError as err:  # wrong shapes
            raise BridgeMismatch(f"{folder}: projector does not fit: {err}") from err
        result = set_peft_model_state_dict(self.lm, adapter)
        missing = [k for k in result.missing_keys if "lora_" in k]
        if missing or result.unexpected_keys:
            raise BridgeMismatch(f"{folder}: adapter does not fit the model "
                                 f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})")

    @classmethod
    def load_bridge(cls, folder: str | Path, parts) -> "VisionGPT2":
        """A saved bridge on top of freshly loaded base models (`profiles.load_profile`).

        The adapter is applied once, to the fresh base; a base of another
        width, vocabulary or vision tower is refused with the reason.
        """
        folder = Path(folder)
        for name in (BRIDGE_CONFIG, PROJECTOR_FILE, "adapter_model.safetensors", "adapter_config.json"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder}: not a vgpt bridge ({name} missing)")
        raw = json.loads((folder / BRIDGE_CONFIG).read_text())
        known = {f.name for f in fields(BridgeConfig)}
        config = BridgeConfig(**{k: v for k, v in raw.items() if k in known})
        vision, lm = parts.vision, parts.language_model
        if hasattr(lm, "peft_config"):
            raise BridgeMismatch("the language model already carries adapters; load a fresh one with load_profile")
        checks = [("text width", config.text_width, lm.config.n_embd),
                  ("vocabulary size", config.vocab_size, lm.config.vocab_size),
                  ("vision width", config.vision_width, vision.config.hidden_size),
                  ("vision tower", config.vision_fingerprint, tower_fingerprint(vision))]
        for what, saved, here in checks:
            if saved != here:
                raise BridgeMismatch(f"{folder}: bridge was trained for {what} {saved} "
                                     f"({config.vision_model} + {config.language_model}), "
                                     f"but the loaded base models have {here}")
        model = cls(vision, lm, config, parts.tokenizer)
        model.load_bridge_weights(folder)
        return model
