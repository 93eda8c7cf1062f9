"""The two named profiles, every value written out, and the one function that loads them.

`seed` is the reference recipe (real CLIP ViT-L/14 and GPT-2 from the Hugging
Face Hub, Flickr8k). `tiny` is the same code path on small models pretrained
by this project on Shapes World, shipped in `data/tiny/`, for CPU-only and
offline machines. The only difference between them is where
`from_pretrained` reads from.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_DIR = Path(os.environ.get("VGPT_TINY_DIR", REPO_ROOT / "data" / "tiny"))


def repo_relative(name):
    """A path inside this repository as a path relative to it; anything else (a Hub id, a path
    elsewhere, None) as it is. Saved files and printed paths then read the same on every machine."""
    if name and Path(name).is_absolute() and Path(name).is_relative_to(REPO_ROOT):
        return Path(name).relative_to(REPO_ROOT).as_posix()
    return None if name is None else str(name)


class ProfileUnavailable(RuntimeError):
    """A profile's models cannot be loaded here; the message says what to do."""


@dataclass(frozen=True)
class Profile:
    name: str
    vision_model: str  # Hub id or folder: a CLIP vision tower + its image processor
    language_model: str  # Hub id or folder: GPT-2 + its tokenizer
    image_size: int  # pixels the vision tower takes (after resize and crop)
    feature_layer: int  # hidden_states index: -1 last (the seed), -2 penultimate (LLaVA)
    keep_cls: bool  # keep the CLS token in the visual prefix
    feature_layernorm: bool  # apply the tower's final LayerNorm to the features
    vision_width: int  # Dv, feature size per visual token
    text_width: int  # Dt, GPT-2 embedding size
    visual_tokens: int  # N, tokens in the visual prefix
    projector: str  # "linear" or "mlp"
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_targets: tuple[str, ...]
    max_caption_tokens: int
    lr: float  # learning rate of the LoRA weights (and of the projector unless lr_projector is set)
    lr_projector: float  # learning rate of the projector
    schedule: str  # "constant" or "warmup_cosine" (linear warmup, then cosine decay to 0)
    warmup_steps: int
    batch_size: int  # captions per optimizer step
    epochs: int
    eval_beams: int  # beam width when scoring captions; 1 is greedy
    data: str  # which caption data set the profile trains on
    needs_hub: bool
    notes: dict[str, str] = field(default_factory=dict, compare=False)

    def with_(self, **changes) -> "Profile":
        """A copy with some values changed, e.g. `profile.with_(epochs=1)`."""
        return replace(self, **changes)


SEED = Profile(
    name="seed",
    vision_model="openai/clip-vit-large-patch14",
    language_model="gpt2",
    image_size=224,
    feature_layer=-1,  # last_hidden_state
    keep_cls=True,  # 1 CLS + 16 x 16 patches = 257 tokens
    feature_layernorm=False,
    vision_width=1024,
    text_width=768,
    visual_tokens=257,
    projector="linear",  # Linear(1024 -> 768)
    lora_r=16,
    lora_alpha=32,
    lora_dropout=0.0,  # peft's default; the recipe sets none
    lora_targets=("c_attn",),
    max_caption_tokens=40,
    lr=2e-4,
    lr_projector=2e-4,  # one AdamW learning rate for everything
    schedule="constant",
    warmup_steps=0,
    batch_size=8,
    epochs=3,
    eval_beams=1,
    data="flickr8k",
    needs_hub=True,
    notes={"source": "the original recipe: CLIP ViT-L/14 last_hidden_state -> Linear -> "
                     "prefix of GPT-2 with LoRA r=16 alpha=32 on c_attn, lr 2e-4, batch 8, 3 epochs"},
)

