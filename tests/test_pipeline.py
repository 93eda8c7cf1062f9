"""Stages 01-05 and VisionGPT2: tests that a broken stage would fail."""

import pytest
import torch

from vgpt import config, features, loading, masks, prefix
from vgpt.bridge import BridgeMismatch
from vgpt.config import SEED, TINY
from vgpt.lora import LoRAConv1D, inject_lora
from vgpt.model import VisionGPT2
from vgpt.world import shapes


def fresh_parts():
    return loading.load_profile("tiny", verbose=False)


@pytest.fixture(scope="module")
def model(randomize_lora):
    torch.manual_seed(0)
    m = VisionGPT2.from_parts(fresh_parts())
    randomize_lora(m)
    return m.eval()


def batch(model, captions, seed=0):
    scenes = shapes.generate("test", len(captions), seed=seed)
    pixels = model_pixels(model, scenes)
    ids, mask = prefix.tokenize_captions(model.tokenizer, captions, TINY.model.max_caption_tokens)
    return pixels, ids, mask


def model_pixels(model, scenes):
    from vgpt.world.vision import pixel_tensor

    return pixel_tensor([s.render() for s in scenes])


CAPTIONS = [
    "a small red circle at the top",
    "a large blue square left of a small yellow triangle",
    "a small green square",
]


def test_right_padded_batch_equals_each_sample_alone(model):
    pixels, ids, mask = batch(model, CAPTIONS)
    n = TINY.model.visual_tokens
    with torch.no_grad():
        together = model(ids, mask, pixel_values=pixels, with_loss=False).logits
        for i in range(len(CAPTIONS)):
            length = int(mask[i].sum())
            alone = model(
                ids[i : i + 1, :length], mask[i : i + 1, :length], pixel_values=pixels[i : i + 1], with_loss=False
            ).logits
            torch.testing.assert_close(together[i, : n + length], alone[0], atol=1e-5, rtol=1e-4)


def test_left_padded_generation_batch_with_position_ids_equals_alone(model):
    pixels, ids, mask = batch(model, CAPTIONS)
    with torch.no_grad():
        pre = model.visual_prefix(features=model.features(pixels))
        rows = [torch.cat([pre[i], model.token_embeddings(ids[i, : int(mask[i].sum()) - 1])]) for i in range(3)]
        embeds, amask, pos = masks.left_pad(rows)
        assert (amask.sum(1) == torch.tensor([r.shape[0] for r in rows])).all()
        padded = model.lm(inputs_embeds=embeds, attention_mask=amask, position_ids=pos).logits
        wrong = model.lm(inputs_embeds=embeds, attention_mask=amask).logits  # positions not shifted
        shortest = min(range(3), key=lambda i: rows[i].shape[0])
        for i, row in enumerate(rows):
            alone = model.lm(inputs_embeds=row[None]).logits[0]
            torch.testing.assert_close(padded[i, -row.shape[0] :], alone, atol=1e-5, rtol=1e-4)
        alone = model.lm(inputs_embeds=rows[shortest][None]).logits[0, -1]
        assert not torch.allclose(wrong[shortest, -1], alone, atol=1e-3)


def test_labels_by_position_keep_eos_and_mask_prefix_and_padding(model):
    tok = model.tokenizer
    captions = ["a small red circle", f"a large {tok.eos_token} square at the top left", ""]
    ids, mask = prefix.tokenize_captions(tok, captions, max_tokens=24)
    labels = prefix.caption_labels(ids, mask, n_prefix=5)
    assert labels.shape == (3, 5 + ids.shape[1])
    assert (labels[:, :5] == -100).all()
    for i in range(3):
        length = int(mask[i].sum())
        text = labels[i, 5:]
        assert (text[:length] == ids[i, :length]).all()
        assert text[length - 1] == tok.eos_token_id  # the end is a label: the model learns to stop
        assert (text[length:] == -100).all()
    # the caption that contains the padding token keeps it as a label
    pad_in_caption = (ids[1, : int(mask[1].sum()) - 1] == tok.eos_token_id).nonzero()
    assert len(pad_in_caption) == 1 and labels[1, 5 + pad_in_caption[0, 0]] == tok.eos_token_id
    assert int(mask[2].sum()) == 1  # an empty caption is just end-of-text


