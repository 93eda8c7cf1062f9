"""What the notebooks share that is not a stage: example images, where work is kept, the trained bridge.

On the `tiny` profile the examples are Shapes World scenes; on `seed` they are
Flickr8k photos from `DATA`: the `VGPT_DATA` variable, else a `flickr8k/`
folder in the work folder (any layout `scale.sources.load_captions` reads),
else the seed recipe's Hugging Face dataset `ariG23498/flickr8k`.

Where notebook 06's bridge is missing (on Colab: another machine, whose work was
not kept on Drive), `load_trained` says so and trains a quick one in place, with
the profile's own recipe shortened to one epoch over the captions of the first
QUICK_IMAGES training images: on Flickr8k 500 photos, 2,500 captions, 313 steps,
a few minutes on a T4 (an estimate), for captions that name the obvious.

The notebooks write below `RUNS`, the work folder, one folder per profile:
`VGPT_RUNS` if set, else `runs/notebooks/` in the repository, or on Colab the
folder the notebook's second cell chose with `keep_work` (see `colab.py`), so
that a notebook on a fresh machine finds what earlier ones made.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from .. import features
from ..config import REPO_ROOT, TINY_DIR
from ..files import new_folder, repo_relative
from ..model import VisionGPT2
from ..runtime import pick_device
from ..scale.sources import load_captions
from ..scale.threads import use_cpu_threads
from ..train import CaptionData, train
from ..world import shapes
from ..world.language import entropy_floor
from . import colab

REPO_RUNS = REPO_ROOT / "runs" / "notebooks"
SEED_DATA = "ariG23498/flickr8k"  # the seed recipe's Flickr8k on the Hugging Face Hub, one caption per row
SHIPPED_BRIDGE = TINY_DIR / "bridge"  # made by `python -m vgpt demo --recipe profile`, for notebooks 07-09
QUICK_IMAGES = 500  # training images of a quick bridge: one epoch over their captions


def seed_data(work: Path) -> str | Path:
    """Where the seed's Flickr8k comes from: VGPT_DATA, else `work`/flickr8k if it is a folder, else the Hub."""
    if os.environ.get("VGPT_DATA"):
        return os.environ["VGPT_DATA"]
    folder = Path(work) / "flickr8k"
    return folder if folder.is_dir() else SEED_DATA


# one folder per profile below it (see `run_folder`); the grader points VGPT_RUNS into each run's own folder
RUNS = colab.default_work(REPO_RUNS)
DATA = seed_data(RUNS)


def keep_work(on_drive: bool = False) -> None:
    """Choose the one folder where this notebook keeps its work (data, feature cache, bridges) and say where.

    On Colab, `on_drive=True` mounts Google Drive and keeps it in MyDrive/vgpt, with the Hugging Face
    downloads; run it before anything loads a model. Elsewhere it keeps `runs/notebooks` (see `colab.py`).
    """
    global RUNS, DATA
    use_cpu_threads()  # as many threads as the cores other programs leave free
    RUNS, lines = colab.choose_work(on_drive, REPO_RUNS)
    RUNS.mkdir(parents=True, exist_ok=True)
    DATA = seed_data(RUNS)
    for line in lines:
        print(line)
    print(f"Flickr8k for the seed profile: {where(DATA)}")


def run_folder(profile) -> Path:
    """Where the notebooks write for this profile: a bridge trained on one never meets the other's models."""
    return RUNS / profile.name


where = repo_relative  # a path as a reader should see it: relative to the repository when inside it


def fresh_model(parts, seed: int = 0) -> VisionGPT2:
    """A new bridge on a fresh copy of the frozen GPT-2, its random start from `seed`, so that a cell
    that builds a model can be run again: LoRA goes into the copy, never twice into `parts`' GPT-2."""
    return VisionGPT2.from_parts(parts, random_seed=seed)


def blind_floor(parts) -> float | None:
    """The least loss per caption token a captioner that ignores the image can reach (nats).

    On `tiny` it is exact: the entropy of Shapes World's caption language per
    predicted token (end-of-text included). A model whose loss sits there has
    learned the language but reads nothing from the picture. On Flickr8k no
    exact figure exists: None.
    """
    if parts.profile.data != "shapes":
        return None
    return entropy_floor(parts.tokenizer)


