"""`python -m vgpt app`: the caption function, the page's behaviour on good and bad files (no browser, no
Gradio needed), the command's errors, the Space folder it writes, and that Space started and serving."""

import io
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import torch
import yaml

from vgpt import __main__ as cli
from vgpt.app import space
from vgpt.app.commands import DEFAULT_REQUIREMENT
from vgpt.app.gradio_app import CaptionPage, caption_image, decoding_options, example_images, load_captioner
from vgpt.config import UserError
from vgpt.world import shapes

ROOT = Path(__file__).resolve().parents[1]
BRIDGE = ROOT / "data" / "tiny" / "bridge"
SCENE = shapes.generate("test", 2, seed=5)[1]  # the shipped bridge captions it right: 'a small yellow circle ...'


@pytest.fixture(scope="module")
def captioner():
    return load_captioner(BRIDGE)


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_caption_image_gives_the_caption_its_words_and_one_map_per_word(captioner):
    text, words, maps, figure = caption_image(captioner, SCENE.render(64))
    assert text == SCENE.caption and "".join(words[:-1]) == text  # the bridge gets this scene right
    assert words[-1] == "<|endoftext|>" and maps.shape == (len(words), 4, 4)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.ones(len(words)))  # shares of the image's attention
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[:3] == ["image", "'a'", "'small'"] and figure.axes[-1].get_ylabel().startswith("share")
    assert caption_image(captioner, SCENE.render(64), num_beams=3)[0] == SCENE.caption
    sampled = caption_image(captioner, SCENE.render(64), do_sample=True, temperature=1.0, top_p=0.9)[0]
    assert isinstance(sampled, str) and sampled


def test_decoding_options_follow_the_page_controls():
    assert decoding_options("greedy", beams=5, temperature=2.0) == {}
    assert decoding_options("beam search", beams=4.0) == {"num_beams": 4}  # a slider may hand over a float
    assert decoding_options("sampling", temperature=0.7, top_p=0.5) == {"do_sample": True, "temperature": 0.7,
                                                                        "top_p": 0.5}  # fmt: skip
    with pytest.raises(UserError, match="unknown decoding 'top-k'"):
        decoding_options("top-k")


def bomb_png(path: Path) -> Path:
    """A real decompression bomb for Pillow's default limit, kept small by zlib (see .ci/browser_app.py)."""
    sys.path.insert(0, str(ROOT / ".ci"))
    from browser_app import bomb_png as make

    path.write_bytes(make())
    return path


def test_bad_files_get_a_message_naming_them_and_the_example_is_captioned(captioner, tmp_path):
    page = CaptionPage(captioner)
    example = "test scene 1"
    example_caption = captioner.examples[example][1]
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "cut.png").write_bytes(png(SCENE.render(64))[:120])
    (tmp_path / "empty.jpg").write_bytes(b"")
    bomb_png(tmp_path / "bomb.png")
    expected = {
        "notes.png": "notes.png: cannot read as an image (UnidentifiedImageError",
        "cut.png": "cut.png: cannot read as an image (OSError: image file is truncated)",
        "empty.jpg": "empty.jpg: the file is empty",
        "bomb.png": "bomb.png: refused, too many pixels for a safe image",
    }
    for name, said in expected.items():
        uploaded, message, shown = page.upload(str(tmp_path / name), example)
        assert uploaded is None and said in message and "Captioning the example instead." in message
        assert shown.size == (256, 256)  # the example, blown up by whole pixels for the page
        text, figure, note = page.caption(example, uploaded, "greedy")
        assert text == example_caption and figure is not None and note is None  # and the page goes on
    (tmp_path / "<b>&x.png").write_text("text")  # a file's name is text on the page, not markup
    assert "&lt;b&gt;&amp;x.png: cannot read" in page.upload(str(tmp_path / "<b>&x.png"), example)[1]


def test_a_good_upload_is_captioned_and_clearing_it_goes_back_to_the_example(captioner, tmp_path):
    page = CaptionPage(captioner)
    SCENE.render(64).save(tmp_path / "mine.png")
    uploaded, message, shown = page.upload(str(tmp_path / "mine.png"), "test scene 2")
    assert message == "uploaded mine.png (64 x 64)" and uploaded.size == (64, 64)
    assert page.caption("test scene 2", uploaded, "beam search", beams=3)[0] == SCENE.caption
    uploaded, message, shown = page.upload(None, "test scene 2")  # the upload cleared
    assert uploaded is None and message == ""
    assert page.caption("test scene 2", uploaded, "greedy")[0] == captioner.examples["test scene 2"][1]
    _, said, _ = page.pick_example("test scene 3")
    assert said == f"test scene 3: its true caption is <i>{captioner.examples['test scene 3'][1]}</i>"


def test_a_run_without_examples_asks_for_an_upload(captioner):
    page = CaptionPage(type(captioner)(captioner.model, captioner.to_pixels, "seed", "runs/x", {}))
    text, figure, said = page.caption(None, None, "greedy")
    assert text == "" and figure is None and "Upload an image first" in said


