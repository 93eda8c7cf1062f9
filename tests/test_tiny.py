"""The tiny pretrained models: shipped, loadable offline, as good as their manifest says."""

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from vgpt import loading
from vgpt.config import TINY, TINY_DIR
from vgpt.world import build, language, probes, shapes, vision


@pytest.fixture(scope="module")
def parts():
    return loading.load_profile("tiny", verbose=False)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((TINY_DIR / "manifest.json").read_text())


def test_tiny_loads_offline_through_from_pretrained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    p = loading.load_profile("tiny", verbose=False)
    assert type(p.language_model).__name__ == "GPT2LMHeadModel"
    assert type(p.vision).__name__ == "CLIPVisionModel"
    assert not p.vision.training and not any(x.requires_grad for x in p.vision.parameters())


def test_shapes_of_the_tiny_profile(parts):
    image = shapes.generate("test", 1, seed=0)[0].render()
    px = parts.image_processor(images=[image], return_tensors="pt")["pixel_values"]
    assert px.shape == (1, 3, TINY.model.image_size, TINY.model.image_size)
    with torch.no_grad():
        feats = parts.vision(pixel_values=px).last_hidden_state
        assert feats.shape == (1, TINY.model.visual_tokens, TINY.model.vision_width)
        logits = parts.language_model(inputs_embeds=torch.randn(1, 5, TINY.model.text_width)).logits
    assert logits.shape == (1, 5, len(parts.tokenizer))


