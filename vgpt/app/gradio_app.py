"""`python -m vgpt app --run FOLDER`: a trained captioner on a web page, outside the notebook.

Upload a photo or pick an example, choose greedy, beam search or sampling, and see the caption with
one attention map per word: where in the image GPT-2 was looking when it chose that word (notebook
08's demo, the same functions). A file that is not an image, is cut short, is too large or is a
decompression bomb gets a one-line message on the page, and the app goes on serving.

The package is called only from the first four functions (`load_captioner`, `example_images`,
`read_image`, `caption_image`); `CaptionPage` holds what each control does, in plain Python; only
`build_app` and `serve` need Gradio (`pip install "vgpt[app]"`). `space.py` writes the same app as a
Hugging Face Space.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .. import plots
from ..config import REPO_ROOT, UserError
from ..course.widget import MAX_UPLOAD_BYTES, caption_with_attention, read_upload
from ..data import DataError
from ..features import processor_pixels
from ..files import repo_relative
from ..runtime import pick_device
from ..scale.runs import load_run
from ..scale.sources import load_captions
from ..world import shapes

MODES = ("greedy", "beam search", "sampling")
TITLE = "vgpt: a frozen GPT-2 that learned to see"
EXAMPLES_PER_RUN = 6


@dataclass
class Captioner:
    """A run folder's bridge on its frozen models, ready to caption one image at a time."""

    model: object  # VisionGPT2 in eval mode, on the best device here
    to_pixels: Callable[[list], object]  # PIL images -> the image processor's (B, 3, H, W) pixel values
    profile: str  # "tiny", "seed", ...
    source: str  # the run folder, as the page names it
    examples: dict[str, tuple[Image.Image, str | None]] = field(default_factory=dict)  # name -> (image, its caption)


# ------------------------------------------------------- the package's pieces, each called once, here


def load_captioner(run: str | Path) -> Captioner:
    """A run folder (or its bridge/ folder) -> its captioner; a `UserError` that says what is missing."""

    model, parts = load_run(run)  # the bridge on freshly loaded base models (VisionGPT2.from_pretrained)
    model.to(pick_device())
    name, shown = parts.profile.name, repo_relative(str(Path(run).resolve()))  # inside the repository: relative
    return Captioner(model, processor_pixels(parts.image_processor), name, shown, example_images(run, name))


def example_images(run: str | Path, profile: str, n: int = EXAMPLES_PER_RUN) -> dict:
    """Images to try, by name, with their true caption: on `tiny` Shapes World test scenes; otherwise up
    to `n` test images of the data the run was trained on, when that folder is here; else none."""
    if profile == "tiny":
        scenes = shapes.generate("test", n, seed=0)
        return {f"test scene {i + 1}": (s.render(64), s.caption) for i, s in enumerate(scenes)}
    data = _run_data(Path(run))
    if data is None:
        return {}
    try:
        records = load_captions(data).split("test")
    except UserError:
        return {}  # the folder moved or changed since training: the app works without examples
    found = {}
    for record in records:
        try:
            found[record.image_id] = (record.open(), record.captions[0] if record.captions else None)
        except DataError:
            continue  # an unreadable test image is not offered
        if len(found) == n:
            break
    return found


def _run_data(run: Path) -> Path | None:
    """The data folder a run was trained on (its metrics.json's "data"), if it is on this machine."""
    for metrics in (run / "metrics.json", run.parent / "metrics.json"):  # a run folder, or its bridge/
        try:
            data = json.loads(metrics.read_text()).get("data")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(data, str):
            for folder in (Path(data), REPO_ROOT / data):  # recorded relative to the repository when inside it
                if folder.exists():
                    return folder
    return None


def read_image(path: str | Path, name: str | None = None) -> Image.Image:
    """An uploaded file -> an RGB image, or a `DataError` naming the file and what is wrong with it
    (not an image, empty, cut short, over 20 MB, more pixels than is safe: notebook 08's upload rules)."""
    path = Path(path)
    return read_upload(path.read_bytes(), name or path.name)


