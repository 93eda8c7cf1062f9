"""The lean training forward (head on caption slots only, fused GELU) equals the plain one: loss and
gradients; and the demo benchmark compares the profile's recipe with the demo's in a quick mode."""

import pytest
import torch

from vgpt import loading
from vgpt.model import VisionGPT2
from vgpt.prefix import tokenize_captions
from vgpt.speedups import caption_tokens_forward, fuse_gelu
from vgpt.world.demo import RECIPES

CAPTIONS = ["a red circle", "a big blue square above a small green triangle", "two", "a small yellow triangle"]


@pytest.fixture
def model(randomize_lora):
    torch.manual_seed(0)
    built = VisionGPT2.from_parts(loading.load_profile("tiny", verbose=False)).eval()
    return randomize_lora(built, seed=0, scale=0.02)  # LoRA B nonzero: every trainable tensor has a gradient


def gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_lean_loss_and_gradients_equal_the_plain_ones(model):
    features = torch.randn(4, 17, 128) * 3
    ids, mask = tokenize_captions(model.tokenizer, CAPTIONS, 24)
    assert len(set(mask.sum(1).tolist())) >= 3  # captions of different lengths: padding is masked
    plain = model(ids, mask, features=features)
    g_plain = gradients(model, plain.loss)
    assert fuse_gelu(model.lm) == 4  # one per GPT-2 block
    lean = caption_tokens_forward(model, ids, mask, features)
    n = features.shape[1]
    real = mask.bool()  # padding slots' logits may differ
    torch.testing.assert_close(lean.logits[real], plain.logits[:, n - 1 : -1][real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lean.loss, plain.loss, atol=1e-6, rtol=1e-6)
    g_lean = gradients(model, lean.loss)
    assert len(g_plain) == len(list(model.trainable_parameters())) > 20
    for name, g in g_plain.items():
        assert g.abs().max() > 0, name
        torch.testing.assert_close(g_lean[name], g, atol=1e-6, rtol=1e-4, msg=name)


def test_the_comparison_can_fail(model):
    """Negative control: the head one slot late (each slot predicting its own token) gives another loss."""
    features = torch.randn(4, 17, 128) * 3
    ids, mask = tokenize_captions(model.tokenizer, CAPTIONS, 24)
    with torch.no_grad():
        plain = model(ids, mask, features=features)
        late = torch.nn.functional.cross_entropy(
            plain.logits[:, 17:].flatten(0, 1), ids.masked_fill(mask == 0, -100).flatten()
        )
    assert abs(late.item() - plain.loss.item()) > 1e-2


def test_demo_bench_quick_prints_a_seeds_by_recipes_table(tmp_path):
    from vgpt.bench.demo import run_demo_bench

    lines = []
    figures = run_demo_bench(n_train=64, n_eval=8, seeds=(0, 1), cache_root=tmp_path / "features", log=lines.append)
    profile, fast = figures["recipes"]["profile"], figures["recipes"]["fast"]
    assert profile["steps"] == 7 and fast["steps"] == RECIPES["fast"].epochs  # one batch an epoch
    assert fast["lean_forward"] and not profile["lean_forward"]
    assert sorted(profile["runs"]) == sorted(fast["runs"]) == [0, 1]  # every recipe on every seed
    assert 0 < figures["ratio"] == fast["seconds"] / profile["seconds"]
    assert fast["seconds"] == (fast["runs"][0]["seconds"] + fast["runs"][1]["seconds"]) / 2
    assert figures["threads"] == 1  # pinned, not by the load
    header, rows = lines[1], [line for line in lines if line.startswith(("profile ", "fast "))]
    assert "seed 0" in header and "seed 1" in header and len(rows) == 2
    for row, recipe in zip(rows, (profile, fast)):
        for seed in (0, 1):
            assert f"{recipe['runs'][seed]['test_exact_match']:6.1%}" in row
    assert lines[-1].startswith("ratio fast / profile: ")


def test_training_with_the_lean_forward_takes_the_same_steps():
    """Through `train()` (fused GELU swapped in, validation loss too): the same losses, step by step."""
    from vgpt.train import CaptionData, TrainConfig, train

    g = torch.Generator().manual_seed(0)
    table = {f"img{i}": torch.randn(17, 128, generator=g) * 3 for i in range(8)}
    pairs = [(f"img{i % 8}", CAPTIONS[i % 4]) for i in range(32)]
    data = CaptionData(pairs, lambda images: torch.stack([table[i] for i in images]))
    config = TrainConfig(epochs=2, batch_size=8, lr_projector=2e-3, lr_lora=2e-3, warmup_steps=2, shared_prefix=False)
    runs = []
    for lean in (False, True):
        torch.manual_seed(0)
        model = VisionGPT2.from_parts(loading.load_profile("tiny", verbose=False))
        history = train(model, data, config.with_(lean_forward=lean), val_data=data, progress=False)
        runs.append([*history["step_loss"], *(e["val_loss"] for e in history["epochs"])])
    assert len(runs[0]) == 10
    assert runs[1] == pytest.approx(runs[0], rel=1e-4)
    assert runs[0][-1] < runs[0][0]  # it trains: the comparison is not of two constants
