"""VisionGPT2: a frozen CLIP vision tower and a frozen GPT-2, joined by a trained bridge.

    pixels (B, 3, H, W)
      --01 features: frozen vision tower-->   features (B, N, Dv)     e.g. 257 x 1024 on seed
      --02 projector: trained-------------->  prefix   (B, N, Dt)     e.g. 257 x 768
      --03 prefix ++ caption embeddings--->   embeds   (B, N + T, Dt)
      --04 joint attention mask----------->   mask     (B, N + T)
      --05 GPT-2 (frozen) + LoRA (trained)->  logits   (B, N + T, V), loss on caption tokens only

Only the projector and the LoRA adapters train: together they are the
*bridge*, saved and loaded by `bridge.py`. Every stage is a function of its
own module; this class only composes them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import bridge
from .bridge import BridgeConfig
from .features import extract_features
from .lora import count_parameters, inject_lora
from .masks import joint_attention_mask
from .prefix import caption_labels, concat_prefix
from .projector import build_projector, match_embedding_scale


class VisionGPT2(nn.Module):
    def __init__(self, vision: nn.Module, lm: nn.Module, config: BridgeConfig, tokenizer=None):
        super().__init__()
        spec = config.model
        self.config, self.tokenizer = config, tokenizer
        self.vision = vision.eval().requires_grad_(False)  # frozen
        self.projector = build_projector(spec.projector, spec.vision_width, spec.text_width)  # trained
        lm = lm.requires_grad_(False)  # frozen, then LoRA adapters (trained) go inside it
        self.lm = inject_lora(lm, spec.lora_r, spec.lora_alpha, spec.lora_targets, spec.lora_dropout)

    @classmethod
    def from_parts(cls, parts, profile=None) -> VisionGPT2:
        """From `loading.load_profile(...)`'s components (the models are wrapped, not copied)."""
        config = BridgeConfig.for_models(profile or parts.profile, parts.vision, parts.language_model)
        return cls(parts.vision, parts.language_model, config, parts.tokenizer)

    # ------------------------------------------------------------ the stages

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Stage 01: (B, 3, H, W) -> (B, N, Dv), no gradients."""
        return extract_features(self.vision, pixel_values, self.config.model.features)

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

    def forward(self, input_ids, text_mask, pixel_values=None, features=None, with_loss: bool = True):
        """Captions (B, T) with their mask, and either pixels or cached features.

        Returns GPT-2's output: `.logits` (B, N + T, V) and, with `with_loss`,
        `.loss` over the caption tokens and their end-of-text.
        """
        prefix = self.visual_prefix(pixel_values=pixel_values, features=features)  # (B, N, Dt)
        embeds = concat_prefix(prefix, self.token_embeddings(input_ids))  # (B, N + T, Dt)
        mask = joint_attention_mask(text_mask, prefix.shape[1])  # (B, N + T)
        labels = caption_labels(input_ids, text_mask, prefix.shape[1]) if with_loss else None
        return self.lm(inputs_embeds=embeds, attention_mask=mask, labels=labels)

    # ------------------------------------------------------- around the stages

    def calibrate_projector(self, features: torch.Tensor) -> float:
        """Scale the projector so that the prefix starts at the size of GPT-2's token embeddings."""
        table = self.lm.get_input_embeddings().weight
        return match_embedding_scale(self.projector, features.to(table.device), table)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_report(self) -> dict[str, int]:
        trainable, total = count_parameters(self)
        lora = sum(p.numel() for p in self.lm.parameters() if p.requires_grad)
        vision = sum(p.numel() for p in self.vision.parameters())
        return {"trainable": trainable, "total": total, "projector": trainable - lora, "lora": lora,
                "vision": vision, "language_model": total - trainable - vision}  # fmt: skip

    def save_bridge(self, folder: str | Path) -> Path:
        return bridge.save_bridge(self, folder)

    def load_bridge_weights(self, folder: str | Path) -> None:
        bridge.load_bridge_weights(self, folder)

    @classmethod
    def load_bridge(cls, folder: str | Path, parts) -> VisionGPT2:
        """A saved bridge on top of freshly loaded base models; another base is refused with the reason."""
        config = bridge.read_bridge_config(folder)
        bridge.check_fits(config, parts.vision, parts.language_model, Path(folder))
        model = cls(parts.vision, parts.language_model, config, parts.tokenizer)
        model.load_bridge_weights(folder)
        return model
