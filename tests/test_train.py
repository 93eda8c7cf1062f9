"""Stage 06: the loss falls, only the bridge moves, and an interrupted run resumes exactly."""

import json
from pathlib import Path

import pytest
import torch

from vgpt import features, loading
from vgpt import train as train_module
from vgpt.bridge import finished_run
from vgpt.config import SEED, TINY, UserError
from vgpt.model import VisionGPT2
from vgpt.scale.standins import gpt2_tokenizer
from vgpt.train import CHECKPOINT, CaptionData, TrainConfig, epoch_batches, epoch_order, train, validation_loss
from vgpt.world import shapes
from vgpt.world.vision import pixel_tensor


@pytest.fixture(scope="module")
def data():
    parts = loading.load_profile("tiny", verbose=False)
    scenes = shapes.generate("train", 384, seed=0)
    feats = features.extract_features(parts.vision, pixel_tensor([s.render() for s in scenes]))
    index = {f"s{i}": i for i in range(len(scenes))}
    source = lambda ids: feats[[index[i] for i in ids]]  # noqa: E731
    pairs = [(f"s{i}", s.caption) for i, s in enumerate(scenes)]
    return CaptionData(pairs[:320], source), CaptionData(pairs[320:], source)


def fresh_model():
    torch.manual_seed(0)
    return VisionGPT2.from_parts(loading.load_profile("tiny", verbose=False))


CONFIG = TrainConfig(epochs=2, batch_size=32, lr_projector=2e-3, lr_lora=2e-3, warmup_steps=5, seed=3)


def test_loss_falls_and_only_the_bridge_moves(data):
    model = fresh_model()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = validation_loss(model, data[1], CONFIG, torch.device("cpu"), None)
    history = train(model, data[0], CONFIG, val_data=data[1], progress=False)
    losses = history["step_loss"]
    assert len(losses) == 20  # 320 pairs / 32 x 2 epochs
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert history["epochs"][1]["val_loss"] < 0.9 * before  # it learned something that holds out of sample
    now = dict(model.named_parameters())
    assert all(torch.equal(now[n], p) for n, p in frozen.items())


def test_data_order_is_fixed_by_seed_and_epoch():
    assert epoch_order(50, 1, 0) == epoch_order(50, 1, 0)
    assert epoch_order(50, 1, 0) != epoch_order(50, 1, 1)
    assert sorted(epoch_order(50, 1, 0)) == list(range(50))


def test_interrupted_run_resumes_with_the_same_losses(data, tmp_path):
    straight = train(fresh_model(), data[0], CONFIG, run_dir=tmp_path / "a", progress=False)["step_loss"]

    def interrupt(step, loss):
        if step == 13:  # mid-way through the second epoch
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(fresh_model(), data[0], CONFIG, run_dir=tmp_path / "b", on_step=interrupt, progress=False)
    saved = json.loads((tmp_path / "b" / CHECKPOINT / "trainer_state.json").read_text())
    assert (saved["epoch"], saved["step"]) == (1, 13)
    assert not (tmp_path / "b" / (CHECKPOINT + ".partial")).exists()
    assert not list((tmp_path / "b").rglob("*.pt")) and not list((tmp_path / "b").rglob("*.bin"))
    resumed = train(fresh_model(), data[0], CONFIG, run_dir=tmp_path / "b", resume=True, progress=False)["step_loss"]
    assert len(resumed) == len(straight)
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(straight), atol=1e-6, rtol=1e-5)


