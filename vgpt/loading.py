"""Turn a profile into models: choose it, load its frozen parts, or build the seed's shapes offline.

    load_profile("tiny") -> Parts(profile, tokenizer, image_processor, vision, language_model)

A Hub profile reads local copies first; with none and no Hub it fails within
seconds with a message that says how to switch to `tiny`. The seed's models built offline
(full-size architectures with random weights, GPT-2's real tokenizer) are in `scale/standins.py`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import torch

from .config import PROFILES, SEED, TINY, Profile, UserError


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
class Parts:
    """What a profile loads: the frozen parts of the vision-language model, and how to read its inputs."""

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


def _load_all(profile: Profile, local_only: bool) -> Parts:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPVisionModel, GPT2LMHeadModel

    spec, kw = profile.model, dict(local_files_only=local_only)
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(spec.language_model, **kw)
        processor = AutoImageProcessor.from_pretrained(spec.vision_model, backend="pil", **kw)
        vision = CLIPVisionModel.from_pretrained(spec.vision_model, use_safetensors=True, **kw)
        lm = GPT2LMHeadModel.from_pretrained(spec.language_model, use_safetensors=True, **kw)
    lm.loss_type = "ForCausalLM"  # say it, so transformers does not warn on the first loss
    return Parts(profile, tokenizer, processor, freeze(vision), freeze(lm))


def load_profile(profile: Profile | str | None = None, verbose: bool = True) -> Parts:
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