TINY = Profile(
    name="tiny",
    vision_model=str(TINY_DIR / "clip-vision"),
    language_model=str(TINY_DIR / "gpt2"),
    image_size=64,  # shrunk, seed 224
    feature_layer=-1,
    keep_cls=True,  # 1 CLS + 4 x 4 patches = 17 tokens, seed 257
    feature_layernorm=False,
    vision_width=128,  # seed 1024
    text_width=128,  # seed 768
    visual_tokens=17,
    # A 128-wide GPT-2 has little room for r=16 LoRA on c_attn alone to learn to
    # read a prefix: a 3-minute CPU trial reached 15% exact-match captions that
    # way, and 94% with the MLP projector and LoRA on every projection.
    # The tiny GPT-2 read only captions, where any color is as likely as any
    # other, so its (tied) embeddings of 'red' and 'blue' are nearly the same
    # vector and its output head cannot say one of them with confidence: the
    # loss stalled at 0.33 nats/token whatever the rank or learning rate. LoRA
    # on the output head (lm_head) lifts that ceiling: val loss 0.02, 96.8% exact.
    projector="mlp",  # seed linear
    lora_r=16,
    lora_alpha=32,
    lora_dropout=0.0,
    lora_targets=("c_attn", "c_proj", "c_fc", "lm_head"),  # seed c_attn only
    max_caption_tokens=24,  # seed 40; the longest Shapes World caption is 11 tokens + EOS
    lr=2e-3,  # seed 2e-4; with warmup, cosine decay and clipping (unstable at 3e-3)
    lr_projector=2e-3,
    schedule="warmup_cosine",
    warmup_steps=100,
    batch_size=64,  # seed 8
    epochs=7,  # over 20,000 cached training scenes, about 2,200 steps
    eval_beams=1,  # captions here are short and near-certain: beams change nothing
    data="shapes",
    needs_hub=False,
    notes={"source": "models pretrained by `python -m vgpt build-tiny` on Shapes World"},
)

# The seed recipe with what the evidence says helps; every change is one line here.
SEED_PLUS = SEED.with_(
    name="seed-plus",
    # LLaVA reports its penultimate-layer CLIP features better than the last layer's
    # (ScienceQA 90.92% vs 89.96%): the last layer is shaped for CLIP's contrastive
    # objective, the one before keeps more local detail. Same 257 x 1024 shape.
    feature_layer=-2,
    # The projector starts from scratch and a LoRA update is a small change to a trained
    # model: projectors are commonly trained at 1e-3 (LLaVA stage 1 uses 2e-3), LoRA at 2e-4.
    lr_projector=1e-3,
    schedule="warmup_cosine",  # warmup protects the frozen model from the first random prefixes
    warmup_steps=500,  # about 5% of 3 epochs of 30,000 captions at batch 8
    eval_beams=3,  # beam search lifts BLEU and CIDEr over greedy on caption benchmarks
    notes={"source": "seed + penultimate CLIP layer, projector lr 1e-3, warmup + cosine, beam 3 "
                     "at evaluation; end-of-text is a label in every profile"},
)

PROFILES = {"seed": SEED, "seed-plus": SEED_PLUS, "tiny": TINY}


# ------------------------------------------------------------ choosing one

def hub_reachable(timeout: float = 2.0) -> tuple[bool, str]:
    """Can the Hugging Face Hub be reached? Answers within `timeout` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}:
        return False, "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True, f"{url.hostname} answered"
    except OSError as err:
        return False, f"{url.hostname}:{port} unreachable ({err.__class__.__name__})"


def resolve_profile(name: str | None = None) -> tuple[Profile, str]:
    """The profile to use and why: an argument, else `VGPT_PROFILE`, else `auto`.

    `auto` picks `seed` only where a GPU is present and the Hub answers.
    """
    name = (name or os.environ.get("VGPT_PROFILE") or "auto").lower()
    if name in PROFILES:
        return PROFILES[name], f"asked for {name!r}"
    if name != "auto":
        raise ValueError(f"unknown profile {name!r}; choose one of auto, {', '.join(PROFILES)}")
    if not torch.cuda.is_available():
        return TINY, "auto: no CUDA GPU here, so the offline tiny profile"
    ok, why = hub_reachable()
    if not ok:
        return TINY, f"auto: GPU present but the Hub is not reachable ({why}), so tiny"
    return SEED, "auto: GPU present and the Hub reachable, so seed"


# ------------------------------------------------------------------ loading

@dataclass
class Components:
    """What a profile loads: the frozen parts of the vision-language model."""
    profile: Profile
    tokenizer: object
    image_processor: object
    vision: torch.nn.Module  # CLIPVisionModel, eval mode, no grads
    language_model: torch.nn.Module  # GPT2LMHeadModel, eval mode, no grads


class _DropPaddingNotice(logging.Filter):
    """transformers guesses 'padding without a mask' whenever end-of-text (our pad id) shows up
    in generated ids; here rows are cut at their first end-of-text, so the notice is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "strongly recommend passing in an `attention_mask`" not in record.getMessage()