KILLED_MID_EPOCH = """
import os, signal, sys, torch
from vgpt import features, loading
from vgpt.model import VisionGPT2
from vgpt.train import CaptionData, TrainConfig, train
from vgpt.world import shapes
from vgpt.world.vision import pixel_tensor

parts = loading.load_profile("tiny", verbose=False)
scenes = shapes.generate("train", 384, seed=0)
feats = features.extract_features(parts.vision, pixel_tensor([s.render() for s in scenes]))
index = {f"s{i}": i for i in range(len(scenes))}
pairs = [(f"s{i}", s.caption) for i, s in enumerate(scenes)][:320]
torch.manual_seed(0)
model = VisionGPT2.from_parts(parts)
config = TrainConfig(epochs=2, batch_size=32, lr_projector=2e-3, lr_lora=2e-3, warmup_steps=5, seed=3)

def die(step, loss):  # no cleanup, no KeyboardInterrupt: as a dropped Colab runtime
    if step == 8:
        os.kill(os.getpid(), signal.SIGKILL)

train(model, CaptionData(pairs, lambda ids: feats[[index[i] for i in ids]]), config, run_dir=sys.argv[1],
      on_step=die, progress=False, checkpoint_every=3)
"""


def test_run_killed_mid_epoch_resumes_from_its_last_step_checkpoint_with_the_same_losses(data, tmp_path):
    """Checkpoints every 3 steps; SIGKILL at step 8 of a 10-step epoch; resume = a straight run."""
    import subprocess
    import sys

    straight = train(fresh_model(), data[0], CONFIG, progress=False)["step_loss"]
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_EPOCH, str(run)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    saved = json.loads((run / CHECKPOINT / "trainer_state.json").read_text())
    assert (saved["epoch"], saved["batch"], saved["step"]) == (0, 6, 6)  # mid-epoch, not an epoch end
    resumed = train(fresh_model(), data[0], CONFIG, run_dir=run, resume=True, progress=False)["step_loss"]
    assert len(resumed) == len(straight) == 20
    torch.testing.assert_close(torch.tensor(resumed), torch.tensor(straight), atol=1e-6, rtol=1e-5)


def test_checkpoint_every_counts_steps_or_minutes():
    from vgpt.bridge import Checkpointer

    by_steps = Checkpointer(None, 3)
    assert [s for s in range(1, 10) if by_steps.due(s)] == [3, 6, 9]
    by_time = Checkpointer(None, "10min")
    assert not by_time.due(1)
    by_time.last -= 601
    assert by_time.due(2)
    assert not Checkpointer(None, None).due(5)


def test_resume_without_a_checkpoint_is_a_clear_error(data, tmp_path):
    with pytest.raises(UserError, match="nothing to resume"):
        train(fresh_model(), data[0], CONFIG, run_dir=tmp_path, resume=True, progress=False)


def test_gradient_accumulation_steps_once_per_group(data):
    config = CONFIG.with_(batch_size=16, grad_accum=2)
    steps = []
    history = train(fresh_model(), data[0], config, on_step=lambda step, loss: steps.append(step), progress=False)
    assert steps == list(range(1, 21))  # 320 pairs / (16 x 2) = 10 steps per epoch
    assert sum(history["step_loss"][-5:]) < 0.8 * sum(history["step_loss"][:5])


def test_demo_quick_writes_its_run_folder(tmp_path):
    import subprocess
    import sys

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "vgpt",
            "demo",
            "--quick",
            "--out",
            str(tmp_path / "run"),
            "--cache",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    folder = tmp_path / "run"
    for name in ("metrics.json", "loss.png", "captions.png", "bridge/bridge.json", "checkpoint/trainer_state.json"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "metrics.json").read_text())
    assert set(summary["results"]) == {"test", "compositional"}
    steps = json.loads((folder / "checkpoint" / "trainer_state.json").read_text())["step_loss"]
    assert len(steps) == 32  # 2,000 scenes at batch 64, one epoch
    assert sum(steps[-5:]) / 5 < 0.8 * steps[0]  # it learned: 1.66 at the first step, near 0.8 at the end
    assert "exact_match" in run.stdout and "compositional" in run.stdout


