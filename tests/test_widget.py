"""Notebook 08's demo widget: captions with attention maps; bad uploads get a message and the demo goes on."""

import io

import pytest
import torch
from PIL import Image

from vgpt.course import notebook
from vgpt.course.widget import CaptionDemo, caption_with_attention, read_upload, uploaded_files
from vgpt.data import DataError
from vgpt.loading import load_profile
from vgpt.world import shapes


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
    assert demo.caption.value == f"<b>caption:</b> {example}"  # also as text, not only in the picture
    assert demo.handle_upload(png(shapes.generate("test", 2, seed=5)[1].render(64)), "mine.png") is True
    assert "uploaded mine.png (64 x 64)" in demo.message.value
    assert demo.run() != example
    demo.mode.value = "beam search"
    assert demo.decoding() == {"num_beams": 3}
    demo.mode.value = "sampling"
    assert demo.decoding() == {"do_sample": True, "temperature": 1.0}
    demo.mode.value = "greedy"


def as_ipywidgets7(name: str, content: bytes) -> dict:
    """FileUpload.value as ipywidgets 7.5-7.8 delivers it: keyed by name, bytes content, camelCase metadata."""
    meta = {"name": name, "type": "image/png", "size": len(content), "lastModified": 1700000000000}
    return {name: {"metadata": meta, "content": content}}


def as_ipywidgets8_message(name: str, content: bytes) -> dict:
    """The state an ipywidgets 8 front end sends for one file: the kernel turns it into a tuple of dicts
    whose content is a memoryview over the message's buffer."""
    file = {"name": name, "type": "image/png", "size": len(content), "last_modified": 1700000000000}
    return {"value": [{**file, "content": memoryview(content)}]}


def test_uploaded_files_reads_both_ipywidgets_forms():
    data = png(Image.new("RGB", (8, 8), "blue"))
    assert uploaded_files(as_ipywidgets7("a.png", data)) == [("a.png", data)]
    eight = ({"name": "b.png", "type": "image/png", "size": len(data), "content": memoryview(data)},)
    assert uploaded_files(eight) == [("b.png", data)] and isinstance(uploaded_files(eight)[0][1], bytes)
    assert uploaded_files(()) == [] and uploaded_files({}) == []  # a cleared upload: nothing to take
    with pytest.raises(DataError, match="unknown form \\(str\\)"):
        uploaded_files("a.png")
    with pytest.raises(DataError, match="a.png: the upload holds no file content \\(found NoneType\\)"):
        uploaded_files({"a.png": {"metadata": {"name": "a.png"}}})
    with pytest.raises(DataError, match="an upload: the upload holds no file content \\(found str\\)"):
        uploaded_files(("a.png",))


def test_uploads_in_either_ipywidgets_form_reach_the_demo(demo):
    example = next(iter(demo.examples))
    scene = shapes.generate("test", 2, seed=5)[1]
    demo.choice.value = example
    demo._use_example()
    # ipywidgets 8, through the widget's own deserializer, as a browser upload arrives
    demo.upload.set_state(as_ipywidgets8_message("eight.png", png(scene.render(64))))
    assert isinstance(demo.upload.value[0]["content"], memoryview)
    assert "uploaded eight.png (64 x 64)" in demo.message.value
    assert demo.run() == scene.caption
    demo._use_example()
    # ipywidgets 7's dict, as its observer hands it over
    demo._on_upload({"name": "value", "new": as_ipywidgets7("seven.png", png(scene.render(64)))})
    assert "uploaded seven.png (64 x 64)" in demo.message.value
    assert demo.run() == scene.caption
    # bad uploads in either form get a message and the demo goes on with the example
    demo.upload.set_state(as_ipywidgets8_message("<b>notes</b>.png", b"just text"))
    assert "&lt;b&gt;notes&lt;/b&gt;.png: cannot read as an image" in demo.message.value  # the name is escaped
    assert demo.run() == example
    demo._on_upload({"name": "value", "new": {"odd.png": "not a file entry"}})
    assert "odd.png: the upload holds no file content" in demo.message.value
    assert demo.run() == example and demo.caption.value == f"<b>caption:</b> {example}"


def test_the_demo_parts_carry_css_classes_a_page_can_find(demo):
    found = {
        name
        for part in (demo.widget, demo.upload, demo.button, demo.message, demo.caption)
        for name in part._dom_classes
    }
    assert found == {"vgpt-demo", "vgpt-upload", "vgpt-caption-button", "vgpt-message", "vgpt-caption"}
