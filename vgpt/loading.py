"""Turn a profile into models: choose it, load its frozen parts, or build the seed's shapes offline.

    load_profile("tiny") -> Components(profile, tokenizer, image_processor, vision, language_model)

A Hub profile reads local copies first; with none and no Hub it fails within
seconds with a message that says how to switch to `tiny`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from .errors import UserError
from .profiles import PROFILES, SEED, TINY, Profile


class ProfileUnavailable(UserError):
    """A profile's models cannot be loaded here; the message says what to do."""


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
        raise UserError(f"unknown profile {name!r}; choose one of auto, {', '.join(PROFILES)}")
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


_PADDING_NOTICE = _DropPaddingNotice()


@contextlib.contextmanager
def quiet_loading():
    """No per-file progress bars while the block loads models; the setting is restored afterwards.

    Also drops, once for the process, the one transformers notice that never applies here.
    """
    from transformers.utils import logging as hf_logging

    logger = hf_logging.get_logger("transformers.modeling_utils")
    if _PADDING_NOTICE not in logger.filters:
        logger.addFilter(_PADDING_NOTICE)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and no gradients: the frozen half of the vision-language model."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_all(profile: Profile, local_only: bool) -> Components:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPVisionModel, GPT2LMHeadModel

    spec, kw = profile.model, dict(local_files_only=local_only)
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(spec.language_model, **kw)
        processor = AutoImageProcessor.from_pretrained(spec.vision_model, backend="pil", **kw)
        vision = CLIPVisionModel.from_pretrained(spec.vision_model, use_safetensors=True, **kw)
        lm = GPT2LMHeadModel.from_pretrained(spec.language_model, use_safetensors=True, **kw)
    lm.loss_type = "ForCausalLM"  # say it, so transformers does not warn on the first loss
    return Components(profile, tokenizer, processor, freeze(vision), freeze(lm))


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
    spec = profile.model
    if not profile.needs_hub:
        for path in (spec.vision_model, spec.language_model):
            if not (Path(path) / "config.json").is_file():
                raise ProfileUnavailable(
                    f"profile {profile.name!r}: no model at {path} (missing config.json). "
                    f"Rebuild it with `python -m vgpt build-tiny`, or set VGPT_TINY_DIR."
                )
        return _load_all(profile, local_only=True)
    try:
        return _load_all(profile, local_only=True)
    except OSError:
        pass  # not downloaded yet
    start = time.perf_counter()
    ok, why = hub_reachable()
    if not ok:
        raise ProfileUnavailable(
            f"profile {profile.name!r} needs {spec.vision_model} and {spec.language_model} "
            f"from the Hugging Face Hub, which is not reachable here ({why}; checked in "
            f"{time.perf_counter() - start:.1f} s) and no local copy exists. "
            f"Use the offline profile instead: --profile tiny or VGPT_PROFILE=tiny."
        )
    return _load_all(profile, local_only=False)


# ------------------------------------------------- seed shapes, no download


def seed_vision_config():
    """CLIP ViT-L/14's vision tower, written out (the Hub config's values)."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, projection_dim=768, num_hidden_layers=24,
        num_attention_heads=16, num_channels=3, image_size=224, patch_size=14, hidden_act="quick_gelu",
        layer_norm_eps=1e-5,
    )  # fmt: skip


def seed_language_config():
    """GPT-2 small (124M), written out."""
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12, activation_function="gelu_new",
        bos_token_id=50256, eos_token_id=50256,
    )  # fmt: skip


def build_seed_random(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The seed's vision tower and GPT-2 from their configs, random weights, no download.

    Same shapes and FLOPs as the real models: for tests and benchmarks. The
    global random generator is left as it was.
    """
    from transformers import CLIPVisionModel, GPT2LMHeadModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
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
