"""Profiles: values written out, choice explained, offline failure fast and clear."""

import subprocess
import sys
import time

import pytest
import torch

from vgpt import config, loading
from vgpt.config import SEED, TINY, UserError
from vgpt.loading import ProfileUnavailable


def test_seed_profile_is_the_original_recipe():
    assert SEED.model.vision_model == "openai/clip-vit-large-patch14"
    assert SEED.model.language_model == "gpt2"
    assert (SEED.model.vision_width, SEED.model.text_width, SEED.model.visual_tokens) == (1024, 768, 257)
    assert SEED.model.projector == "linear"
    assert (SEED.model.lora_r, SEED.model.lora_alpha, SEED.model.lora_targets) == (16, 32, ("c_attn",))
    assert (SEED.model.max_caption_tokens, SEED.train.lr_lora, SEED.train.batch_size, SEED.train.epochs) == (
        40,
        2e-4,
        8,
        3,
    )
    assert SEED.model.feature_layer == -1 and SEED.model.keep_cls and SEED.needs_hub
    assert (SEED.train.lr_projector, SEED.train.schedule, SEED.train.warmup_steps, SEED.eval_beams) == (
        2e-4,
        "constant",
        0,
        1,
    )

    config = SEED.train
    assert (config.lr_projector, config.lr_lora, config.batch_size, config.epochs) == (2e-4, 2e-4, 8, 3)
    assert config.schedule == "constant" and SEED.model.max_caption_tokens == 40


def test_seed_plus_changes_only_what_it_says():
    from dataclasses import asdict

    plus = config.PROFILES["seed-plus"]

    def flat(values, prefix=""):
        for key, value in values.items():
            yield from (
                flat(value, f"{prefix}{key}.")
                if isinstance(value, dict) and key != "notes"
                else [(prefix + key, value)]
            )

    seed = dict(flat(asdict(SEED)))
    changed = {k for k, v in flat(asdict(plus)) if seed[k] != v}
    assert changed == {
        "name",
        "model.feature_layer",
        "train.lr_projector",
        "train.schedule",
        "train.warmup_steps",
        "eval_beams",
        "notes",
    }
    assert (
        plus.train.lr_projector > plus.train.lr_lora and plus.eval_beams > 1 and plus.train.schedule == "warmup_cosine"
    )
    assert plus.model.visual_tokens == 257 and plus.needs_hub


def test_resolve_profile_by_argument_env_and_auto(monkeypatch):
    monkeypatch.setenv("VGPT_PROFILE", "seed")
    assert loading.resolve_profile()[0] is SEED
    assert loading.resolve_profile("tiny")[0] is TINY
    monkeypatch.delenv("VGPT_PROFILE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    profile, why = loading.resolve_profile()
    assert profile is TINY and "no CUDA GPU" in why
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    profile, why = loading.resolve_profile("auto")
    assert profile is TINY and "HF_HUB_OFFLINE" in why
    with pytest.raises(UserError, match="unknown profile 'tyni'"):
        loading.resolve_profile("tyni")


def test_hub_check_answers_fast_when_closed(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    ok, why = loading.hub_reachable()
    assert not ok and "127.0.0.1:9" in why
    assert time.perf_counter() - start < 3


@pytest.mark.parametrize("offline", ["1", None])
def test_seed_without_hub_fails_fast_and_clearly(monkeypatch, tmp_path, offline):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing downloaded
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(ProfileUnavailable) as err:
        loading.load_profile("seed", verbose=False)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "openai/clip-vit-large-patch14" in message and "--profile tiny" in message


def test_missing_tiny_folder_is_a_clear_error(tmp_path):
    broken = TINY.with_(model=TINY.model.with_(vision_model=str(tmp_path / "nowhere")))
    with pytest.raises(ProfileUnavailable, match="nowhere.*build-tiny"):
        loading.load_profile(broken, verbose=False)


def test_cli_profile_and_errors():
    ok = subprocess.run([sys.executable, "-m", "vgpt", "profile", "seed"], capture_output=True, text=True)
    assert ok.returncode == 0 and "openai/clip-vit-large-patch14" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "vgpt", "profile", "tyni"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "unknown profile" in bad.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "vgpt", "build-tiny", "--check", "--out", "/nonexistent"], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "/nonexistent" in missing.stderr


def test_seed_architecture_from_config_has_the_seed_shapes(seed_random):
    """Random weights, no download: 257 x 1024 features, 768-d embeddings, GPT-2 vocabulary."""
    vision, lm = seed_random
    assert sum(p.numel() for p in vision.parameters()) == 303_179_776
    assert sum(p.numel() for p in lm.parameters()) == 124_439_808
    with torch.no_grad():
        features = vision(pixel_values=torch.randn(1, 3, 224, 224)).last_hidden_state
        assert features.shape == (1, 257, 1024)
        embeds = lm.get_input_embeddings()(torch.tensor([[50256, 464]]))
        assert embeds.shape == (1, 2, 768)
        logits = lm(inputs_embeds=torch.randn(1, 3, 768)).logits
        assert logits.shape == (1, 3, 50257)
    assert not any(p.requires_grad for p in vision.parameters())


def test_seed_image_processor_is_clip_vit_l14s_and_equals_its_preprocessing_by_hand():
    """Written out, no download: the Hub's settings, and on a real photo the five steps of notebook 01."""
    from notebook_exercises import exercise_solution

    from vgpt.course.notebook import sample_photo
    from vgpt.features import processor_pixels
    from vgpt.scale.standins import seed_image_processor

    processor = seed_image_processor()
    assert processor.size == {"shortest_edge": 224} and processor.crop_size == {"height": 224, "width": 224}
    assert int(processor.resample) == 3 and processor.do_center_crop and processor.do_convert_rgb
    assert processor.rescale_factor == 1 / 255
    assert list(processor.image_mean) == [0.48145466, 0.4578275, 0.40821073]
    assert list(processor.image_std) == [0.26862954, 0.26130258, 0.27577711]
    photo = sample_photo()
    pixels = processor_pixels(processor)([photo])
    assert pixels.shape == (1, 3, 224, 224)
    by_hand = exercise_solution("01_feature_extraction", "clip_preprocess")
    mine = by_hand(photo, 224, 224, processor.image_mean, processor.image_std)
    assert torch.allclose(mine, pixels[0], atol=1e-5)
    assert not torch.allclose(mine, by_hand(photo, 224, 224, [0.5] * 3, [0.5] * 3), atol=1e-2)  # it can fail


@pytest.mark.parametrize(
    "command", [[], ["build-tiny"], ["profile"], ["demo"], ["train"], ["caption"], ["evaluate"], ["extract"]]
)
def test_every_command_has_help(command):
    run = subprocess.run([sys.executable, "-m", "vgpt", *command, "--help"], capture_output=True, text=True)
    assert run.returncode == 0 and "usage: python -m vgpt" in run.stdout
