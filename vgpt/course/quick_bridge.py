"""A quick bridge trained in place, for a notebook that needs a trained captioner where notebook 06's is missing.

On Colab every notebook runs on a machine of its own: notebooks 07 and 08 find
the bridge notebook 06 trained only in a work folder kept on Google Drive
(`notebook.keep_work(on_drive=True)` in both). Without it, `notebook.load_trained`
says so and trains this one instead, with the profile's own recipe, shortened:

    one epoch over the captions of the first QUICK_IMAGES training images
    features cached first (on the GPU where there is one), projector calibrated as in 06

On Flickr8k that is 500 photos, 2,500 captions, 313 steps of 8 captions: a few
minutes on a T4 (an estimate), for captions that name the obvious (a dog, a
man, the grass) and little more; notebook 06's three epochs over 6,000 photos
do better. On the seed stand-in of the Colab simulation (random weights) it is
its 16 training images; on `tiny`, 500 Shapes World scenes (seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import features
from ..device import pick_device
from ..train import CaptionData, train

QUICK_IMAGES = 500  # training images of a quick bridge: one epoch over their captions

# (image id, a function that opens the image, its captions)
Item = tuple[str, Callable[[], object], list[str]]


def quick_steps(images: list[Item], batch_size: int) -> int:
    """Optimizer steps of the quick run: one epoch over every caption of `images`."""
    captions = sum(len(c) for _, _, c in images)
    return -(-captions // batch_size)


def train_quick_bridge(parts, images: list[Item], run_dir: str | Path, device=None) -> Path:
    """Cache the features of `images`, train a bridge for one epoch over their captions on a fresh copy of
    GPT-2 (so that `parts` stays unwrapped), save it in `run_dir`/bridge and return that folder."""
    from .notebook import fresh_model  # notebook.load_trained calls this module: imported here, not at the top

    run_dir, device = Path(run_dir), pick_device(device)
    home = next(parts.vision.parameters()).device
    spec = parts.profile.model
    cache = features.build_cache(
        parts.vision,
        [(image_id, opener) for image_id, opener, _ in images],
        features.processor_pixels(parts.image_processor),
        run_dir / "features",
        spec.features,
        spec.image_size,
        device=device,
    )
    usable = [(i, c) for i, _, captions in images if i not in cache.unreadable for c in captions]
    source = lambda ids: cache.get(ids).float()  # image ids -> (B, N, Dv)
    model = fresh_model(parts)
    model.calibrate_projector(source(list(dict.fromkeys(i for i, _ in usable))[:256]))
    config = parts.profile.train.with_(epochs=1)
    train(model, CaptionData(usable, source), config, run_dir=run_dir, device=device)
    model.to(home)  # train() moved the shared vision tower too: back where the notebook keeps its models
    return model.save_bridge(run_dir / "bridge")
