"""The command line on a miniature caption folder: train, caption, evaluate, extract, and errors."""

import json
import subprocess
import sys

import pytest

from vgpt.world import shapes


def vgpt(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "vgpt", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini")
    return shapes.write_flickr_layout(shapes.generate("train", 200, seed=0), root / "shapes8k")


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    """One epoch of `train` on the miniature folder: (run folder, feature cache, the command's result)."""
    root = tmp_path_factory.mktemp("trained")
    run, cache = root / "run", root / "cache"
    result = vgpt(
        "train",
        "--profile",
        "tiny",
        "--data",
        folder,
        "--out",
        run,
        "--cache",
        cache,
        "--epochs",
        1,
        "--batch-size",
        32,
    )
    return run, cache, result


def test_train_writes_a_run_folder(trained):
    run, _, result = trained
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["profile"] == "tiny" and "CIDEr-D" in summary["val"]
    assert (run / "bridge" / "bridge.json").is_file() and (run / "loss.png").is_file()


def test_caption_prints_one_line_per_image(trained, folder):
    image = folder / "Images" / "scene_00000.png"
    captioned = vgpt("caption", image, "--run", trained[0], "--beams", 2)
    assert captioned.returncode == 0, captioned.stderr[-2000:]
    assert captioned.stdout.startswith(f"{image}: a ")


def test_evaluate_prints_the_metrics(trained, folder):
    evaluated = vgpt("evaluate", "--run", trained[0], "--data", folder, "--cache", trained[1])
    assert evaluated.returncode == 0 and "CIDEr-D" in evaluated.stdout


def test_extract_reuses_the_cache_train_built(trained, folder):
    extracted = vgpt("extract", "--profile", "tiny", "--data", folder, "--cache", trained[1])
    assert extracted.returncode == 0 and "(200, 17, 128)" in extracted.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--profile", "tiny", "--data", "/nonexistent"], "data folder /nonexistent does not exist"),
        (["caption", "/nonexistent.png", "--run", "."], "image /nonexistent.png does not exist"),
        (["evaluate", "--run", "/nonexistent", "--data", "."], "run folder /nonexistent does not exist"),
        (["train", "--profile", "seed", "--data", "."], "--profile tiny"),
    ],
)
def test_cli_errors_are_one_line(args, message, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = vgpt(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_caption_with_a_folder_that_is_not_a_run(tmp_path):
    image = tmp_path / "x.png"
    shapes.generate("test", 1)[0].render().save(image)
    result = vgpt("caption", image, "--run", tmp_path)
    assert result.returncode == 2 and "no trained bridge here" in result.stderr


def test_train_and_evaluate_on_the_original_layout_with_grouped_captions(tmp_path):
    """Flickr8k's original layout, two captions per image: training shares the prefix, evaluation uses all refs."""
    scenes = shapes.generate("train", 120, seed=4)
    images = tmp_path / "flickr" / "Flicker8k_Dataset"
    images.mkdir(parents=True)
    lines = []
    for i, scene in enumerate(scenes):
        scene.render().save(images / f"{i}.png")
        lines += [f"{i}.png#0\t{scene.caption}", f"{i}.png#1\tthere is {scene.caption}"]
    (tmp_path / "flickr" / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    for split, part in (("train", scenes[:90]), ("dev", scenes[90:105]), ("test", scenes[105:])):
        first = {"train": 0, "dev": 90, "test": 105}[split]
        (tmp_path / "flickr" / f"Flickr_8k.{split}Images.txt").write_text(
            "".join(f"{first + k}.png\n" for k in range(len(part)))
        )
    run = tmp_path / "run"
    trained = vgpt(
        "train",
        "--profile",
        "tiny",
        "--data",
        tmp_path / "flickr",
        "--out",
        run,
        "--cache",
        tmp_path / "cache",
        "--epochs",
        1,
        "--batch-size",
        16,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "original layout, 120 images; split by the split lists" in trained.stdout
    assert "training on 90 images (180 captions), validating on 15; one prefix pass per image" in trained.stdout
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["train_config"]["shared_prefix"] is None and len(summary["history"]) == 1
    evaluated = vgpt("evaluate", "--run", run, "--data", tmp_path / "flickr", "--cache", tmp_path / "cache")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "15 images of" in evaluated.stdout and "(test)" in evaluated.stdout


def test_the_tower_runs_on_the_device_pick_device_chooses(monkeypatch, tmp_path):
    """`train`, `extract` and `evaluate` extract features on the GPU where there is one (here: told so)."""
    from types import SimpleNamespace

    import torch

    from vgpt.config import TINY
    from vgpt.scale import runs

    asked = {}

    def build_cache(*args, device="cpu", **kw):
        asked["device"] = device
        raise RuntimeError("stopped before extracting")

    monkeypatch.setattr(runs, "pick_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(runs.features, "build_cache", build_cache)
    folder = shapes.write_flickr_layout(shapes.generate("train", 2), tmp_path / "shapes")
    parts = SimpleNamespace(vision=None, image_processor=None, profile=TINY)
    with pytest.raises(RuntimeError, match="stopped before extracting"):
        runs.folder_features(parts, folder, tmp_path / "cache", log=lambda *a: None)
    assert asked["device"] == torch.device("cuda")
