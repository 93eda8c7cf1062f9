"""What the notebooks share that is not a stage: example images, where runs go, the trained bridge.

On the `tiny` profile the examples are Shapes World scenes; on `seed` they are
Flickr8k photos from `DATA` (the `VGPT_DATA` variable, else `/content/flickr8k`,
where notebook 00's Colab cell unpacks it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..paths import REPO_ROOT, TINY_DIR, repo_relative, swap_into_place

RUNS = REPO_ROOT / "runs" / "notebooks"  # one folder per profile below it: see `run_folder`
DATA = Path(os.environ.get("VGPT_DATA", "/content/flickr8k"))
SHIPPED_BRIDGE = TINY_DIR / "bridge"  # made by `python -m vgpt demo`, for notebooks 07 and 08


def run_folder(profile) -> Path:
    """Where the notebooks write for this profile: a bridge trained on one never meets the other's models."""
    return RUNS / profile.name


where = repo_relative  # a path as a reader should see it: relative to the repository when inside it


def fresh_model(parts, seed: int = 0):
    """A new `VisionGPT2` on a fresh copy of the frozen GPT-2, so that a cell that builds a model can
    be run again: LoRA is injected into the copy, never twice into the model `parts` holds.

    The vision tower is shared (it is never changed); GPT-2 is copied (0.5 GB on seed).
    """
    import copy

    import torch

    from ..bridge import BridgeConfig
    from ..model import VisionGPT2

    lm = copy.deepcopy(parts.language_model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = BridgeConfig.for_models(parts.profile, parts.vision, lm)
        return VisionGPT2(parts.vision, lm, config, parts.tokenizer)


def blind_floor(parts) -> float | None:
    """The least loss per caption token a captioner that ignores the image can reach (nats).

    On `tiny` it is exact: the entropy of Shapes World's caption language per
    predicted token (end-of-text included). A model whose loss sits there has
    learned the language but reads nothing from the picture. On Flickr8k no
    exact figure exists: None.
    """
    if parts.profile.data != "shapes":
        return None
    from ..world.language import entropy_floor

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
    from ..world import shapes

    folder = run_folder(profile) / (f"shapes{n // 1000}k" if n % 1000 == 0 else f"shapes{n}")
    if not (folder / "captions.txt").is_file():
        work = folder.with_name(folder.name + ".partial")
        shutil.rmtree(work, ignore_errors=True)
        shapes.write_flickr_layout(shapes.generate("train", n, seed=0), work, profile.model.image_size)
        swap_into_place(work, folder)
    return folder


def eval_set(profile, split: str = "test", n: int = 300, seed: int = 0) -> tuple[list, list[list[str]], list | None]:
    """n images of a split, all reference captions of each, and the Shapes World scenes (None on Flickr8k)."""
    if profile.data == "shapes":
        from ..world import shapes

        scenes = shapes.generate(split, n, seed=seed)
        return [s.render(profile.model.image_size) for s in scenes], [[s.caption] for s in scenes], scenes
    from ..data import load_captions, open_image

    if not DATA.is_dir():
        raise FileNotFoundError(f"no Flickr8k at {DATA}: run notebook 00's download cell, or set VGPT_DATA")
    records = load_captions(DATA).split(split)[:n]
    return [open_image(r.image) for r in records], [r.captions for r in records], None


def examples(profile, n: int = 8, split: str = "test", seed: int = 0) -> tuple[list, list[str]]:
    """n example images and a caption for each: Shapes World scenes (tiny) or Flickr8k photos (seed)."""
    images, references, _ = eval_set(profile, split, n, seed)
    return images, [r[0] for r in references]


def load_trained(parts, mine: bool | None = None):
    """A trained captioner: the bridge notebook 06 wrote (`mine=True`, the default off `tiny`), or on
    `tiny` the shipped one, trained by the full `python -m vgpt demo` run (the default there)."""
    from ..model import VisionGPT2

    own = run_folder(parts.profile) / "06" / "bridge"
    if mine is None:
        mine = parts.profile.name != "tiny"
    if mine and (own / "bridge.json").is_file():
        folder = own
    elif not mine and parts.profile.name == "tiny":
        folder = SHIPPED_BRIDGE
    else:
        raise FileNotFoundError(f"no trained bridge for {parts.profile.name!r} at {own}: run notebook 06 first")
    print(f"bridge: {where(folder)}")
    return VisionGPT2.load_bridge(folder, parts).eval()
