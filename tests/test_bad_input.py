"""Bad input, interruptions and safety: every entry point answers with a clear error naming the file,
or a counted, reported skip; nothing finished is lost.

Rows of the matrix tested elsewhere: modes L/LA/P/RGBA/CMYK/I;16 and a non-image file
(test_data.py), missing / escaping / absent rows in all three layouts (test_data.py), a bridge
for another base or width, truncated weights, missing files, a pickle offered as weights
(test_pipeline.py), an interrupted run resuming exactly (test_train.py), bad uploads (test_widget.py).
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from vgpt import features, loading
from vgpt.data import DataError, open_image
from vgpt.features import CacheError, FeatureCache, build_cache, processor_pixels
from vgpt.files import new_folder
from vgpt.prefix import tokenize_captions
from vgpt.scale.sources import load_captions
from vgpt.world import shapes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def parts():
    return loading.load_profile("tiny", verbose=False)


def vgpt(*args, timeout=300, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "vgpt", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, **kw
    )


# ------------------------------------------------------------------ images


def jpeg_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


def test_truncated_and_corrupt_images_are_clear_errors(tmp_path):
    full = jpeg_bytes(shapes.generate("test", 1)[0].render(64))
    (tmp_path / "cut.jpg").write_bytes(full[: len(full) // 2])
    (tmp_path / "noise.jpg").write_bytes(full[:20] + bytes(range(256)) * 4)
    for name in ("cut.jpg", "noise.jpg"):
        with pytest.raises(DataError, match=rf"{name}: cannot read as an image"):
            open_image(tmp_path / name)


def test_palette_with_transparency_is_laid_on_white(tmp_path):
    image = Image.new("P", (4, 2))
    image.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    image.putpixel((0, 0), 1)
    image.info["transparency"] = 0  # palette entry 0 (red) is transparent
    image.save(tmp_path / "p.png", transparency=0)
    rgb = open_image(tmp_path / "p.png")
    assert rgb.mode == "RGB" and rgb.getpixel((1, 1)) == (255, 255, 255) and rgb.getpixel((0, 0)) == (0, 0, 255)


def test_tiny_and_very_wide_images_become_the_towers_input(parts, tmp_path):
    to_pixels = processor_pixels(parts.image_processor)
    Image.new("RGB", (1, 1), "red").save(tmp_path / "dot.png")
    Image.new("RGB", (40_000, 3), "blue").save(tmp_path / "strip.png")
    strip = open_image(tmp_path / "strip.png")
    assert features.trim_aspect(strip).size == (6, 3)  # not resized to 853,333 x 64 first
    pixels = to_pixels([open_image(tmp_path / "dot.png"), strip])
    assert pixels.shape == (2, 3, 64, 64) and torch.isfinite(pixels).all()
    # trimming the long side changes nothing the processor keeps
    photo = Image.effect_noise((300, 60), 40).convert("RGB")
    direct = parts.image_processor(images=[photo], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(to_pixels([photo]), direct, atol=0.05, rtol=0)


def test_decompression_bomb_is_refused_not_loaded(tmp_path, monkeypatch):
    Image.new("RGB", (200, 200)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # 40,000 pixels is then a bomb
    with pytest.raises(DataError, match="bomb.png: refused, too many pixels"):
        open_image(tmp_path / "bomb.png")


def test_exif_rotated_photo_is_seen_upright(tmp_path):
    image = Image.new("RGB", (40, 20), "white")
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = open_image(tmp_path / "phone.jpg")
    assert upright.size == (20, 40)
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert top[0] > 200 and top[1] < 60 and bottom == pytest.approx((255, 255, 255), abs=30)


def test_unreadable_image_in_a_data_set_is_a_counted_skip(parts, tmp_path):
    from vgpt.scale.runs import folder_features

    folder = shapes.write_flickr_layout(shapes.generate("train", 6, seed=1), tmp_path / "d")
    (folder / "Images" / "scene_00002.png").write_bytes(b"not a png at all")
    lines = []
    found, cache = folder_features(parts, folder, tmp_path / "cache", log=lines.append)
    assert len(found.records) == 5 and "scene_00002.png" not in [r.image_id for r in found.records]
    assert any("left out 1 images" in line and "scene_00002.png" in line for line in lines)
    assert "scene_00002.png" in FeatureCache(cache.folder).unreadable  # remembered when the cache is reused
    again, _ = folder_features(parts, folder, tmp_path / "cache", log=lines.append)
    assert len(again.records) == 5


# ---------------------------------------------------------------- captions


def test_overlong_emoji_and_empty_captions_tokenize_with_eos_last(parts):
    tok = parts.tokenizer
    captions = ["a small red circle " * 50, "a 🐕 by the café ✓", "", "   "]
    ids, mask = tokenize_captions(tok, captions, max_tokens=12)
    lengths = mask.sum(1).tolist()
    assert ids.shape[1] == 12 and lengths[0] == 12 and lengths[2] == lengths[3] == 1
    for row, n in zip(ids, lengths):
        assert row[n - 1] == tok.eos_token_id  # every caption ends in end-of-text, however long
    assert "🐕" in tok.decode(ids[1, : lengths[1] - 1])  # byte-level BPE keeps any character


def test_duplicate_rows_are_counted_once(tmp_path):
    folder = shapes.write_flickr_layout(shapes.generate("train", 2, seed=0), tmp_path / "d")
    rows = (folder / "captions.txt").read_text(encoding="utf-8").splitlines()
    (folder / "captions.txt").write_text("\n".join(rows + rows[1:2]) + "\n", encoding="utf-8")
    found = load_captions(folder)
    assert [len(r.captions) for r in found.records] == [1, 1]
    assert found.skipped == [f"{folder / 'captions.txt'}:4: duplicate of an earlier caption of 'scene_00000.png'"]


def test_missing_caption_column_and_empty_folder(tmp_path):
    folder = tmp_path / "d"
    (folder / "Images").mkdir(parents=True)
    (folder / "captions.txt").write_text("image\nx.png\n")
    with pytest.raises(DataError, match="captions.txt: first line must be the header 'image,caption'"):
        load_captions(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no caption file"):
        load_captions(tmp_path / "empty")


# ----------------------------------------------------------- feature cache


def _items(n=4):
    return [(f"s{i}", (lambda s=s: s.render())) for i, s in enumerate(shapes.generate("val", n, seed=2))]


def test_half_written_cache_is_detected_and_rebuilt(parts, tmp_path):
    to_pixels = processor_pixels(parts.image_processor)
    cache = build_cache(parts.vision, _items(), to_pixels, tmp_path, parts.profile.model)
    good = cache.get(["s1"]).clone()
    (cache.folder / "meta.json").unlink()  # killed before the last file
    (cache.folder / "features.npy").write_bytes((cache.folder / "features.npy").read_bytes()[:200])
    (tmp_path / f".{cache.folder.name}.partial").mkdir()  # and a leftover work folder
    rebuilt = build_cache(parts.vision, _items(), to_pixels, tmp_path, parts.profile.model)
    assert torch.equal(rebuilt.get(["s1"]), good)
    assert not (tmp_path / f".{cache.folder.name}.partial").exists()
    with pytest.raises(CacheError, match="not a complete feature cache"):
        FeatureCache(tmp_path / "nowhere")


def test_cache_for_another_tower_is_not_reused(parts, tmp_path):
    to_pixels = processor_pixels(parts.image_processor)
    first = build_cache(parts.vision, _items(), to_pixels, tmp_path, parts.profile.model)
    import copy

    other = copy.deepcopy(parts.vision)
    with torch.no_grad():
        other.embeddings.patch_embedding.weight.mul_(1.5)
    second = build_cache(other, _items(), to_pixels, tmp_path, parts.profile.model)
    assert second.folder != first.folder and not torch.equal(second.get(["s0"]), first.get(["s0"]))


def test_unwritable_cache_folder_is_a_clear_error(parts, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    with pytest.raises(CacheError, match="a-file.*cannot write the feature cache here.*pass another cache folder"):
        build_cache(
            parts.vision, _items(), processor_pixels(parts.image_processor), blocker / "cache", parts.profile.model
        )
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    if os.geteuid() == 0:  # root writes through permissions: make the folder refuse the way it would for a user
        real_mkdir = Path.mkdir

        def refuse(self, *args, **kwargs):
            if readonly in self.parents:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(CacheError, match="ro: cannot write the feature cache here.*Permission"):
        build_cache(parts.vision, _items(), processor_pixels(parts.image_processor), readonly, parts.profile.model)


def test_cli_reports_an_unwritable_cache_in_one_line(tmp_path):
    folder = shapes.write_flickr_layout(shapes.generate("train", 3), tmp_path / "d")
    (tmp_path / "f").write_text("")
    result = vgpt("extract", "--profile", "tiny", "--data", folder, "--cache", tmp_path / "f" / "c")
    assert result.returncode == 2 and "cannot write the feature cache here" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------- checkpoints


def test_killed_training_resumes_and_loses_no_finished_epoch(tmp_path):
    """SIGKILL (no chance to clean up) after the first epoch's checkpoint; resume finishes the run."""
    folder = shapes.write_flickr_layout(shapes.generate("train", 500, seed=3), tmp_path / "d")
    run = tmp_path / "run"
    args = [
        "train",
        "--profile",
        "tiny",
        "--data",
        folder,
        "--out",
        run,
        "--cache",
        tmp_path / "c",
        "--epochs",
        8,
        "--batch-size",
        16,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vgpt", *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    state = run / "checkpoint" / "trainer_state.json"
    deadline = time.time() + 240
    while not state.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.is_file(), "no checkpoint was written before the kill"
    saved = json.loads(state.read_text())
    assert 1 <= saved["epoch"] < 8, "the run finished before it could be killed"
    finished = saved["epochs"]
    resumed = vgpt(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    history = json.loads((run / "metrics.json").read_text())["history"]
    assert [e["epoch"] for e in history] == list(range(1, 9))
    assert history[: len(finished)] == finished  # the epochs done before the kill are kept as they were
    assert not list(run.rglob("*.partial"))


def test_half_written_checkpoint_never_replaces_a_good_one(tmp_path):

    good = tmp_path / "checkpoint"
    good.mkdir()
    (good / "trainer_state.json").write_text('{"epoch": 2}')
    with pytest.raises(OSError), new_folder(good) as work:  # a crash halfway through writing
        (work / "trainer_state.json").write_text('{"epoch": 3}')
        raise OSError("disk full")
    assert json.loads((good / "trainer_state.json").read_text()) == {"epoch": 2}
    with new_folder(good) as work:
        (work / "trainer_state.json").write_text('{"epoch": 3}')
    assert json.loads((good / "trainer_state.json").read_text()) == {"epoch": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]  # nothing aside left behind


# --------------------------------------------------------------------- CLI

COMMANDS = {"train": ["--data"], "extract": ["--data"], "caption": ["--run"], "evaluate": ["--run", "--data"]}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_missing_arguments_exit_2_with_usage(command):
    result = vgpt(command)
    assert result.returncode == 2
    assert "usage: python -m vgpt " + command in result.stderr and "required" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", ".", "--epochs", "three"], "invalid int value: 'three'"),
        (["evaluate", "--run", ".", "--data", ".", "--split", "dev"], "invalid choice: 'dev'"),
        (["bench", "--profile", "huge"], "invalid choice: 'huge'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["demo", "--epochs", "x"], "invalid int value: 'x'"),
        (["build-tiny", "--seed", "1.5"], "invalid int value: '1.5'"),
        (["caption", "--run", ".", "--beams", "many", "x.png"], "invalid int value: 'many'"),
        (["profile", "tyni"], "unknown profile 'tyni'"),
    ],
)
def test_wrong_arguments_exit_2_in_one_line(args, message):
    result = vgpt(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_seed_profile_offline_fails_fast_and_says_what_to_do(tmp_path):
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "vgpt", "extract", "--profile", "seed", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
    )
    assert result.returncode == 2 and "--profile tiny" in result.stderr and "Traceback" not in result.stderr
    assert time.perf_counter() - start < 60  # seconds of imports, no network wait


# ---------------------------------------------------------------- security


def test_no_pickle_loading_and_no_remote_code_in_the_package():
    source = {p.name: p.read_text() for p in (ROOT / "vgpt").glob("*.py")}
    for name, text in source.items():
        assert "import pickle" not in text and "pickle.load" not in text, name
        assert "trust_remote_code" not in text, name
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, f"{name}: {call}"
        assert "use_safetensors=False" not in text, name