def test_fast_pixel_path_equals_the_image_processor(parts):
    images = [s.render() for s in shapes.generate("val", 4, seed=0)]
    reference = parts.image_processor(images=images, return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(vision.pixel_tensor(images), reference, atol=1e-5, rtol=1e-5)


def test_tokenizer_has_end_of_text_and_round_trips(parts):
    tok = parts.tokenizer
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id != 2
    caption = "a small orange triangle left of a large green circle"
    ids = tok(caption).input_ids
    assert tok.decode(ids) == caption
    assert len(ids) == len(caption.split())  # every word of the grammar is one token
    assert tok.eos_token_id not in ids


def test_language_model_reaches_the_entropy_floor(parts, manifest):
    floor = language.entropy_floor(parts.tokenizer)
    loss = language.expected_lm_loss(parts.language_model, parts.tokenizer)
    assert loss >= floor - 1e-6  # no model beats the entropy of its data (Gibbs)
    assert loss / floor <= build.LM_GATE
    assert loss == pytest.approx(manifest["quality"]["lm_expected_loss"], abs=1e-3)


def test_language_model_knows_late_positions(parts):
    """A caption at positions 30-45 (where a visual prefix pushes it) is predicted as well
    as one at the start: the packed training reached every position."""
    import random

    tok, lm = parts.tokenizer, parts.language_model
    eot = tok.eos_token_id
    rng = random.Random(3)
    context = [eot]
    while len(context) < 30:
        context += tok(shapes.sample_scene(rng).caption).input_ids + [eot]
    nll, count = 0.0, 0
    with torch.no_grad():
        for _ in range(200):
            target = tok(shapes.sample_scene(rng).caption).input_ids + [eot]
            ids = torch.tensor([context + target])
            logits = lm(input_ids=ids).logits[0, len(context) - 1 : -1]
            nll += torch.nn.functional.cross_entropy(logits, ids[0, len(context) :], reduction="sum").item()
            count += len(target)
    assert ids.shape[1] > 40
    assert nll / count < 1.1 * language.entropy_floor(tok)


def test_language_model_writes_grammatical_captions(parts):
    tok, lm = parts.tokenizer, parts.language_model
    torch.manual_seed(0)
    start = torch.tensor([[tok.eos_token_id]])
    out = lm.generate(
        start,
        attention_mask=torch.ones_like(start),
        do_sample=True,
        max_new_tokens=16,
        num_return_sequences=20,
        pad_token_id=tok.eos_token_id,
    )
    grammar = shapes.caption_distribution()
    texts = [tok.decode(row[1:], skip_special_tokens=True) for row in out]
    assert sum(t in grammar for t in texts) >= 18, texts


def test_manifest_records_passed_gates_and_small_files(manifest):
    q = manifest["quality"]
    assert q["gates_passed"] and q["lm_loss_over_floor"] <= build.LM_GATE
    assert min(q["probe_accuracy"].values()) >= build.PROBE_GATE
    assert set(q["probe_accuracy"]) == {
        "count",
        "color1",
        "shape1",
        "size1",
        "position",
        "relation",
        "color2",
        "shape2",
        "size2",
    }
    assert manifest["bytes"] <= 10_000_000
    files = {p.name for p in TINY_DIR.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)


def test_clip_eos_trap_is_refused():
    class FakeTokenizer:
        eos_token_id = 2

        def __len__(self):
            return 300

    with pytest.raises(ValueError, match="must not be 2"):
        vision.clip_config(FakeTokenizer(), SimpleNamespace(**build.FAST_RECIPE))


def test_contrastive_loss_treats_identical_captions_as_matches():
    """Two images with one caption: tying them is right; with two captions it is wrong."""
    tie = torch.tensor([[5.0, 5.0, -5.0], [5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    diagonal = torch.tensor([[5.0, -5.0, -5.0], [-5.0, 5.0, -5.0], [-5.0, -5.0, 5.0]])
    same, distinct = ["a", "a", "b"], ["a", "c", "b"]
    assert vision.contrastive_loss(tie, same) < vision.contrastive_loss(diagonal, same)
    assert vision.contrastive_loss(diagonal, distinct) < vision.contrastive_loss(tie, distinct)


def test_linear_probe_separates_what_is_separable_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 20, generator=g)
    y = (x[:, 3] > 0).long()
    assert probes.linear_probe(x[:400], y[:400], x[400:], y[400:], 2) > 0.97
    noise = torch.randint(0, 2, (600,), generator=g)
    assert probes.linear_probe(x[:400], noise[:400], x[400:], noise[400:], 2) < 0.65


def test_build_tiny_fast_writes_loadable_models(tmp_path):
    out = tmp_path / "tiny"
    run = subprocess.run(
        [sys.executable, "-m", "vgpt", "build-tiny", "--fast", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    from transformers import AutoTokenizer, CLIPVisionModel, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(out / "gpt2")
    lm = GPT2LMHeadModel.from_pretrained(out / "gpt2", use_safetensors=True)
    tower = CLIPVisionModel.from_pretrained(out / "clip-vision", use_safetensors=True)
    assert lm.config.vocab_size == len(tok) and lm.config.eos_token_id == tok.eos_token_id
    feats = tower(pixel_values=vision.pixel_tensor([shapes.generate("val", 1)[0].render()])).last_hidden_state
    assert feats.shape[1] == (64 // tower.config.patch_size) ** 2 + 1
    m = json.loads((out / "manifest.json").read_text())
    assert m["recipe"]["lm_steps"] == build.FAST_RECIPE["lm_steps"]
    assert not (tmp_path / "tiny.partial").exists()


def test_failed_gates_replace_nothing(tmp_path):
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "keep.txt").write_text("earlier build")
    with pytest.raises(build.GateError, match="quality gates"):
        build.build_tiny(out, build.FAST_RECIPE, enforce_gates=True, log=lambda _: None)
    assert (out / "keep.txt").read_text() == "earlier build"


def test_check_reports_gates(tmp_path):
    result = build.check_tiny(TINY_DIR, n_train=3000, n_test=300, log=lambda _: None)
    assert result["lm_loss_over_floor"] <= build.LM_GATE
    assert set(result["probes"]) == set(result["compositional_probes"])
    assert np.mean(list(result["probes"].values())) > 0.9
