"""Runs on caption data (a folder in any Flickr8k layout, or a Hugging Face dataset: whatever
`data.load_captions` reads): extract features, train, caption, evaluate.

A run folder holds `bridge/` (what was trained), `checkpoint/` (to resume),
`metrics.json`, `loss.png` and `captions.png`. `caption` and `evaluate` load
the bridge onto freshly loaded base models of the profile it names.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from .. import coco, distributed, features, generate, metrics, viz
from ..bridge import BRIDGE_CONFIG
from ..data import DataError, load_captions, open_image
from ..device import pick_device
from ..errors import UserError
from ..loading import load_profile
from ..model import VisionGPT2
from ..paths import repo_relative
from ..profiles import PROFILES
from ..train import CaptionData, train, uses_shared_prefix


def data_label(data: str | Path) -> str:
    """A data source as a run records it: the full path of a folder or file, a Hub id as it is."""
    return repo_relative(str(Path(data).resolve())) if Path(data).exists() else str(data)


def folder_features(parts, data: str | Path, cache_root: str | Path, log=print):
    """The data's captions (`data.Captions`), and the feature cache of all its images (built once)."""
    found = load_captions(data)
    log(f"{data_label(data)}: {found.describe()}")  # relative to the repository when inside it
    if found.skipped:
        log(f"skipped {len(found.skipped)} rows; first: {found.skipped[0]}")
    items = [(r.image_id, r.open) for r in found.records]
    cache = features.build_cache(
        parts.vision,
        items,
        features.processor_pixels(parts.image_processor),
        Path(cache_root) / Path(data).resolve().name,
        parts.profile.model.features,
        parts.profile.model.image_size,
        device=distributed.device_for_rank(pick_device()),
    )  # the tower on the GPU if any
    if cache.unreadable:
        found.records = [r for r in found.records if r.image_id not in cache.unreadable]
        found.skipped += [f"{reason} (left out)" for reason in cache.unreadable.values()]
        log(
            f"left out {len(cache.unreadable)} images that cannot be read; first: "
            f"{next(iter(cache.unreadable.values()))}"
        )
    return found, cache


def train_folder(
    profile: str,
    data: str | Path,
    out: str | Path,
    cache_root: str | Path,
    resume: bool = False,
    log=print,
    checkpoint_every: int | str | None = "10min",
    **changes,
) -> dict:
    """Train a bridge on the folder's train split into the run folder `out`.

    Under `torchrun` each rank runs this; features are extracted in shards,
    and only rank 0 logs and writes (see `distributed.py`).
    """
    distributed.init()
    if not distributed.is_main():
        log = lambda *args, **kw: None
    parts = load_profile(profile, verbose=distributed.is_main())
    found, cache = folder_features(parts, data, cache_root, log)
    source = lambda ids: cache.get(ids).float()  # noqa: E731
    train_recs, val_recs = found.split("train"), found.split("val")
    if not train_recs:
        raise DataError(f"{data}: no images fall in the training split")
    pairs = lambda recs: [(r.image_id, c) for r in recs for c in r.captions]  # noqa: E731
    torch.manual_seed(changes.get("seed", 0))
    model = VisionGPT2.from_parts(parts)
    if not resume:
        model.calibrate_projector(cache.get([r.image_id for r in train_recs[:256]]).float())
    config = parts.profile.train.with_(**changes)
    shared = uses_shared_prefix(CaptionData(pairs(train_recs), source), config)
    log(
        f"training on {len(train_recs)} images ({len(pairs(train_recs))} captions), "
        f"validating on {len(val_recs)}; {'one prefix pass per image' if shared else 'one caption per sequence'}"
    )

    def val_metrics(epoch, record):  # caption metrics each epoch, on up to 200 val images
        if val_recs:
            scores = score_records(model, val_recs[:200], cache, num_beams=parts.profile.eval_beams)
            record.update({f"val_{k}": v for k, v in scores.items()})

    history = train(
        model,
        CaptionData(pairs(train_recs), source),
        config,
        val_data=CaptionData(pairs(val_recs), source) if val_recs else None,
        run_dir=out,
        resume=resume,
        on_epoch_end=val_metrics,
        checkpoint_every=checkpoint_every,
    )
    out = Path(out)
    if not distributed.is_main():
        return {}
    model.save_bridge(out / "bridge")
    viz.loss_curve(history, out / "loss.png")
    summary = {
        "profile": parts.profile.name,
        "data": data_label(data),
        "train_config": asdict(config),
        "history": history["epochs"],
    }
    if val_recs:
        summary["val"] = score_records(model, val_recs, cache, num_beams=parts.profile.eval_beams)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"wrote {out}/")
    return summary


def score_records(model, records, cache, **options) -> dict:
    texts, ended = generate.generate_captions(
        model, features=cache.get([r.image_id for r in records]).float(), **options
    )
    scores = metrics.caption_scores(texts, [r.captions for r in records])
    scores["eos_rate"] = sum(ended) / len(ended)
    return scores


def _default_beams(options: dict, profile) -> None:
    if options.get("num_beams") is None:
        options["num_beams"] = profile.eval_beams


def load_run(run: str | Path):
    """The bridge of a run folder on freshly loaded base models of its profile: (model, parts)."""
    run = Path(run)
    bridge = run / "bridge" if (run / "bridge" / BRIDGE_CONFIG).is_file() else run
    if not (bridge / BRIDGE_CONFIG).is_file():
        raise UserError(f"{run}: no trained bridge here (bridge/{BRIDGE_CONFIG} missing)")
    name = json.loads((bridge / BRIDGE_CONFIG).read_text())["profile"]
    if name not in PROFILES:
        raise DataError(f"{bridge / BRIDGE_CONFIG}: unknown profile {name!r}")
    parts = load_profile(name, verbose=False)
    return VisionGPT2.load_bridge(bridge, parts).eval(), parts


def caption_files(run: str | Path, images: list[str | Path], **options) -> list[str]:
    """Captions for image files, by the bridge of a run folder."""
    model, parts = load_run(run)
    _default_beams(options, parts.profile)
    pixels = features.processor_pixels(parts.image_processor)([open_image(p) for p in images])
    texts, _ = generate.generate_captions(model, pixel_values=pixels, **options)
    return texts


def evaluate_run(
    run: str | Path, data: str | Path, cache_root: str | Path, split: str = "test", log=print, **options
) -> dict:
    """Caption metrics of a run's bridge on one split of a caption folder (all of it if that split is empty)."""
    model, parts = load_run(run)
    model.to(pick_device())  # captions thousands of images: on the GPU if there is one
    _default_beams(options, parts.profile)
    found, cache = folder_features(parts, data, cache_root, log)
    chosen = found.split(split)
    label = split if chosen else "all"
    chosen = chosen or found.records
    scores = score_records(model, chosen, cache, **options)
    log(f"{len(chosen)} images of {data} ({label}):")
    for k, v in scores.items():
        log(f"  {k:<10}{v:.3f}")
    if found.layout == coco.LAYOUT:  # papers' scale, beside published figures (theirs, labelled so)
        for line in coco.published_lines(scores, label):
            log(line)
    return scores
