"""The tiny CLIP: trained contrastively on Shapes World; its vision tower is the tiny profile's.

Half of every batch is one-word counterfactual twins (another color, shape,
size, or the two objects swapped) as hard negatives, so the tower has to see
every attribute.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from ..prefix import right_pad
from . import shapes
from .loop import fit

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's, kept for both profiles
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def pixel_tensor(images, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """RGB images already at model size -> normalized (B, 3, H, W).

    Equals the saved image processor's output for such images (a test checks
    it); used in training loops where calling the processor is the slow part.
    """
    arr = torch.from_numpy(np.stack([np.asarray(im, dtype=np.float32) for im in images]))
    x = arr.permute(0, 3, 1, 2) / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def clip_config(tokenizer, recipe):
    from transformers import CLIPConfig

    eot = tokenizer.eos_token_id
    if eot == 2:  # CLIP's text tower falls back to legacy argmax pooling for id 2
        raise ValueError("the end-of-text id must not be 2 for CLIP's text pooling")
    w = recipe.width
    text = dict(
        vocab_size=len(tokenizer),
        hidden_size=w,
        intermediate_size=4 * w,
        num_hidden_layers=recipe.clip_text_layers,
        num_attention_heads=4,
        max_position_embeddings=32,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
    )
    vision = dict(
        hidden_size=w,
        intermediate_size=4 * w,
        num_hidden_layers=recipe.clip_vision_layers,
        num_attention_heads=4,
        image_size=recipe.image_size,
        patch_size=recipe.patch_size,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=w)


def clip_text_batch(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """`caption <eot>`, right-padded with <eot>: CLIP pools at the first <eot>."""
    eot = tokenizer.eos_token_id
    return right_pad([tokenizer(c).input_ids + [eot] for c in captions], eot)


def contrastive_loss(logits_per_image: torch.Tensor, captions: list[str]) -> torch.Tensor:
    """Symmetric InfoNCE where every image whose caption is identical counts as a match.

    Shapes World repeats captions inside a batch; treating those as negatives
    would ask CLIP to tell apart two pictures that the text cannot.
    """
    index = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    ids = torch.tensor([index[c] for c in captions])
    target = (ids[:, None] == ids[None, :]).float()
    target = target / target.sum(1, keepdim=True)
    return (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image.T, target)) / 2


def clip_batch_scenes(n: int, rng: random.Random, seed: int) -> list[shapes.Scene]:
    """Half fresh training scenes, half their one-word counterfactual twins."""
    base = shapes.generate("train", n - n // 2, seed=seed)
    twins = [t for t in (shapes.counterfactual(s, rng) for s in base[: n // 2]) if t is not None]
    return base + twins


def train_clip(tokenizer, recipe, log=print):
    """A small CLIP trained contrastively on training-split scenes, half of each batch hard negatives."""
    from transformers import CLIPModel

    torch.manual_seed(recipe.seed)
    model = CLIPModel(clip_config(tokenizer, recipe))
    rng = random.Random(f"clip:{recipe.seed}")

    def loss_at(step):
        scenes = clip_batch_scenes(recipe.clip_batch, rng, seed=recipe.seed * 100_000 + step)
        captions = [s.caption for s in scenes]
        ids, mask = clip_text_batch(tokenizer, captions)
        pixels = pixel_tensor([s.render(recipe.image_size) for s in scenes])
        out = model(input_ids=ids, attention_mask=mask, pixel_values=pixels)
        return contrastive_loss(out.logits_per_image, captions)

    return fit(model, loss_at, recipe.clip_steps, recipe.clip_lr, weight_decay=0.05, warmup=100, desc="tiny CLIP")


@torch.no_grad()
def retrieval_top1(model, tokenizer, scenes: list[shapes.Scene], image_size: int) -> float:
    """Image -> text top-1 among the scenes' captions (an identical caption counts)."""
    captions = [s.caption for s in scenes]
    ids, mask = clip_text_batch(tokenizer, captions)
    out = model(input_ids=ids, attention_mask=mask, pixel_values=pixel_tensor([s.render(image_size) for s in scenes]))
    best = out.logits_per_image.argmax(1)
    return float(np.mean([captions[j] == captions[i] for i, j in enumerate(best.tolist())]))


def vision_tower_from_clip(clip):
    """The vision half of a CLIPModel as a standalone CLIPVisionModel."""
    from transformers import CLIPVisionModel

    tower = CLIPVisionModel(clip.config.vision_config)
    tower.load_state_dict(clip.vision_model.state_dict())
    return tower.eval()
