"""Notebook 08's interactive demo: pick or upload an image, choose how to decode, and see the
caption with, for each word, where in the image GPT-2 was looking when it chose that word.

The attention map of a word is the attention its choosing position (the one
whose output predicted it) pays to each image patch, averaged over layers and
heads, as a share of all its attention to patches.
"""

from __future__ import annotations

import html
import io
from contextlib import contextmanager

import torch

from .. import plots
from ..data import DataError, open_image
from ..features import processor_pixels
from ..generate import decode, generate_ids
from ..prefix import concat_prefix

MAX_UPLOAD_BYTES = 20 * 2**20


def read_upload(content: bytes, name: str, max_bytes: int = MAX_UPLOAD_BYTES):
    """An uploaded file's bytes -> an RGB image, or a `DataError` that says what is wrong with it."""
    if len(content) > max_bytes:
        raise DataError(
            f"{name}: {len(content) / 2**20:.1f} MB is too large for this demo (at most {max_bytes / 2**20:.0f} MB)"
        )
    if not content:
        raise DataError(f"{name}: the file is empty")
    return open_image(io.BytesIO(content), name=name)


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """A `FileUpload.value` from ipywidgets 7 or 8 -> [(file name, its bytes)], in upload order.

    The two versions deliver different shapes, and Colab may have either:
    - ipywidgets 7.5 to 7.8: a dict keyed by file name,
      `{name: {"metadata": {"name", "type", "size", "lastModified"}, "content": bytes}}`
      (7.x `widget_upload.py`: `value = Dict(read_only=True)`, built from the `metadata` and `data` lists);
    - ipywidgets 8: a tuple of dicts, `({"name", "type", "size", "content": memoryview, "last_modified"}, ...)`
      (8.x `widget_upload.py`: `value = TypedTuple(Dict())`; its user migration guide: `data` and `metadata`
      are gone, the value is a list of dicts, content read with `.tobytes()`).
    Anything else is a `DataError` that says what arrived.
    """
    if isinstance(value, dict):  # ipywidgets 7
        entries = [(name, entry.get("content") if isinstance(entry, dict) else entry) for name, entry in value.items()]
    elif isinstance(value, (tuple, list)):  # ipywidgets 8
        entries = [
            (entry.get("name", "an upload"), entry.get("content")) if isinstance(entry, dict) else ("an upload", entry)
            for entry in value
        ]
    else:
        raise DataError(
            f"an upload value of unknown form ({type(value).__name__}): expected ipywidgets 7's dict "
            "or ipywidgets 8's tuple of files"
        )
    files = []
    for name, content in entries:
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise DataError(f"{name}: the upload holds no file content (found {type(content).__name__})")
        files.append((str(name), bytes(content)))
    return files


@contextmanager
def eager_attention(base):
    """GPT-2's fast attention kernel does not return its weights; switch to the plain one for a while."""
    before = base.config._attn_implementation
    base.set_attn_implementation("eager")
    try:
        yield
    finally:
        base.set_attn_implementation(before)


@torch.no_grad()
def caption_with_attention(model, pixel_values: torch.Tensor, **options):
    """One image (1, 3, H, W) -> (caption, its tokens as text, attention maps (T, grid, grid))."""
    prefix = model.visual_prefix(pixel_values=pixel_values)  # (1, N, Dt)
    row = generate_ids(model, prefix, **options)[0]  # new token ids, end-of-text included
    ids = torch.tensor([row], device=prefix.device)
    with eager_attention(model.gpt2):
        out = model.lm(inputs_embeds=concat_prefix(prefix, model.token_embeddings(ids)), output_attentions=True)
    attention = torch.stack(out.attentions).mean(dim=(0, 2))[0].float().cpu()  # (L, L): layers and heads averaged
    n, first = prefix.shape[1], int(model.spec.keep_cls)  # patches start after CLS
    grid = int(round((n - first) ** 0.5))
    choosing = [n - 1 + j for j in range(len(row))]  # position whose output chose token j
    maps = attention[choosing, first:n]  # (T, P)
    maps = maps / maps.sum(-1, keepdim=True)
    words = [model.tokenizer.decode([t]) for t in row]
    return decode(model, [row])[0], words, maps.view(len(row), grid, grid)


class CaptionDemo:
    """The widget. `examples` maps names to PIL images; `display(demo.widget)` shows it."""

    def __init__(self, model, image_processor, examples: dict):
        import ipywidgets as w

        self.model, self.to_pixels, self.examples = model, processor_pixels(image_processor), examples
        self.uploaded = None
        self.choice = w.Dropdown(options=list(examples), description="example")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="or upload")
        self.mode = w.ToggleButtons(options=["greedy", "beam search", "sampling"], description="decoding")
        self.beams = w.IntSlider(value=3, min=2, max=8, description="beams")
        self.temperature = w.FloatSlider(
            value=1.0, min=0.1, max=3.0, step=0.1, description="temperature", style={"description_width": "initial"}
        )  # the label in full, not cut to the default width
        self.button = w.Button(description="Caption", button_style="primary")
        self.message = w.HTML()
        self.caption = w.HTML()  # the caption as text, besides its picture: to read, copy or check
        self.output = w.Output()
        self.upload.observe(self._on_upload, names="value")
        self.choice.observe(lambda _: self._use_example(), names="value")
        self.button.on_click(lambda _: self.run())
        self.widget = w.VBox(
            [
                w.HBox([self.choice, self.upload]),
                self.mode,
                w.HBox([self.beams, self.temperature]),
                self.button,
                self.message,
                self.caption,
                self.output,
            ]
        )
        # names a page can find the parts by (a browser test does; so can a teacher's stylesheet)
        for part, name in (
            (self.widget, "vgpt-demo"),
            (self.upload, "vgpt-upload"),
            (self.message, "vgpt-message"),
            (self.button, "vgpt-caption-button"),
            (self.caption, "vgpt-caption"),
        ):
            part.add_class(name)

    def _use_example(self) -> None:
        self.uploaded = None
        self.message.value = ""

    def _on_upload(self, change) -> None:
        try:
            files = uploaded_files(change["new"])
        except DataError as err:
            self._refuse(err)
            return
        for name, content in files:
            self.handle_upload(content, name)

    def _refuse(self, err: DataError) -> None:
        self.uploaded = None
        why = html.escape(str(err))
        self.message.value = f"<span style='color:firebrick'>{why}. Showing the example instead.</span>"

    def handle_upload(self, content: bytes, name: str) -> bool:
        """Take an uploaded file: True if it is an image; otherwise say why in the widget and keep going."""
        try:
            self.uploaded = read_upload(content, name)
        except DataError as err:
            self._refuse(err)
            return False
        self.message.value = f"uploaded {html.escape(name)} ({self.uploaded.width} x {self.uploaded.height})"
        return True

    def decoding(self) -> dict:
        if self.mode.value == "beam search":
            return {"num_beams": self.beams.value}
        if self.mode.value == "sampling":
            return {"do_sample": True, "temperature": self.temperature.value}
        return {}

    def run(self) -> str:
        """Caption the current image and draw its attention maps in the widget; returns the caption."""
        from IPython.display import display

        image = self.uploaded if self.uploaded is not None else self.examples[self.choice.value]
        device = next(self.model.projector.parameters()).device
        text, words, maps = caption_with_attention(self.model, self.to_pixels([image]).to(device), **self.decoding())
        self.caption.value = f"<b>caption:</b> {html.escape(text)}"
        with self.output:
            self.output.clear_output(wait=True)
            display(plots.attention_maps(image, words, maps, title=text, close=True))
        return text