def test_full_size_seed_model_takes_one_training_step_on_cpu(seed_random):
    """The seed's architectures (random weights), the real loop, batch 1, pixels through ViT-L/14."""

    vision, lm = seed_random
    tokenizer = gpt2_tokenizer(Path(__file__).parent / "fixtures" / "gpt2-bpe")  # GPT-2's own BPE
    parts = loading.Parts(SEED, tokenizer, None, vision, lm)
    torch.manual_seed(0)
    model = VisionGPT2.from_parts(parts)
    shapes_seen = []

    def from_pixels(ids):
        feats = model.features(torch.randn(len(ids), 3, 224, 224))
        shapes_seen.append(tuple(feats.shape))
        return feats

    config = SEED.train.with_(epochs=1, batch_size=1)
    bridge = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    history = train(
        model, CaptionData([("img", "a red circle left of a blue square")], from_pixels), config, progress=False
    )
    assert shapes_seen == [(1, 257, 1024)]
    assert len(history["step_loss"]) == 1 and history["step_loss"][0] > 0
    moved = [n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, bridge[n])]
    assert any(n.startswith("projector") for n in moved)
    # LoRA B starts at zero, so one step moves B (A's gradient is zero at B = 0)
    assert sum("lora_B" in n for n in moved) == 12 and not any("lora_A" in n for n in moved)


@pytest.mark.slow
def test_compiled_training_takes_the_same_steps(data):
    """`compile=True` (torch.compile of GPT-2's body) changes the speed, not the losses."""
    small = CaptionData(data[0].pairs[:64], data[0].features)
    losses = []
    for compiled in (False, True):
        config = CONFIG.with_(epochs=1, compile=compiled)
        losses.append(train(fresh_model(), small, config, progress=False)["step_loss"])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)


def test_epoch_batches_are_the_batches_train_steps_on(data, monkeypatch):
    pairs = data[0].pairs
    batches = epoch_batches(data[0], CONFIG, epoch=1)
    assert [len(b) for b in batches] == [32] * 10
    assert sorted(p for b in batches for p in b) == sorted(pairs)  # every pair once
    assert batches != epoch_batches(data[0], CONFIG, epoch=0)  # each epoch its own order
    seen = []
    model = fresh_model()
    real = train_module.batch_inputs

    def spy(model, chunk, *args):
        seen.append(list(chunk))
        return real(model, chunk, *args)

    monkeypatch.setattr(train_module, "batch_inputs", spy)
    train(model, CaptionData(pairs[:64], data[0].features), CONFIG.with_(epochs=1), progress=False)
    assert seen == epoch_batches(CaptionData(pairs[:64], data[0].features), CONFIG.with_(epochs=1), 0)


def test_finished_run_only_for_the_same_config_all_epochs_done(data, tmp_path):
    config = CONFIG.with_(epochs=1)
    small = CaptionData(data[0].pairs[:64], data[0].features)
    assert not finished_run(tmp_path / "run", config)  # nothing there
    assert not finished_run(None, config)
    train(fresh_model(), small, config, run_dir=tmp_path / "run", progress=False)
    assert finished_run(tmp_path / "run", config)
    assert not finished_run(tmp_path / "run", config.with_(epochs=2))  # more epochs to go
    assert not finished_run(tmp_path / "run", config.with_(lr_lora=1e-3))  # another run
    model = fresh_model()
    history = train(model, small, config, run_dir=tmp_path / "run", resume=True, progress=False)
    assert len(history["step_loss"]) == 2 and len(history["epochs"]) == 1  # loaded, no step taken


def test_training_folder_is_written_once_whole(tmp_path, monkeypatch):
    from vgpt.course import notebook

    monkeypatch.setattr(notebook, "RUNS", tmp_path)
    profile = TINY
    folder = notebook.training_folder(profile, n=12)
    assert (folder / "captions.txt").read_text().count("\n") == 13  # header + 12 captions
    assert len(list((folder / "Images").glob("*.png"))) == 12
    assert not list(tmp_path.rglob("*.partial"))
    stamp = (folder / "captions.txt").stat().st_mtime_ns
    assert notebook.training_folder(profile, n=12) == folder
    assert (folder / "captions.txt").stat().st_mtime_ns == stamp  # a rerun reuses it
