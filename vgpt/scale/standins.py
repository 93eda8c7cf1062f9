"""The seed's models without a download: for tests, benchmarks and the seed stand-in of the notebooks.

`seed_architectures` builds CLIP ViT-L/14's vision tower and GPT-2 (124M) from their configs with
random weights: the seed's shapes and FLOPs, none of its knowledge. `seed_image_processor` is
ViT-L/14's image processor, which holds settings and no weights, so it is the real one. `gpt2_tokenizer` builds GPT-2's
real byte-level BPE tokenizer from its two published files (the tests keep a copy in
`tests/fixtures/gpt2-bpe/`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    CLIPVisionModel,
    GPT2Config,
    GPT2LMHeadModel,
    GPT2TokenizerFast,
)

from ..loading import ProfileUnavailable, freeze


def seed_vision_config():
    """CLIP ViT-L/14's vision tower, written out (the Hub config's values)."""
    return CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, projection_dim=768, num_hidden_layers=24,
        num_attention_heads=16, num_channels=3, image_size=224, patch_size=14, hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )  # fmt: skip


def seed_image_processor():
    """CLIP ViT-L/14's image processor, written out (the values of the Hub's preprocessor_config.json):
    the shorter side resized to 224 (bicubic), a centred 224 x 224 crop, rescaled by 1/255, normalised
    with CLIP's mean and std per channel. Settings only: the seed's preprocessing runs anywhere."""
    return CLIPImageProcessorPil(
        size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}, resample=3,  # 3: PIL's bicubic
        image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
    )  # fmt: skip


def seed_language_config():
    """GPT-2 small (124M), written out."""
    return GPT2Config(
        vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, activation_function="gelu_new",
        bos_token_id=50256, eos_token_id=50256,
    )  # fmt: skip


def seed_architectures(random_seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The seed's vision tower and GPT-2 from their configs, random weights, no download.

    Same shapes and FLOPs as the real models: for tests and benchmarks. The
    global random generator is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(random_seed)
        vision = CLIPVisionModel(seed_vision_config())
        lm = GPT2LMHeadModel(seed_language_config())
    lm.loss_type = "ForCausalLM"
    return freeze(vision), freeze(lm)


def gpt2_tokenizer(folder: str | Path):
    """GPT-2's real byte-level BPE tokenizer from its two published files, no download.

    `folder` holds `encoder.json` (token -> id, 50,257 entries, end-of-text
    50256) and `vocab.bpe` (50,000 merges after a `#version` line); the tests
    keep a copy in `tests/fixtures/gpt2-bpe/`. The result matches the Hub's
    `gpt2` tokenizer: no pad token (vgpt pads with end-of-text), 1024 positions.

    transformers 5 trap: `GPT2TokenizerFast(vocab_file=..., merges_file=...)`
    silently builds an *empty* tokenizer; the vocabulary must be passed as a
    dict and the merges as a list of pairs.
    """
    folder = Path(folder)
    try:
        vocab = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        lines = (folder / "vocab.bpe").read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as err:
        raise ProfileUnavailable(f"{folder}: cannot read GPT-2's encoder.json and vocab.bpe ({err})") from err
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    if any(len(pair) != 2 for pair in merges):
        raise ProfileUnavailable(f"{folder / 'vocab.bpe'}: every merge line must be two tokens")
    tokenizer = GPT2TokenizerFast(vocab=vocab, merges=merges, model_max_length=1024)
    if len(tokenizer) != len(vocab) or tokenizer.eos_token_id is None:
        raise ProfileUnavailable(f"{folder}: built a tokenizer of {len(tokenizer)} tokens from {len(vocab)}")
    return tokenizer