def caption_image(captioner: Captioner, image: Image.Image, **decoding) -> tuple[str, list[str], object, object]:
    """One image -> (caption, its tokens as text, attention maps (T, grid, grid), the figure of them).

    `decoding` goes to `generate`: {} is greedy, `num_beams`, or `do_sample` with `temperature` and
    `top_p`. Each map is a word's attention to the image's patches (layers and heads averaged), as a
    share of its attention to the image; the figure draws every word on one colour scale with the
    uniform share marked.
    """
    device = next(captioner.model.projector.parameters()).device
    pixels = captioner.to_pixels([image]).to(device)
    text, words, maps = caption_with_attention(captioner.model, pixels, **decoding)
    return text, words, maps, plots.attention_maps(image, words, maps, title=text, close=True)


# ------------------------------------------------------------------- what each control of the page does


def decoding_options(mode: str, beams: int = 3, temperature: float = 1.0, top_p: float = 0.9) -> dict:
    """The page's decoding controls -> `generate`'s options."""
    if mode == "beam search":
        return {"num_beams": int(beams)}
    if mode == "sampling":
        return {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p)}
    if mode == "greedy":
        return {}
    raise UserError(f"unknown decoding {mode!r}: choose one of {', '.join(MODES)}")


def for_display(image: Image.Image | None, least: int = 224) -> Image.Image | None:
    """A small image blown up by whole pixels for the page (a 64 x 64 scene is a speck otherwise);
    the caption is always of the image itself."""
    if image is None or max(image.size) >= least:
        return image
    factor = -(-least // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def _red(text: str) -> str:
    return f"<span style='color:firebrick'>{html.escape(text)}</span>"


class CaptionPage:
    """The page's behaviour without the page: each method takes the controls' values and returns the
    new values of the parts it changes, so it can be tested without a browser or Gradio."""

    def __init__(self, captioner: Captioner):
        self.captioner = captioner

    def example(self, name: str | None) -> Image.Image | None:
        found = self.captioner.examples.get(name) if name else None
        return found[0] if found else None

    def pick_example(self, name: str | None) -> tuple[None, str, Image.Image | None]:
        """An example chosen -> (uploaded image: none, message, the image to caption)."""
        found = self.captioner.examples.get(name) if name else None
        said = f"{html.escape(name)}: its true caption is <i>{html.escape(found[1])}</i>" if found and found[1] else ""
        return None, said, for_display(self.example(name))

    def upload(self, path: str | None, example: str | None) -> tuple[Image.Image | None, str, Image.Image | None]:
        """A file uploaded (or cleared: None) -> (the uploaded image or None, message, the image to caption)."""
        if path is None:
            return None, "", for_display(self.example(example))
        name = Path(path).name  # Gradio keeps the uploaded file's own name
        try:
            image = read_image(path, name)
        except DataError as err:
            fallback = self.example(example)
            instead = " Captioning the example instead." if fallback is not None else ""
            return None, _red(f"{err}.{instead}"), for_display(fallback)
        return image, f"uploaded {html.escape(name)} ({image.width} x {image.height})", for_display(image)

    def caption(self, example, uploaded, mode, beams=3, temperature=1.0, top_p=0.9) -> tuple[str, object, str | None]:
        """Caption pressed -> (caption, the attention maps' figure, a message or None to leave it as it is)."""
        image = uploaded if uploaded is not None else self.example(example)
        if image is None:
            return "", None, _red("Upload an image first (this run has no examples here).")
        text, _, _, figure = caption_image(self.captioner, image, **decoding_options(mode, beams, temperature, top_p))
        return text, figure, None


# --------------------------------------------------------------------------------- the page (Gradio)


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a course demo reports nothing anywhere
    try:
        import gradio as gr
    except ImportError as err:
        raise UserError('the app needs Gradio: pip install "vgpt[app]"') from err
    return gr


def build_app(captioner: Captioner):
    """The page: `build_app(load_captioner(run)).launch()` serves it. Parts carry `vgpt-*` element ids."""
    gr = _gradio()
    page = CaptionPage(captioner)
    names = list(captioner.examples)
    first = names[0] if names else None
    with gr.Blocks(title="vgpt captioner", analytics_enabled=False) as app:
        gr.Markdown(
            f"## {TITLE}\nA frozen CLIP vision tower and a frozen, text-only GPT-2, joined by a trained "
            f"projector and LoRA adapters (`{html.escape(captioner.source)}`, profile `{captioner.profile}`). "
            "Pick an example or upload an image, choose how to decode, and press **Caption**: each word "
            "comes with where in the image GPT-2 was looking when it chose it."
        )
        uploaded = gr.State(None)  # the uploaded image once it has been read; None: caption the example
        with gr.Row():
            with gr.Column():
                example = gr.Dropdown(names, value=first, label="example", visible=bool(names), elem_id="vgpt-example")
                upload = gr.File(label="or upload an image", type="filepath", elem_id="vgpt-upload")
                shown = gr.Image(for_display(page.example(first)), type="pil", label="the image to caption",
                                 interactive=False, height=240, elem_id="vgpt-image")  # fmt: skip
            with gr.Column():
                mode = gr.Radio(list(MODES), value="greedy", label="decoding", elem_id="vgpt-mode")
                beams = gr.Slider(2, 8, value=3, step=1, label="beam width", visible=False, elem_id="vgpt-beams")
                temperature = gr.Slider(0.1, 3.0, value=1.0, step=0.1, label="temperature", visible=False)
                top_p = gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="top-p (nucleus mass)", visible=False)
                button = gr.Button("Caption", variant="primary", elem_id="vgpt-caption-button")
                message = gr.HTML(page.pick_example(first)[1], elem_id="vgpt-message")
                caption = gr.Textbox(label="caption", interactive=False, elem_id="vgpt-caption")
        maps = gr.Plot(label="each word's attention over the image's patches", format="png", elem_id="vgpt-maps")

        def show_options(chosen):
            return (gr.update(visible=chosen == "beam search"), *[gr.update(visible=chosen == "sampling")] * 2)

        def pick(name):  # another image: the upload and the last caption go
            return (*page.pick_example(name), None, "", None)

        def take(path, name):  # another image (or none taken): the last caption goes
            return (*page.upload(path, name), "", None)

        def press(*values):
            text, figure, said = page.caption(*values)
            return text, figure, gr.skip() if said is None else said

        changed = [uploaded, message, shown]
        mode.change(show_options, mode, [beams, temperature, top_p])
        example.input(pick, example, [*changed, upload, caption, maps])
        upload.upload(take, [upload, example], [*changed, caption, maps])
        upload.clear(take, [upload, example], [*changed, caption, maps])
        options = [example, uploaded, mode, beams, temperature, top_p]
        button.click(press, options, [caption, maps, message], api_name="caption")
    return app


def serve(run: str | Path, host: str | None = None, port: int | None = None, block: bool = True):
    """Load the run's captioner and serve its page. `host`/`port` default to Gradio's (127.0.0.1:7860, or
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT, which a Space sets). With `block=False` it returns the
    running app (`app.close()` stops it)."""
    app = build_app(load_captioner(run))
    app.queue(default_concurrency_limit=1)  # one caption at a time: they share one model and the CPU
    app.launch(
        server_name=host,
        server_port=port,
        max_file_size=MAX_UPLOAD_BYTES,  # Gradio refuses larger uploads before they reach the disk
        prevent_thread_lock=not block,
        ssr_mode=False,  # no Node.js server: the page is plain Python's
        footer_links=[],
        quiet=not block,
    )
    return app
