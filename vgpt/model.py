"""VisionGPT2: a frozen CLIP vision tower and a frozen GPT-2, joined by a trained bridge.

    pixels (B, 3, H, W)
      --01 features: frozen vision tower-->   features (B, N, Dv)     e.g. 257 x 1024 on seed
      --02 projector: trained-------------->  prefix   (B, N, Dt)     e.g. 257 x 768
      --03 prefix ++ caption embeddings--->   embeds   (B, N + T, Dt), labels (B, N + T)
      --04 joint attention mask----------->   bias     (B, 1, N + T, N + T), position ids
      --05 GPT-2 (frozen) + LoRA (trained)->  logits   (B, N + T, V), loss on caption tokens only

Only the projector and the LoRA adapters train: together they are the *bridge*, which
`save_pretrained` writes and `from_pretrained` reads (`bridge.py`).

Every stage is a plug-in. `stages` maps a stage's name to a function of the same signature as the
package's (and as the notebooks' exercises), which then runs in its place:

    projector       mlp_projector(features, w1, b1, w2, b2) (or linear_projector(features, w, b))
    calibration     rms_scale(prefix, table) -> float
    prefix_inputs   prefix_inputs(prefix, ids, text_mask, embedding) -> (embeds, labels)
    attention_bias  attention_bias(mask) -> (B, L, L)
    position_ids    position_ids(mask) -> (B, L)
    lora_layer      lora_conv1d(conv, r, alpha) -> module (default: peft's LoRA)
    schedule        warmup_cosine(step, total, warmup) -> float         (read by train.py)
    train_step      train_step(opt, loss_fn, factor, clip_norm) -> float (read by train.py)
    decode          greedy_with_kv_cache(lm, prefix, eos, max_new_tokens) (read by generate.py)
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from . import bridge
from .config import PROFILES, Profile
from .features import spec_features, tower_fingerprint
from .lora import count_parameters, inject_lora, wrap_lora
from .masks import attention_bias, joint_attention_mask, open_prefix, position_ids
from .prefix import prefix_inputs
from .projector import build_projector, match_embedding_scale, rms_scale
from .speedups import caption_tokens_forward, shared_prefix_forward

STAGES = (
    "projector",
    "calibration",
    "prefix_inputs",
    "attention_bias",
    "position_ids",
    "lora_layer",
    "schedule",
    "train_step",
    "decode",
)


class VisionGPT2(nn.Module):
    def __init__(self, vision: nn.Module, lm: nn.Module, profile: Profile, tokenizer=None, stages: dict | None = None):
        super().__init__()
        unknown = set(stages or {}) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {', '.join(sorted(unknown))}; the stages are {', '.join(STAGES)}")
        self.stages = dict(stages or {})  # the ones given; every other stage is the package's
        self.profile, self.tokenizer = profile, tokenizer
        self.spec = spec = profile.model.for_models(vision, lm, tower_fingerprint(vision))
        self.vision = vision.eval().requires_grad_(False)  # frozen
        self.projector = build_projector(
            spec.projector, spec.vision_width, spec.text_width, self.stages.get("projector")
        )
        lm = lm.requires_grad_(False)  # frozen, then LoRA adapters (trained) go inside it
        if "lora_layer" in self.stages:
            self.hand_lora = wrap_lora(lm, spec.lora_r, spec.lora_alpha, spec.lora_targets, self.stages["lora_layer"])
            self.lm = lm
        else:
            self.hand_lora = None
            self.lm = inject_lora(lm, spec.lora_r, spec.lora_alpha, spec.lora_targets, spec.lora_dropout)

    @classmethod
    def from_parts(cls, parts, profile: Profile | None = None, stages: dict | None = None, random_seed=None):
        """A new bridge on `loading.load_profile(...)`'s frozen models. GPT-2 is copied (LoRA goes into
        the copy), so a notebook cell that builds a model can run again; the vision tower is shared.
        With `random_seed`, the bridge's random start comes from it and the global generator is left
        alone."""
        lm = copy.deepcopy(parts.language_model)
        with torch.random.fork_rng(devices=[], enabled=random_seed is not None):
            if random_seed is not None:
                torch.manual_seed(random_seed)
            return cls(parts.vision, lm, profile or parts.profile, parts.tokenizer, stages)

    @property
    def gpt2(self) -> nn.Module:
        """GPT-2 itself (transformer body and head), with the LoRA layers inside."""
        return self.lm if self.hand_lora is not None else self.lm.get_base_model()

    # ------------------------------------------------------------ the stages

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Stage 01: (B, 3, H, W) -> (B, N, Dv), no gradients."""
        return spec_features(self.vision, pixel_values, self.spec)

    def visual_prefix(self, *, pixel_values=None, features=None) -> torch.Tensor:
        """Stages 01-02: the prefix (B, N, Dt) from pixels, or from cached features when given."""
        if features is None:
            if pixel_values is None:
                raise ValueError("give pixel_values or cached features")
            features = self.features(pixel_values)
        weight = next(self.projector.parameters())
        return self.projector(features.to(weight.device, weight.dtype))

    def token_embeddings(self, input_ids: torch.Tensor) -> torch.Tensor:
        """GPT-2's own (frozen) embeddings of the caption tokens: (B, T) -> (B, T, Dt)."""
        return self.lm.get_input_embeddings()(input_ids)

    def attention_bias(self, mask: torch.Tensor, n_prefix: int) -> torch.Tensor:
        """Stage 04: the (B, L) mask -> the (B, 1, L, L) additive bias GPT-2 takes, prefix-LM if the spec says so."""
        bias = self.stages.get("attention_bias", attention_bias)(mask)
        return (open_prefix(bias, n_prefix) if self.spec.attention == "prefix_lm" else bias)[:, None]

    def forward(self, input_ids, text_mask, pixel_values=None, features=None, with_loss: bool = True,
                owner=None, shared_prefix: bool = False, lean: bool = False):  # fmt: skip
        """Captions (B, T) with their mask, and either pixels or cached features.

        Returns GPT-2's output: `.logits` (B, N + T, V) and, with `with_loss`, `.loss` over the
        caption tokens and their end-of-text. Training passes `owner` (B,): caption b's image is row
        owner[b] of `features` (I, N, Dv); then `shared_prefix` runs each image's prefix once for all
        of its captions and `lean` the head on caption slots only (`speedups.py`): the same loss.
        """
        if shared_prefix:
            return shared_prefix_forward(self, input_ids, text_mask, owner, pixel_values, features)
        if owner is not None:
            pixel_values = None if pixel_values is None else pixel_values[owner.to(pixel_values.device)]
            features = None if features is None else features[owner.to(features.device)]
        if lean:
            return caption_tokens_forward(self, input_ids, text_mask, features)
        prefix = self.visual_prefix(pixel_values=pixel_values, features=features)  # (B, N, Dt)
        embedding = self.lm.get_input_embeddings()
        embeds, labels = self.stages.get("prefix_inputs", prefix_inputs)(prefix, input_ids, text_mask, embedding)
        mask = joint_attention_mask(text_mask, prefix.shape[1])  # (B, N + T)
        positions = self.stages.get("position_ids", position_ids)(mask)  # (B, N + T)
        return self.lm(
            inputs_embeds=embeds,
            attention_mask=self.attention_bias(mask, prefix.shape[1]),
            position_ids=positions,
            labels=labels if with_loss else None,
        )

    # ------------------------------------------------------- around the stages

    def calibrate_projector(self, features: torch.Tensor) -> float:
        """Scale the projector so that the prefix starts at the size of GPT-2's token embeddings."""
        table = self.lm.get_input_embeddings().weight
        scale = self.stages.get("calibration", rms_scale)
        return match_embedding_scale(self.projector, features.to(table.device), table, scale)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_report(self) -> dict[str, int]:
        trainable, total = count_parameters(self)
        lora = sum(p.numel() for p in self.lm.parameters() if p.requires_grad)
        vision = sum(p.numel() for p in self.vision.parameters())
        return {
            "trainable": trainable,
            "total": total,
            "projector": trainable - lora,
            "lora": lora,
            "vision": vision,
            "language_model": total - trainable - vision,
        }

    # ------------------------------------------------------- the bridge on disk

    def save_pretrained(self, folder: str | Path, card: dict | None = None) -> Path:
        """Write the bridge (projector + LoRA + config + the frozen models' names and fingerprints)
        and a model card into `folder`, whole or not at all. `card`: metrics and notes for the card."""
        return bridge.save_bridge(self, folder, card)

    def load_bridge_weights(self, folder: str | Path) -> None:
        """Read a saved bridge's projector and adapter into this model (resuming a run, say)."""
        bridge.load_weights(self, Path(folder))

    @classmethod
    def from_pretrained(cls, source: str | Path, parts=None, stages: dict | None = None) -> VisionGPT2:
        """A saved bridge (a folder, or a Hugging Face Hub id) on top of its frozen models: `parts` as
        `loading.load_profile` gives them, or else loaded for the profile the bridge names. Frozen
        models other than the ones it was trained for are refused, with one line that says which."""
        folder = bridge.local_folder(source)
        name, spec = bridge.read_config(folder)
        if parts is None:
            parts = bridge.load_frozen(name, spec, folder)
        bridge.check_fits(spec, parts.vision, parts.language_model, folder)
        base = parts.profile if parts.profile.name == name else PROFILES.get(name, parts.profile)
        model = cls.from_parts(parts, base.with_(model=spec), stages)
        model.load_bridge_weights(folder)
        return model.eval()

    def push_to_hub(self, repo_id: str, card: dict | None = None, api=None, private: bool = False) -> str:
        """Save the bridge and its card, and upload them to the Hub model repo `repo_id` (made if
        missing); returns the commit's URL. `api`: a `huggingface_hub.HfApi` (a stand-in in tests)."""
        return bridge.push_to_hub(self, repo_id, card, api, private)
