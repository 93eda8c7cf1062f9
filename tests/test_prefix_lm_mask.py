"""The prefix-LM mask (`ModelSpec(attention="prefix_lm")`): the image slots see the whole image, the
caption stays causal. It changes what the prefix slots compute, never what causality guarantees, and
greedy decoding reads the prefix the same way with the KV cache as without it."""

from dataclasses import replace

import pytest
import torch

from vgpt import features, generate, masks
from vgpt.config import TINY
from vgpt.loading import load_profile
from vgpt.model import VisionGPT2
from vgpt.prefix import tokenize_captions
from vgpt.world import shapes
from vgpt.world.vision import pixel_tensor

PREFIX_LM = TINY.with_(model=TINY.model.with_(attention="prefix_lm"))


@pytest.fixture(scope="module")
def parts():
    return load_profile("tiny", verbose=False)


@pytest.fixture(scope="module")
def batch(parts):
    scenes = shapes.generate("train", 3, seed=5)
    with torch.no_grad():
        feats = features.spec_features(parts.vision, pixel_tensor([s.render() for s in scenes]), TINY.model)
    captions = [scenes[0].caption, " ".join(scenes[1].caption.split()[:3]), scenes[2].caption]  # one padded
    ids, mask = tokenize_captions(parts.tokenizer, captions, TINY.model.max_caption_tokens)
    return feats, ids, mask


@pytest.fixture(scope="module")
def models(parts, randomize_lora):
    """The same bridge twice, one per mask: the same seed gives the same weights, LoRA made non-zero
    (large enough that the two masks' greedy captions differ)."""
    causal = VisionGPT2.from_parts(parts, random_seed=0)
    open_ = VisionGPT2.from_parts(replace(parts, profile=PREFIX_LM), random_seed=0)
    for model in (causal, open_):
        randomize_lora(model, scale=0.2)
        model.eval()
    for a, b in zip(causal.state_dict().values(), open_.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    return causal, open_


def test_open_prefix_opens_the_image_block_only():
    mask = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
    causal = masks.attention_bias(mask)  # (B, L, L)
    opened = masks.open_prefix(causal, 3)
    assert (opened[:, :3, :3] == 0).all()  # every image slot sees every image slot
    assert torch.equal(opened[:, 3:], causal[:, 3:])  # caption rows (and padding rows) as they were
    assert torch.equal(opened[:, :3, 3:], causal[:, :3, 3:])  # the image never sees the caption
    assert (causal[:, 0, 1:3] == float("-inf")).all()  # the causal bias hid them: the test can fail


def test_prefix_lm_changes_the_prefix_slots_and_keeps_the_caption_causal(models, batch):
    causal, open_ = models
    feats, ids, mask = batch
    n = feats.shape[1]
    with torch.no_grad():
        a = causal(ids, mask, features=feats, with_loss=False).logits  # (B, N + T, V)
        b = open_(ids, mask, features=feats, with_loss=False).logits
        changed = ids.clone()
        changed[0, -2] = ids[0, 1]  # caption 0's last word swapped for another token
        c = open_(changed, mask, features=feats, with_loss=False).logits
    moved = (a[:, :n] - b[:, :n]).abs().amax(-1)  # (B, N)
    assert (moved[:, : n - 1] > 1e-3).all()  # every prefix slot but the last computes something else
    assert not torch.allclose(a[:, n:], b[:, n:], atol=1e-4)  # and the caption reads it
    last = n + ids.shape[1] - 2  # the swapped position
    assert torch.allclose(b[0, :last], c[0, :last], atol=1e-5)  # nothing before it sees it: still causal
    assert not torch.allclose(b[0, last:], c[0, last:], atol=1e-3)


def test_prefix_lm_padded_batch_equals_each_caption_alone(models, batch):
    _, open_ = models
    feats, ids, mask = batch
    n = feats.shape[1]
    with torch.no_grad():
        together = open_(ids, mask, features=feats, with_loss=False).logits
        for i in range(ids.shape[0]):
            real = int(mask[i].sum())
            alone = open_(ids[i : i + 1, :real], mask[i : i + 1, :real], features=feats[i : i + 1], with_loss=False)
            assert torch.allclose(together[i, : n + real], alone.logits[0], atol=1e-4)


def test_prefix_lm_greedy_with_the_cache_equals_the_sequence_run_again(models, batch):
    causal, open_ = models
    feats, _, _ = batch
    with torch.no_grad():
        prefix = open_.visual_prefix(features=feats)
    fast = generate.decode_greedy(open_, prefix, max_new_tokens=8)
    ones = prefix.new_ones(prefix.shape[0], prefix.shape[1] + 8, dtype=torch.long)  # room for 8 new tokens
    slow = generate.greedy(open_.lm, prefix, open_.tokenizer.eos_token_id, 8, kv_cache=False,
                           bias=lambda n: open_.attention_bias(ones[:, :n], prefix.shape[1]))  # fmt: skip
    assert fast == slow
    assert fast != generate.decode_greedy(causal, prefix, max_new_tokens=8)  # the mask matters here


def test_hugging_face_generate_refuses_a_prefix_lm_bridge(models, batch):
    _, open_ = models
    feats, _, _ = batch
    with pytest.raises(ValueError, match="prefix-LM bridge decodes greedily"):
        generate.generate_captions(open_, features=feats, num_beams=3)