def test_overlong_caption_is_cut_with_eos_last(model):
    tok = model.tokenizer
    ids, mask = prefix.tokenize_captions(tok, ["a small red circle " * 20], max_tokens=10)
    assert ids.shape == (1, 10) and ids[0, -1] == tok.eos_token_id


def test_lora_at_init_equals_base_and_training_touches_only_the_bridge():
    parts = fresh_parts()
    pixels = model_pixels(None, shapes.generate("test", 4, seed=1))
    ids, mask = prefix.tokenize_captions(parts.tokenizer, CAPTIONS + ["a large red circle"], 24)
    torch.manual_seed(0)
    model = VisionGPT2.from_parts(parts)
    with torch.no_grad():
        embeds = prefix.concat_prefix(model.visual_prefix(features=model.features(pixels)), model.token_embeddings(ids))
        adapted = model.lm(inputs_embeds=embeds, attention_mask=masks.joint_attention_mask(mask, 17)).logits
        with model.lm.disable_adapter():
            base = model.lm(inputs_embeds=embeds, attention_mask=masks.joint_attention_mask(mask, 17)).logits
    torch.testing.assert_close(adapted, base, atol=0, rtol=0)

    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    bridge = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith("projector") or "lora_" in n for n in bridge)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    model.train()
    for _ in range(3):
        loss = model(ids, mask, pixel_values=pixels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    now = dict(model.named_parameters())
    assert all(torch.equal(now[n], p) for n, p in frozen.items())  # bit-identical
    assert any(n.startswith("vision") for n in frozen) and any("c_fc" in n for n in frozen)
    assert all(not torch.equal(now[n], p) for n, p in bridge.items())


def test_hand_written_lora_equals_peft():
    parts = fresh_parts()
    lm = inject_lora(parts.language_model, r=4, alpha=8, targets=("c_attn",))
    peft_layer = lm.base_model.model.transformer.h[0].attn.c_attn
    torch.manual_seed(1)
    with torch.no_grad():
        peft_layer.lora_B["default"].weight.normal_()
    mine = LoRAConv1D(peft_layer.base_layer, r=4, alpha=8)
    with torch.no_grad():
        mine.lora_A.copy_(peft_layer.lora_A["default"].weight)
        mine.lora_B.copy_(peft_layer.lora_B["default"].weight)
    x = torch.randn(2, 7, TINY.model.text_width)
    torch.testing.assert_close(mine(x), peft_layer(x), atol=1e-6, rtol=1e-5)
    assert not torch.allclose(mine(x), peft_layer.base_layer(x))


def test_lora_parameter_counts_on_tiny():
    model = VisionGPT2.from_parts(fresh_parts())
    report = model.parameter_report()
    r, d = 16, 128
    per_layer = (
        r * (d + 3 * d) + r * (d + d) + r * (d + 4 * d) + r * (4 * d + d)
    )  # c_attn, attn c_proj, c_fc, mlp c_proj
    head = r * (d + 339)  # lm_head: 128 -> 339-token vocabulary
    assert report["lora"] == 4 * per_layer + head == 138_544
    assert report["projector"] == 2 * (d * d + d)  # the MLP: two Linear(128 -> 128)
    assert report["trainable"] == report["lora"] + report["projector"]
    assert report["total"] - report["trainable"] == 844_928 + 894_208  # the frozen GPT-2 and tower


def test_injecting_twice_is_refused():
    parts = fresh_parts()
    lm = inject_lora(parts.language_model, 4, 8)
    with pytest.raises(ValueError, match="already carries LoRA"):
        inject_lora(lm, 4, 8)


def test_cached_features_equal_fresh_and_a_new_layer_is_not_stale(tmp_path):
    parts = fresh_parts()
    scenes = shapes.generate("val", 10, seed=0)
    from vgpt.world.vision import pixel_tensor

    items = [(f"s{i}", (lambda s=s: s.render())) for i, s in enumerate(scenes)]
    spec = parts.profile.model
    cache = features.build_cache(parts.vision, items, pixel_tensor, tmp_path, spec, batch_size=4)
    fresh = features.spec_features(parts.vision, pixel_tensor([s.render() for s in scenes]), spec)
    torch.testing.assert_close(cache.get([f"s{i}" for i in range(10)]).float(), fresh, atol=2e-2, rtol=2e-3)
    assert cache.get(["s3"]).dtype == torch.float16
    again = features.build_cache(parts.vision, items, pixel_tensor, tmp_path, spec)
    assert again.folder == cache.folder  # reused
    penult = spec.with_(feature_layer=-2, keep_cls=False)
    other = features.build_cache(parts.vision, items, pixel_tensor, tmp_path, penult)
    assert other.folder != cache.folder
    want = features.extract_features(parts.vision, pixel_tensor([scenes[0].render()]), layer=-2, keep_cls=False)
    assert want.shape == (1, 16, 128)
    torch.testing.assert_close(other.get(["s0"]).float(), want, atol=2e-2, rtol=2e-3)


def test_bridge_round_trip_gives_identical_logits_and_never_double_wraps(model, tmp_path):
    pixels, ids, mask = batch(model, CAPTIONS)
    with torch.no_grad():
        for p in model.projector.parameters():
            p.add_(0.01)
        before = model(ids, mask, pixel_values=pixels).logits
    folder = model.save_pretrained(tmp_path / "bridge")
    assert not (tmp_path / "bridge.partial").exists()
    names = {p.name for p in folder.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "bridge.json",
        "projector.safetensors",
        "README.md",
    } <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)
    parts = fresh_parts()
    loaded = VisionGPT2.from_pretrained(folder, parts)
    with torch.no_grad():
        after = loaded(ids, mask, pixel_values=pixels).logits
    torch.testing.assert_close(after, before, atol=0, rtol=0)
    lora_layers = [n for n, m in loaded.lm.named_modules() if n.endswith("c_attn") and hasattr(m, "lora_A")]
    assert len(lora_layers) == 4
    assert not any("base_model.model.base_model" in n for n, _ in loaded.named_parameters())
    again = VisionGPT2.from_pretrained(folder, parts)  # the same parts again: each load wraps a copy of GPT-2
    assert again.lm is not loaded.lm and not hasattr(parts.language_model, "peft_config")
    with pytest.raises(BridgeMismatch, match="already carries adapters"):
        VisionGPT2.from_pretrained(folder, loading.Parts(parts.profile, None, None, parts.vision, loaded.lm))


