"""Notebook 08's demo widget: captions with attention maps; bad uploads get a message and the demo goes on."""

import io

import pytest
import torch
from PIL import Image

from vgpt.course import notebook
from vgpt.world import shapes
from vgpt.data import DataError
from vgpt.loading import load_profile
from vgpt.course.widget import CaptionDemo, caption_with_attention, read_upload


@pytest.fixture(scope="module")
def demo():
    parts = load_profile("tiny", verbose=False)
    model = notebook.load_trained(parts)
    scene = shapes.generate("test", 1, seed=0)[0]
    return CaptionDemo(model, parts.image_processor, {scene.caption: scene.render(64)})


def png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_caption_with_attention_gives_one_map_per_token(demo):
    image = next(iter(demo.examples.values()))
    text, words, maps = caption_with_attention(demo.model, demo.to_pixels([image]))
    assert text == next(iter(demo.examples))  # the shipped bridge captions this scene right
    assert words[-1] == "<|endoftext|>" and maps.shape == (len(words), 4, 4)
    torch.testing.assert_close(maps.sum(dim=(1, 2)), torch.ones(len(words)))
    assert demo.model.lm.get_base_model().config._attn_implementation == "sdpa"  # switched back


def test_uploads_that_are_not_images_are_refused_with_their_name():
    with pytest.raises(DataError, match="notes.png: cannot read as an image"):
        read_upload(b"just some text", "notes.png")
    with pytest.raises(DataError, match="big.jpg: 2.0 MB is too large"):
        read_upload(b"\0" * 2**21, "big.jpg", max_bytes=2**20)
    with pytest.raises(DataError, match="empty.png: the file is empty"):
        read_upload(b"", "empty.png")
    truncated = png(Image.new("RGB", (64, 64), "red"))[:60]
    with pytest.raises(DataError, match="cut.png"):
        read_upload(truncated, "cut.png")


def test_bad_upload_shows_a_message_and_the_demo_stays_usable(demo):
    example = next(iter(demo.examples))
    assert demo.handle_upload(b"%PDF-1.4 not a picture", "report.png") is False
    assert "report.png" in demo.message.value and "Showing the example instead" in demo.message.value
    assert demo.run() == example  # still captions the chosen example
    assert demo.handle_upload(png(shapes.generate("test", 2, seed=5)[1].render(64)), "mine.png") is True
    assert "uploaded mine.png (64 x 64)" in demo.message.value
    assert demo.run() != example
    demo.mode.value = "beam search"
    assert demo.decoding() == {"num_beams": 3}
    demo.mode.value = "sampling"
    assert demo.decoding() == {"do_sample": True, "temperature": 1.0}
    demo.mode.value = "greedy"