def test_examples_are_shapes_world_scenes_on_tiny_and_the_runs_test_images_elsewhere(tmp_path):
    found = example_images(BRIDGE, "tiny")
    assert list(found) == [f"test scene {i}" for i in range(1, 7)]
    assert [c for _, c in found.values()] == [s.caption for s in shapes.generate("test", 6, seed=0)]
    data = tmp_path / "shapes8k"
    shapes.write_flickr_layout(shapes.generate("test", 60, seed=1), data)
    run = tmp_path / "run"
    (run / "bridge").mkdir(parents=True)
    assert example_images(run, "seed") == {}  # no metrics.json: no data to show
    (run / "metrics.json").write_text(json.dumps({"profile": "seed", "data": str(data)}))
    from vgpt.scale.sources import load_captions

    test_split = load_captions(data).split("test")
    shown = example_images(run / "bridge", "seed", n=3)  # from the bridge folder too
    assert list(shown) == [r.image_id for r in test_split[:3]] and len(test_split) > 3
    assert [c for _, c in shown.values()] == [r.captions[0] for r in test_split[:3]]
    (run / "metrics.json").write_text(json.dumps({"profile": "seed", "data": str(tmp_path / "gone")}))
    assert example_images(run, "seed") == {}  # the data has moved: none, and the app still starts


def test_the_app_command_refuses_what_is_not_a_run_in_one_line(tmp_path, capsys):
    assert cli.main(["app", "--run", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.strip() == f"vgpt app: error: run folder {tmp_path / 'nothing'} does not exist"
    with pytest.raises(UserError, match="no trained bridge here"):
        load_captioner(tmp_path)


def test_without_gradio_the_app_says_how_to_get_it(monkeypatch, captioner):
    from vgpt.app import gradio_app

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now raises ImportError
    with pytest.raises(UserError, match=r'the app needs Gradio: pip install "vgpt\[app\]"'):
        gradio_app.build_app(captioner)


def test_the_space_requirement_points_at_this_repository():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert space.REPOSITORY == project["urls"]["Repository"]
    assert "app" in project["optional-dependencies"] and DEFAULT_REQUIREMENT.startswith("vgpt[app] @ git+")


def test_write_space_writes_a_whole_space_and_refuses_a_used_folder(tmp_path, capsys):
    out = tmp_path / "space"
    assert cli.main(["app", "--write-space", str(out), "--run", str(BRIDGE)]) == 0
    assert f"wrote the Space to {out}/" in capsys.readouterr().out
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    bridge = sorted(f"bridge/{p.name}" for p in BRIDGE.iterdir() if p.suffix in (".json", ".safetensors"))
    tiny = sorted(
        f"tiny/{p.relative_to(ROOT / 'data' / 'tiny').as_posix()}"
        for part in ("gpt2", "clip-vision")
        for p in (ROOT / "data" / "tiny" / part).rglob("*")
        if p.is_file()
    )
    assert names == sorted(["README.md", "app.py", "requirements.txt", *bridge, *tiny])
    for name in bridge:
        assert (out / name).read_bytes() == (ROOT / "data" / "tiny" / name).read_bytes()
    header = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py" and header["license"] == "mit"
    assert str(header["sdk_version"]).startswith("6.")
    lines = [line for line in (out / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines[-1] == DEFAULT_REQUIREMENT
    compile((out / "app.py").read_text(), "app.py", "exec")
    assert "from vgpt.app.gradio_app import serve" in (out / "app.py").read_text()
    with pytest.raises(UserError, match="exists and is not an empty folder"):
        space.write_space(out, BRIDGE, DEFAULT_REQUIREMENT)
    with pytest.raises(UserError, match="no trained bridge here"):
        space.write_space(tmp_path / "other", tmp_path, DEFAULT_REQUIREMENT)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_written_space_starts_offline_and_captions(tmp_path):
    pytest.importorskip("gradio", reason='the Space runs Gradio: pip install "vgpt[app]"')
    from gradio_client import Client

    out = space.write_space(tmp_path / "space", BRIDGE, DEFAULT_REQUIREMENT)
    # vgpt as a Space installs it: the package alone, no data/ beside it, so the tiny models must be the Space's
    site = tmp_path / "site"
    shutil.copytree(ROOT / "vgpt", site / "vgpt", ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VGPT_TINY_DIR", "PYTHONPATH")},
        "PYTHONPATH": str(site),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_SERVER_NAME": "127.0.0.1",  # what a Space sets (there 0.0.0.0 and 7860)
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(tmp_path / "uploads"),
    }
    log = tmp_path / "space.log"
    with open(log, "w") as sink:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=out, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"the Space's app.py exited with {server.returncode}:\n{log.read_text()}"
            try:
                with urllib.request.urlopen(f"{url}/config", timeout=2) as answer:
                    config = json.load(answer)
                break
            except OSError:
                assert time.monotonic() < deadline, f"the Space did not answer within 180 s:\n{log.read_text()}"
                time.sleep(0.5)
        assert config["title"] == "vgpt captioner"
        ids = {c["props"].get("elem_id") for c in config["components"]}
        assert {"vgpt-upload", "vgpt-caption-button", "vgpt-caption", "vgpt-maps", "vgpt-message"} <= ids
        client = Client(url, verbose=False, download_files=False)
        text, _, _ = client.predict("test scene 2", "greedy", 3, 1.0, 0.9, api_name="/caption")
        assert text == shapes.generate("test", 6, seed=0)[1].caption
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Traceback" not in log.read_text()
