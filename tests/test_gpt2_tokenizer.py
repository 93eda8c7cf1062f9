"""The seed's tokenizer is GPT-2's real BPE (50,257 tokens, end-of-text 50256, no pad token), built offline
from the published vocabulary in tests/fixtures/gpt2-bpe/, and the caption code paths work with it."""

import hashlib
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from vgpt import config, loading
from vgpt.model import VisionGPT2
from vgpt.prefix import caption_labels, tokenize_captions
from vgpt.scale import standins

BPE = Path(__file__).parent / "fixtures" / "gpt2-bpe"
CAPTIONS = ["A black dog is running through the grass .", "Two children play on a beach ."]


@pytest.fixture(scope="module")
def tokenizer():
    return standins.gpt2_tokenizer(BPE)


def test_fixture_files_are_gpt2s_published_vocabulary():
    sha = {name: hashlib.sha256((BPE / name).read_bytes()).hexdigest() for name in ("encoder.json", "vocab.bpe")}
    assert sha == {
        "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
        "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
    }


def test_gpt2_tokenizer_has_gpt2s_vocabulary_and_specials(tokenizer):
    assert len(tokenizer) == tokenizer.vocab_size == 50257
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.eos_token_id == 50256
    assert tokenizer.pad_token is None and tokenizer.pad_token_id is None
    assert tokenizer("Hello world").input_ids == [15496, 995]
    assert tokenizer(" the").input_ids == [262]
    assert tokenizer("a dog<|endoftext|>").input_ids[-1] == 50256


@pytest.mark.parametrize(
    "text",
    [
        "A child in a pink dress is climbing up a set of stairs in an entry way .",
        "  two spaces,  tabs\tand\nnewlines",
        "café naïve Ünïcödé 日本語 🐕",
        "it's 3.14 o'clock, isn't it?",
    ],
)
def test_gpt2_tokenizer_round_trips_text(tokenizer, text):
    ids = tokenizer(text).input_ids
    assert max(ids) < 50256 and tokenizer.decode(ids) == text


def test_saved_and_reloaded_like_the_hub_copy(tokenizer, tmp_path):
    """What `.ci/seed_notebooks.py` does: save under a folder, reload with AutoTokenizer, same ids."""
    tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert len(again) == 50257 and again.pad_token_id is None and again.eos_token_id == 50256
    assert again(CAPTIONS).input_ids == tokenizer(CAPTIONS).input_ids


def test_a_folder_without_the_vocabulary_is_a_clear_error(tmp_path):
    with pytest.raises(loading.ProfileUnavailable, match="cannot read GPT-2's encoder.json"):
        standins.gpt2_tokenizer(tmp_path)


def test_captions_end_in_end_of_text_and_pad_with_it(tokenizer):
    ids, mask = tokenize_captions(tokenizer, CAPTIONS, max_tokens=40)
    lengths = mask.sum(1)
    short = tokenizer(CAPTIONS[1]).input_ids
    assert ids.shape == (2, lengths.max()) and lengths.tolist() == [len(tokenizer(c).input_ids) + 1 for c in CAPTIONS]
    assert ids[1, : len(short)].tolist() == short
    assert (ids[mask == 0] == 50256).all()  # padded with end-of-text: GPT-2 has no pad token
    assert all(ids[i, n - 1] == 50256 for i, n in enumerate(lengths.tolist()))
    labels = caption_labels(ids, mask, n_prefix=3)
    for i, n in enumerate(lengths.tolist()):
        assert labels[i, 3 + n - 1] == 50256  # the caption's own end-of-text is a label, not masked as padding
        assert (labels[i, 3 + n :] == -100).all() and (labels[i, :3] == -100).all()
    cut, _ = tokenize_captions(tokenizer, [CAPTIONS[0]], max_tokens=4)
    assert cut[0].tolist() == tokenizer(CAPTIONS[0]).input_ids[:3] + [50256]


@pytest.mark.slow
def test_seed_architecture_takes_a_step_on_gpt2_tokens(seed_random, tokenizer):
    """Full-size seed (random weights) with the real tokenizer: two captions forward and backward."""
    vision, lm = seed_random
    parts = loading.Parts(config.SEED, tokenizer, None, vision, lm)
    torch.manual_seed(0)
    model = VisionGPT2.from_parts(parts)
    ids, mask = tokenize_captions(tokenizer, CAPTIONS, model.spec.max_caption_tokens)
    out = model(ids, mask, features=torch.randn(2, 257, 1024))
    assert out.logits.shape == (2, 257 + ids.shape[1], 50257) and torch.isfinite(out.loss)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for n, g in grads.items() if n.startswith("projector"))
    assert sum("lora_A" in n for n in grads) == 12  # c_attn in each of GPT-2's 12 blocks
