"""`torchrun` with two gloo processes on the CPU: the same bridge as one process, a run killed
mid-epoch resumes, and rank 0 alone writes and prints."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from vgpt.scale import distributed
from vgpt.world import shapes

# One process sums a batch's token losses in one go; two processes each sum half and DDP averages the
# gradients: the same arithmetic in another order. In float32 that differs in the last bits, and
# AdamW's division by sqrt(v) can enlarge such differences in the first steps, so the bridges agree
# to 1e-4, not bit for bit. (A wrong split or scaling, e.g. averaging the two halves' mean losses,
# moves weights by about 1e-3 and fails.)
ATOL, RTOL = 1e-4, 1e-3


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Flickr8k's original layout, 48 images with two captions each: 40 train, 4 dev, 4 test."""
    root = tmp_path_factory.mktemp("flickr")
    images = root / "Flicker8k_Dataset"
    images.mkdir()
    lines = []
    for i, scene in enumerate(shapes.generate("train", 48, seed=11)):
        scene.render().save(images / f"{i}.png")
        lines += [f"{i}.png#0\t{scene.caption}", f"{i}.png#1\tthere is {scene.caption}"]
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    for split, (a, b) in {"train": (0, 40), "dev": (40, 44), "test": (44, 48)}.items():
        (root / f"Flickr_8k.{split}Images.txt").write_text("".join(f"{i}.png\n" for i in range(a, b)))
    return root


def train_command(folder, run, cache, processes: int, *extra):
    launch = [sys.executable, "-m", "vgpt"]
    if processes > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                  "-m", "vgpt"]  # fmt: skip
    args = ["train", "--profile", "tiny", "--data", folder, "--out", run, "--cache", cache, "--epochs", 2,
            "--batch-size", 16, *extra]  # fmt: skip
    return [*launch, *map(str, args)]


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def bridge(run):
    return {**load_file(run / "bridge" / "projector.safetensors"),
            **load_file(run / "bridge" / "adapter_model.safetensors")}  # fmt: skip


def assert_same_bridge(a, b):
    ta, tb = bridge(a), bridge(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        torch.testing.assert_close(ta[name], tb[name], atol=ATOL, rtol=RTOL, msg=name)


@pytest.fixture(scope="module")
def runs(folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    done = {}
    for processes in (1, 2):
        run = root / f"run{processes}"
        out = subprocess.run(train_command(folder, run, root / f"cache{processes}", processes), env=ENV,
                             capture_output=True, text=True, timeout=900)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        done[processes] = (run, out.stdout, root / f"cache{processes}")
    return done


def test_two_processes_train_the_same_bridge_as_one(runs):
    assert_same_bridge(runs[1][0], runs[2][0])
    one = json.loads((runs[1][0] / "metrics.json").read_text())["history"]
    two = json.loads((runs[2][0] / "metrics.json").read_text())["history"]
    assert [e["train_loss"] for e in one] == pytest.approx([e["train_loss"] for e in two], rel=1e-4)


def test_rank_zero_alone_writes_and_prints(runs):
    run, stdout, cache = runs[2]
    assert stdout.count("profile: tiny") == 1 and stdout.count(f"wrote {run}/") == 1
    assert sorted(p.name for p in run.iterdir()) == ["bridge", "checkpoint", "loss.png", "metrics.json"]
    caches = [p for p in cache.rglob("*") if p.is_dir() and (p / "meta.json").is_file()]
    assert len(caches) == 1 and not list(cache.rglob("*.partial"))
    meta = json.loads((caches[0] / "meta.json").read_text())
    assert meta["count"] == 48 and not meta["unreadable"]  # every row written, by one rank or the other


def test_a_two_process_run_killed_mid_epoch_resumes(folder, runs, tmp_path):
    """Checkpoints every 2 steps; the whole torchrun group SIGKILLed after a mid-epoch one; resume."""
    run, cache = tmp_path / "run", tmp_path / "cache"
    proc = subprocess.Popen(train_command(folder, run, cache, 2, "--checkpoint-every", 2), env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    state, saved, deadline = run / "checkpoint" / "trainer_state.json", None, time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            saved = json.loads(state.read_text())
        except (OSError, ValueError):
            saved = None
        if saved and saved["batch"] > 0:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert saved and saved["batch"] > 0 and saved["epoch"] < 2, f"no mid-epoch checkpoint before the end: {saved}"
    resumed = subprocess.run(train_command(folder, run, cache, 2, "--resume"), env=ENV, capture_output=True,
                             text=True, timeout=900)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_bridge(runs[1][0], run)


def test_shards_keep_images_whole_and_cover_the_batch(monkeypatch):
    batch = [("a", "1"), ("a", "2"), ("b", "3"), ("c", "4"), ("c", "5"), ("c", "6")]
    parts = [distributed.shard(batch, rank, 2) for rank in (0, 1)]
    assert parts == [([("a", "1"), ("a", "2"), ("b", "3")], True), ([("c", "4"), ("c", "5"), ("c", "6")], True)]
    assert distributed.shard([("a", "1")], 1, 2) == ([("a", "1")], False)  # nothing left: a zero-weight stand-in