def quiet_transformers() -> None:
    """No per-file progress bars when loading, and none of the notices that do not apply here."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.get_logger("transformers.modeling_utils").addFilter(_DropPaddingNotice())


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_all(profile: Profile, local_only: bool) -> Components:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPVisionModel, GPT2LMHeadModel

    kw = dict(local_files_only=local_only)
    tokenizer = AutoTokenizer.from_pretrained(profile.language_model, **kw)
    processor = AutoImageProcessor.from_pretrained(profile.vision_model, backend="pil", **kw)
    vision = CLIPVisionModel.from_pretrained(profile.vision_model, use_safetensors=True, **kw)
    lm = GPT2LMHeadModel.from_pretrained(profile.language_model, use_safetensors=True, **kw)
    lm.loss_type = "ForCausalLM"  # say it, so transformers does not warn on the first loss
    return Components(profile, tokenizer, processor, _freeze(vision), _freeze(lm))


def load_profile(profile: Profile | str | None = None, verbose: bool = True) -> Components:
    """Load a profile's tokenizer, image processor, frozen vision tower and GPT-2.

    `profile` is a Profile, a name, or None (then `VGPT_PROFILE`, else `auto`).
    A Hub profile uses local copies first; with no copy and no Hub it fails
    within seconds, naming the model and how to switch to `tiny`.
    """
    reason = "given"
    if not isinstance(profile, Profile):
        profile, reason = resolve_profile(profile)
    if verbose:
        print(f"profile: {profile.name} ({reason})")
    quiet_transformers()
    if not profile.needs_hub:
        for path in (profile.vision_model, profile.language_model):
            if not (Path(path) / "config.json").is_file():
                raise ProfileUnavailable(
                    f"profile {profile.name!r}: no model at {path} (missing config.json). "
                    f"Rebuild it with `python -m vgpt build-tiny`, or set VGPT_TINY_DIR.")
        return _load_all(profile, local_only=True)
    try:
        return _load_all(profile, local_only=True)
    except OSError:
        pass  # not downloaded yet
    start = time.perf_counter()
    ok, why = hub_reachable()
    if not ok:
        raise ProfileUnavailable(
            f"profile {profile.name!r} needs {profile.vision_model} and {profile.language_model} "
            f"from the Hugging Face Hub, which is not reachable here ({why}; checked in "
            f"{time.perf_counter() - start:.1f} s) and no local copy exists. "
            f"Use the offline profile instead: --profile tiny or VGPT_PROFILE=tiny.")
    return _load_all(profile, local_only=False)


# ------------------------------------------------- seed shapes, no download

def seed_vision_config():
    """CLIP ViT-L/14's vision tower, written out (the Hub config's values)."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, projection_dim=768,
                            num_hidden_layers=24, num_attention_heads=16, num_channels=3,
                            image_size=224, patch_size=14, hidden_act="quick_gelu",
                            layer_norm_eps=1e-5)


def seed_language_config():
    """GPT-2 small (124M), written out."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                      activation_function="gelu_new", bos_token_id=50256, eos_token_id=50256)


def build_seed_random(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The seed's vision tower and GPT-2 from their configs, random weights, no download.

    Same shapes and FLOPs as the real models: for tests and benchmarks.
    """
    from transformers import CLIPVisionModel, GPT2LMHeadModel

    quiet_transformers()
    torch.manual_seed(seed)
    vision = CLIPVisionModel(seed_vision_config())
    lm = GPT2LMHeadModel(seed_language_config())
    lm.loss_type = "ForCausalLM"
    return _freeze(vision), _freeze(lm)


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
    from transformers import GPT2TokenizerFast

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
