"""Shared-prefix training equals the plain one-caption-per-sequence computation: loss, logits, gradients."""

import pytest
import torch

from vgpt import loading
from vgpt.model import VisionGPT2
from vgpt.prefix import tokenize_captions
from vgpt.speedups import group_by_image, shared_prefix_forward
from vgpt.train import CaptionData, TrainConfig, caption_order, train

CAPTIONS = [
    "a red circle",
    "a big blue square above a small green triangle",
    "two",
    "a red circle left of a blue square",
    "a small yellow triangle",
    "purple",
]
IMAGES = ["b", "a", "b", "c", "a", "b"]  # 3 images with 2, 3 and 1 captions, in mixed order


@pytest.fixture
def trained_looking_model(randomize_lora):
    """Builds the tiny model with LoRA B nonzero, so that every trainable tensor has a gradient."""

    def build():
        torch.manual_seed(0)
        model = VisionGPT2.from_parts(loading.load_profile("tiny", verbose=False)).eval()
        return randomize_lora(model, seed=0, scale=0.02)

    return build


def gradients(model, loss):
    model.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_group_by_image():
    images, owner = group_by_image(IMAGES)
    assert images == ["b", "a", "c"]
    assert owner.tolist() == [0, 1, 0, 2, 1, 0]


def test_shared_prefix_loss_logits_and_gradients_equal_the_plain_ones(trained_looking_model):
    model = trained_looking_model()
    features = torch.randn(3, 17, 128) * 3
    _, owner = group_by_image(IMAGES)
    ids, mask = tokenize_captions(model.tokenizer, CAPTIONS, 24)
    assert len(set(mask.sum(1).tolist())) > 3  # captions of different lengths
    plain = model(ids, mask, features=features[owner])
    shared = shared_prefix_forward(model, ids, mask, owner, features=features)
    n = features.shape[1]
    assert shared.logits.shape == (6, 1 + ids.shape[1], model.spec.vocab_size)
    real = torch.cat([torch.ones(6, 1, dtype=torch.bool), mask.bool()], dim=1)  # padding rows may differ
    torch.testing.assert_close(shared.logits[real], plain.logits[:, n - 1 :][real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(shared.loss, plain.loss, atol=1e-6, rtol=1e-6)
    g_plain, g_shared = gradients(model, plain.loss), gradients(model, shared.loss)
    assert len(g_plain) == len(list(model.trainable_parameters())) > 20
    for name, g in g_plain.items():
        assert g.abs().max() > 0, name
        torch.testing.assert_close(g_shared[name], g, atol=1e-6, rtol=1e-4, msg=name)


def test_a_wrong_owner_changes_the_loss(trained_looking_model):
    """The comparison above can fail: captions read from the wrong image give another loss."""
    model = trained_looking_model()
    features = torch.randn(3, 17, 128) * 3
    ids, mask = tokenize_captions(model.tokenizer, CAPTIONS, 24)
    _, owner = group_by_image(IMAGES)
    with torch.no_grad():
        right = shared_prefix_forward(model, ids, mask, owner, features=features).loss
        wrong = shared_prefix_forward(model, ids, mask, owner.roll(1), features=features).loss
    assert abs(right.item() - wrong.item()) > 1e-3


def test_grouped_order_keeps_captions_of_an_image_together():
    pairs = list(zip(IMAGES, CAPTIONS))
    order = caption_order(pairs, seed=0, epoch=1, grouped=True)
    assert sorted(order) == list(range(6))
    runs = [IMAGES[i] for i in order]
    assert len([k for k in range(6) if k == 0 or runs[k] != runs[k - 1]]) == 3  # 3 contiguous blocks


def test_training_with_and_without_sharing_takes_the_same_steps(trained_looking_model):
    features = torch.randn(3, 17, 128) * 3
    index = {"a": 0, "b": 1, "c": 2}
    data = CaptionData(list(zip(IMAGES, CAPTIONS)) * 4, lambda ids: features[[index[i] for i in ids]])
    histories, weights = [], []
    for shared in (False, True):
        model = trained_looking_model()
        config = TrainConfig(
            epochs=2, batch_size=5, lr_projector=1e-3, lr_lora=1e-3, warmup_steps=2, shared_prefix=shared
        )
        histories.append(train(model, data, config, progress=False)["step_loss"])
        weights.append(torch.cat([p.detach().flatten() for p in model.trainable_parameters()]))
    assert len(histories[0]) == 10
    assert histories[1] == pytest.approx(histories[0], rel=1e-4)
    torch.testing.assert_close(weights[1], weights[0], atol=1e-5, rtol=1e-4)


def test_bench_runs_and_counts_less_work_for_each_lever():
    """The benchmark itself (on the tiny models, one repeat): every variant runs and is FLOP-counted."""
    from vgpt.bench.speed import run_bench

    lines = []
    figures = run_bench("tiny", images=2, gen_images=2, new_tokens=5, repeats=1, log=lines.append)
    train = list(figures["training"].values())
    assert [t["gflops_per_image"] > 0 for t in train] == [True] * 3
    assert train[0]["gflops_per_image"] > train[1]["gflops_per_image"] > train[2]["gflops_per_image"]
    gen = list(figures["generation"].values())
    assert len(gen) == 4 and all(0 < g["tokens"] <= 2 * 5 for g in gen)
    assert len({g["tokens"] for g in gen}) == 1  # every variant wrote the same number of tokens
    memory = figures["memory"]["peak_bytes"]
    assert memory["(c) cached + shared prefix"][8] < memory["(b) cached features"][8]
    assert any(line.startswith("device: CPU") for line in lines)