def sample_photo():
    """A real photograph that ships with matplotlib (public domain): Grace Hopper."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def training_folder(profile, n: int = 8000) -> Path:
    """The caption folder notebook 06 trains on. On `tiny`: n Shapes World training scenes in
    Flickr8k's layout (`Images/` + `captions.txt`), written once, whole or not at all, so that a
    rerun reuses them. On `seed`: Flickr8k at `DATA`."""
    if profile.data != "shapes":
        return DATA
    folder = run_folder(profile) / (f"shapes{n // 1000}k" if n % 1000 == 0 else f"shapes{n}")
    if not (folder / "captions.txt").is_file():
        with new_folder(folder) as work:
            shapes.write_flickr_layout(shapes.generate("train", n, seed=0), work, profile.model.image_size)
    return folder


def eval_set(profile, split: str = "test", n: int = 300, seed: int = 0) -> tuple[list, list[list[str]], list | None]:
    """n images of a split, all reference captions of each, and the Shapes World scenes (None on Flickr8k)."""
    if profile.data == "shapes":
        scenes = shapes.generate(split, n, seed=seed)
        return [s.render(profile.model.image_size) for s in scenes], [[s.caption] for s in scenes], scenes
    records = caption_data().split(split)[:n]
    return [r.open() for r in records], [r.captions for r in records], None


def caption_data(source: str | None = None):
    """The seed's captions (`data.Captions` of `DATA`, or of `source`), loaded once per kernel,
    saying what was found: the layout, how captions were grouped, where the split comes from."""
    return _load_once(str(source or DATA))


@functools.cache
def _load_once(source: str):
    found = load_captions(source)
    print(f"{where(source)}: {found.describe()}")
    if found.skipped:
        print(f"skipped {len(found.skipped)} rows; first: {found.skipped[0]}")
    return found


def examples(profile, n: int = 8, split: str = "test", seed: int = 0) -> tuple[list, list[str]]:
    """n example images and a caption for each: Shapes World scenes (tiny) or Flickr8k photos (seed)."""
    images, references, _ = eval_set(profile, split, n, seed)
    return images, [r[0] for r in references]


def load_trained(parts, mine: bool | None = None) -> VisionGPT2:
    """A trained captioner: the bridge notebook 06 wrote (`mine=True`, the default off `tiny`), or on
    `tiny` the shipped one, trained by `python -m vgpt demo --recipe profile` (the tiny profile's 7 epochs).

    Where notebook 06 has not run, it says so and trains a quick bridge in place, once; later calls
    find that one. The bridge goes on a copy of GPT-2, as in `fresh_model`: the cell can be run
    again, and `parts` stays unwrapped.
    """
    if mine is None:
        mine = parts.profile.name != "tiny"
    runs = run_folder(parts.profile)
    own, quick = runs / "06" / "bridge", runs / "quick" / "bridge"
    if not mine and parts.profile.name == "tiny":
        folder = SHIPPED_BRIDGE
    elif (own / "bridge.json").is_file():
        folder = own
    elif (quick / "bridge.json").is_file():
        print(f"no bridge from notebook 06 at {where(own)}: taking the quick one trained here before")
        folder = quick
    else:
        folder = train_quick_bridge(parts, own, runs / "quick")
    print(f"bridge: {where(folder)}")
    return VisionGPT2.from_pretrained(folder, parts)


def train_quick_bridge(parts, own: Path, run_dir: Path, device=None) -> Path:
    """Say what is missing and how to get it, then cache the features of the first QUICK_IMAGES training
    images and train a bridge for one epoch over their captions (on a fresh copy of GPT-2, so that
    `parts` stays unwrapped); saved in `run_dir`/bridge, which is returned."""
    profile, device = parts.profile, pick_device(device)
    if profile.data == "shapes":
        scenes, size = shapes.generate("train", QUICK_IMAGES, seed=0), profile.model.image_size
        images = [(f"scene-{i}", (lambda s=s: s.render(size)), [s.caption]) for i, s in enumerate(scenes)]
    else:
        images = [(r.image_id, r.open, r.captions) for r in caption_data().split("train")[:QUICK_IMAGES]]
    steps = -(-sum(len(c) for _, _, c in images) // profile.train.batch_size)
    print(
        f"no bridge from notebook 06 at {where(own)}. To use yours, run notebook 06 first (on Colab, in the "
        f"same work folder: keep_work(on_drive=True) at the top of both). Meanwhile, a quick bridge trained "
        f"here: one epoch over {len(images)} training images, {steps} steps (a few minutes on a GPU on seed)"
    )
    home = next(parts.vision.parameters()).device
    cache = features.build_cache(
        parts.vision,
        [(image_id, opener) for image_id, opener, _ in images],
        features.processor_pixels(parts.image_processor),
        Path(run_dir) / "features",
        profile.model,
        device=device,
    )
    usable = [(i, c) for i, _, captions in images if i not in cache.unreadable for c in captions]
    source = lambda ids: cache.get(ids).float()  # noqa: E731  image ids -> (B, N, Dv)
    model = fresh_model(parts)
    model.calibrate_projector(source(list(dict.fromkeys(i for i, _ in usable))[:256]))
    train(model, CaptionData(usable, source), profile.train.with_(epochs=1), run_dir=run_dir, device=device)
    model.to(home)  # train() moved the shared vision tower too: back where the notebook keeps its models
    return model.save_pretrained(Path(run_dir) / "bridge")
