"""Stage 07: the hand-written greedy loop equals `generate`, the cache changes nothing, captions stop."""

import pytest
import torch

from vgpt import generate, loading
from vgpt.model import VisionGPT2
from vgpt.world import shapes
from vgpt.world.vision import pixel_tensor


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VisionGPT2.from_parts(loading.load_profile("tiny", verbose=False)).eval()


@pytest.fixture(scope="module")
def pixels():
    return pixel_tensor([s.render() for s in shapes.generate("test", 6, seed=4)])


@pytest.fixture
def perturbed(model, randomize_lora):
    """LoRA B non-zero, so that the adapters change which tokens win; put back afterwards."""
    saved = {n: p.detach().clone() for n, p in model.lm.named_parameters() if "lora_B" in n}
    randomize_lora(model.lm, seed=1)
    yield model
    with torch.no_grad():
        for n, p in model.lm.named_parameters():
            if n in saved:
                p.copy_(saved[n])


def test_hand_written_greedy_equals_generate(perturbed, pixels):
    prefix = perturbed.visual_prefix(pixel_values=pixels).detach()
    mine = generate.greedy(perturbed.lm, prefix, perturbed.tokenizer.eos_token_id, max_new_tokens=16)
    theirs = generate.generate_ids(perturbed, prefix, max_new_tokens=16)
    assert mine == theirs
    assert len({tuple(r) for r in mine}) > 1  # the rows differ: the prefix is read


def test_kv_cache_changes_nothing(perturbed, pixels):
    prefix = perturbed.visual_prefix(pixel_values=pixels).detach()
    eos = perturbed.tokenizer.eos_token_id
    assert generate.greedy(perturbed.lm, prefix, eos, 16, kv_cache=True) == generate.greedy(
        perturbed.lm, prefix, eos, 16, kv_cache=False
    )


def test_generation_stops_at_end_of_text(model):
    """With end-of-text as the only 'prefix', GPT-2 writes a whole caption and stops."""
    eot = model.tokenizer.eos_token_id
    prefix = model.token_embeddings(torch.full((4, 1), eot))
    rows = generate.generate_ids(model, prefix, max_new_tokens=20, do_sample=True, seed=0)
    assert all(row[-1] == eot and eot not in row[:-1] for row in rows)
    assert generate.greedy(model.lm, prefix, eot, 20) == generate.generate_ids(model, prefix, 20)
    texts = generate.decode(model, rows)
    grammar = shapes.caption_distribution()
    assert all(t in grammar for t in texts), texts


def test_ended_flags_follow_the_length_limit(perturbed, pixels):
    eot = perturbed.tokenizer.eos_token_id
    prefix = perturbed.visual_prefix(pixel_values=pixels).detach()
    rows = generate.generate_ids(perturbed, prefix, max_new_tokens=3)
    texts, ended = generate.generate_captions(perturbed, pixel_values=pixels, max_new_tokens=3)
    assert ended == [row[-1] == eot for row in rows]
    assert all(len(row) == 3 for row, e in zip(rows, ended) if not e)
    assert not any("<|endoftext|>" in t for t in texts)


def test_beam_and_sampling_share_the_batch_api(model, pixels):
    feats = model.features(pixels)
    beams, _ = generate.generate_captions(model, features=feats, num_beams=3)
    assert len(beams) == 6
    a, _ = generate.generate_captions(model, features=feats, do_sample=True, top_p=0.9, temperature=1.2, seed=5)
    b, _ = generate.generate_captions(model, features=feats, do_sample=True, top_p=0.9, temperature=1.2, seed=5)
    c, _ = generate.generate_captions(
        model, features=feats, do_sample=True, top_k=5, seed=6, repetition_penalty=1.3, no_repeat_ngram_size=2
    )
    assert a == b and len(c) == 6
    for text in c:  # no 2-gram repeats
        words = text.split()
        pairs = list(zip(words, words[1:]))
        assert len(pairs) == len(set(pairs)), text