def test_bridge_for_another_base_is_refused(model, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = model.save_pretrained(tmp_path / "bridge")
    parts = fresh_parts()
    parts.language_model = GPT2LMHeadModel(GPT2Config(vocab_size=339, n_embd=64, n_layer=2, n_head=2))
    with pytest.raises(BridgeMismatch, match="text width 128"):
        VisionGPT2.from_pretrained(folder, parts)


def test_seed_architecture_through_the_pipeline(seed_random):
    vision, lm = seed_random
    parts = loading.Parts(SEED, None, None, vision, lm)
    model = VisionGPT2.from_parts(parts).eval()
    assert model.parameter_report()["lora"] == 589_824 and model.parameter_report()["projector"] == 787_200
    with torch.no_grad():
        feats = model.features(torch.randn(1, 3, 224, 224))
        assert feats.shape == (1, 257, 1024)
        pre = model.visual_prefix(features=feats)
        assert pre.shape == (1, 257, 768)
        out = model(torch.tensor([[464, 3290, 50256]]), torch.ones(1, 3, dtype=torch.long), features=feats)
    assert out.logits.shape == (1, 260, 50257)
    assert torch.isfinite(out.loss)


def test_projector_variants_and_scale_calibration(model):
    from vgpt.projector import build_projector, match_embedding_scale

    feats = torch.randn(4, 17, 128) * 3.0  # vision hidden states are large
    table = model.lm.get_input_embeddings().weight
    for kind in ("linear", "mlp"):
        torch.manual_seed(0)
        proj = build_projector(kind, 128, 128)
        assert proj(feats).shape == (4, 17, 128)
        factor = match_embedding_scale(proj, feats, table)
        assert factor != pytest.approx(1.0, abs=0.05)
        rms = proj(feats).pow(2).mean().sqrt()
        assert rms.item() == pytest.approx(table.pow(2).mean().sqrt().item(), rel=1e-4)
    mlp = build_projector("mlp", 1024, 768)
    assert sum(p.numel() for p in mlp.parameters()) == 1024 * 768 + 768 + 768 * 768 + 768
    with pytest.raises(ValueError, match="unknown projector 'conv'"):
        build_projector("conv", 1, 1)


def test_attention_matrix_is_causal_and_hides_padding():
    mask = torch.tensor([1, 1, 1, 1, 0, 0])  # 2 prefix slots, 2 text tokens, 2 pads
    m = masks.attention_matrix(mask)
    assert m.shape == (6, 6)
    assert m[3, :4].tolist() == [1, 1, 1, 1] and m[1, 2] == 0  # causal
    assert m[:, 4:].sum() == 0  # nobody attends to padding
    joint = masks.joint_attention_mask(torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]), 2)
    assert joint.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert masks.position_ids(torch.tensor([[0, 0, 1, 1, 1]])).tolist() == [[0, 0, 0, 1, 2]]


