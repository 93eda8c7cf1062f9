"""Every stage is a plug-in: the notebooks' worked solutions, put into the model one at a time in place
of the package's stage, train and caption exactly as the package does, bit for bit.

Both models start from the same bridge (the learner's LoRA layers get the package's starting values),
so the only difference left is the stage's arithmetic."""

import pytest
import torch
from notebook_exercises import exercise_solution

from vgpt import bridge, features, generate
from vgpt.config import TINY
from vgpt.loading import load_profile
from vgpt.model import VisionGPT2
from vgpt.train import CaptionData, train
from vgpt.world import shapes
from vgpt.world.vision import pixel_tensor

# stage -> (notebook, the exercise whose signature it has)
EXERCISES = {
    "projector": ("02_projector", "mlp_projector"),
    "calibration": ("02_projector", "rms_scale"),
    "prefix_inputs": ("03_prefix_concatenation", "prefix_inputs"),
    "attention_bias": ("04_joint_attention_mask", "attention_bias"),
    "position_ids": ("04_joint_attention_mask", "position_ids"),
    "lora_layer": ("05_lora_injection", "lora_conv1d"),
    "schedule": ("06_training", "warmup_cosine"),
    "train_step": ("06_training", "train_step"),
    "decode": ("07_generation", "greedy_with_kv_cache"),
}
RECIPE = TINY.train.with_(epochs=2, batch_size=16, warmup_steps=3)  # 8 steps: warmup, then the cosine


@pytest.fixture(scope="module")
def parts():
    return load_profile("tiny", verbose=False)


@pytest.fixture(scope="module")
def scenes_and_features(parts):
    scenes = shapes.generate("train", 64, seed=3)
    with torch.no_grad():
        feats = features.spec_features(parts.vision, pixel_tensor([s.render() for s in scenes]), TINY.model)
    return scenes, feats


def run(parts, scenes_and_features, stages: dict) -> tuple[list[torch.Tensor], list[str]]:
    """Train a bridge with these stages (from the package's start), caption the training scenes."""
    scenes, feats = scenes_and_features
    start = VisionGPT2.from_parts(parts, random_seed=0)
    model = VisionGPT2.from_parts(parts, stages=stages, random_seed=0)
    with torch.no_grad():
        model.projector.load_state_dict(start.projector.state_dict())
        mine, theirs = bridge.adapter_state(model), bridge.adapter_state(start)
        for key, tensor in mine.items():
            tensor.copy_(theirs[key])
    row = {f"s{i}": i for i in range(len(scenes))}
    model.calibrate_projector(feats)
    data = CaptionData([(f"s{i}", s.caption) for i, s in enumerate(scenes)], lambda ids: feats[[row[i] for i in ids]])
    history = train(model, data, RECIPE, device="cpu", progress=False, checkpoint_every=None)
    captions = generate.generate_captions(model, features=feats)[0]
    return [p.detach().clone() for p in model.trainable_parameters()], captions, history["step_loss"]


@pytest.fixture(scope="module")
def package_run(parts, scenes_and_features):
    return run(parts, scenes_and_features, {})


@pytest.mark.parametrize("stage", list(EXERCISES))
def test_a_worked_solution_stands_in_for_its_stage_bit_for_bit(stage, parts, scenes_and_features, package_run):
    learner = exercise_solution(*EXERCISES[stage])
    weights, captions, losses = run(parts, scenes_and_features, {stage: learner})
    expected_weights, expected_captions, expected_losses = package_run
    assert losses == expected_losses
    assert len(weights) == len(expected_weights)
    assert all(torch.equal(a, b) for a, b in zip(weights, expected_weights)), f"{stage}: the bridge trained differently"
    assert captions == expected_captions


def test_the_package_run_learned_something(package_run):
    """So that the equality above compares trained bridges, not two untouched ones."""
    _, captions, losses = package_run
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0]
    assert all(c.startswith("a ") for c in captions)  # the caption language, read off the prefix


def test_negative_control_a_wrong_stage_changes_the_result(parts, scenes_and_features, package_run):
    """Positions counted from 1, an off-by-one warmup: each trains another bridge."""
    wrong_positions = lambda mask: mask.long().cumsum(-1).clamp(max=mask.shape[1] - 1)  # noqa: E731
    wrong_warmup = lambda step, total, warmup: step / warmup if step < warmup else 1.0  # noqa: E731
    for stage, fn in (("position_ids", wrong_positions), ("schedule", wrong_warmup)):
        weights, _, _ = run(parts, scenes_and_features, {stage: fn})
        assert not all(torch.equal(a, b) for a, b in zip(weights, package_run[0])), (
            f"{stage}: the wrong one went unseen"
        )


def test_unknown_stage_names_are_refused(parts):
    with pytest.raises(ValueError, match="unknown stage.*the stages are projector"):
        VisionGPT2.from_parts(parts, stages={"projecter": lambda *a: None})