def test_bridge_for_another_vision_tower_is_refused(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "bridge")
    parts = fresh_parts()
    with torch.no_grad():
        parts.vision.embeddings.patch_embedding.weight.add_(1e-3)  # a retrained tower, same shapes
    with pytest.raises(BridgeMismatch, match="vision tower"):
        VisionGPT2.from_pretrained(folder, parts)


def test_bridge_folder_with_missing_files_is_a_clear_error(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "bridge")
    (folder / "projector.safetensors").unlink()
    with pytest.raises(BridgeMismatch, match="projector.safetensors missing"):
        VisionGPT2.from_pretrained(folder, fresh_parts())


@pytest.mark.parametrize("name", ["projector.safetensors", "adapter_model.safetensors"])
def test_truncated_bridge_weights_are_a_clear_error(model, tmp_path, name):
    folder = model.save_pretrained(tmp_path / "bridge")
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(BridgeMismatch, match="cannot read weights"):
        VisionGPT2.from_pretrained(folder, fresh_parts())


def test_pickle_offered_as_weights_is_refused(model, tmp_path):
    import pickle

    folder = model.save_pretrained(tmp_path / "bridge")
    (folder / "projector.safetensors").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    with pytest.raises(BridgeMismatch, match="cannot read weights"):
        VisionGPT2.from_pretrained(folder, fresh_parts())


def test_tower_fingerprint_does_not_depend_on_where_the_model_lies(tmp_path):
    """A bridge or a cache made in one clone must be recognised in another one."""
    import shutil

    from transformers import CLIPVisionModel

    from vgpt.features import tower_fingerprint

    here = config.TINY.model.vision_model
    copy_ = shutil.copytree(here, tmp_path / "elsewhere" / "clip-vision")
    moved = CLIPVisionModel.from_pretrained(copy_, use_safetensors=True)
    original = CLIPVisionModel.from_pretrained(here, use_safetensors=True)
    assert moved.config._name_or_path != original.config._name_or_path
    assert tower_fingerprint(moved) == tower_fingerprint(original)
    with torch.no_grad():
        moved.post_layernorm.weight.mul_(1.01)  # other weights: another fingerprint
    assert tower_fingerprint(moved) != tower_fingerprint(original)
