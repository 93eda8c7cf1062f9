"""The recipe on real caption data (any source `sources.load_captions` reads): extract features, train,
caption, evaluate; under torchrun with several processes too.

A run folder holds `bridge/` (what was trained, with its model card), `checkpoint/` (to resume),
`metrics.json`, `loss.png` and `captions.png`. `caption` and `evaluate` load the bridge onto freshly
loaded frozen models of the profile it names.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from .. import features, generate, metrics, plots
from ..bridge import BRIDGE_CONFIG, load_frozen, read_config
from ..config import UserError
from ..data import DataError, open_image
from ..files import repo_relative, write_text
from ..loading import load_profile
from ..model import VisionGPT2
from ..runtime import pick_device
from ..train import CaptionData, speedups_for, train
from . import coco, distributed
from .sources import load_captions


def data_label(data: str | Path) -> str:
    """A data source as a run records it: the full path of a folder or file, a Hub id as it is."""
    return repo_relative(str(Path(data).resolve())) if Path(data).exists() else str(data)


def folder_features(parts, data: str | Path, cache_root: str | Path, log=print, world=None):
    """The data's captions (`data.Captions`), and the feature cache of all its images (built once)."""
    world = world or distributed.world()
    found = load_captions(data)
    log(f"{data_label(data)}: {found.describe()}")  # relative to the repository when inside it
    if found.skipped:
        log(f"skipped {len(found.skipped)} rows; first: {found.skipped[0]}")
    cache = features.build_cache(
        parts.vision,
        [(r.image_id, r.open) for r in found.records],
        features.processor_pixels(parts.image_processor),
        Path(cache_root) / Path(data).resolve().name,
        parts.profile.model,
        device=world.device(pick_device()),
        world=world,
    )
    if cache.unreadable:  # the tower ran on the GPU if there is one
        found.records = [r for r in found.records if r.image_id not in cache.unreadable]
        found.skipped += [f"{reason} (left out)" for reason in cache.unreadable.values()]
        first = next(iter(cache.unreadable.values()))
        log(f"left out {len(cache.unreadable)} images that cannot be read; first: {first}")
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
    """Train a bridge on the data's train split into the run folder `out`. Under torchrun each rank runs
    this; features are extracted in shards, and only rank 0 logs and writes."""
    world = distributed.world()
    if not world.is_main:
        log = lambda *args, **kw: None  # noqa: E731
    parts = load_profile(profile, verbose=world.is_main)
    found, cache = folder_features(parts, data, cache_root, log, world)
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
    train_data = CaptionData(pairs(train_recs), source)
    shared, _ = speedups_for(model, train_data, config)
    log(
        f"training on {len(train_recs)} images ({len(train_data.pairs)} captions), validating on {len(val_recs)}; "
        f"{'one prefix pass per image' if shared else 'one caption per sequence'}"
    )

    def val_metrics(epoch, record):  # caption metrics each epoch, on up to 200 val images
        if val_recs:
            scores = score_records(model, val_recs[:200], cache, num_beams=parts.profile.eval_beams)
            record.update({f"val_{k}": v for k, v in scores.items()})

    history = train(
        model,
        train_data,
        config,
        val_data=CaptionData(pairs(val_recs), source) if val_recs else None,
        run_dir=out,
        resume=resume,
        on_epoch_end=val_metrics,
        checkpoint_every=checkpoint_every,
        world=world,
    )
    out = Path(out)
    if not world.is_main:
        return {}
    summary = {
        "profile": parts.profile.name,
        "data": data_label(data),
        "train_config": asdict(config),
        "history": history["epochs"],
    }
    if val_recs:
        summary["val"] = score_records(model, val_recs, cache, num_beams=parts.profile.eval_beams)
    model.save_pretrained(
        out / "bridge",
        {"recipe": config, "data": data_label(data), "metrics": {"val": summary.get("val", {})} if val_recs else {}},
    )
    plots.loss_curve(history, out / "loss.png")
    write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
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
    """The bridge of a run folder (or a bridge folder) on freshly loaded frozen models of its profile:
    (model, parts)."""
    run = Path(run)
    folder = run / "bridge" if (run / "bridge" / BRIDGE_CONFIG).is_file() else run
    if not (folder / BRIDGE_CONFIG).is_file():
        raise UserError(f"{run}: no trained bridge here (bridge/{BRIDGE_CONFIG} missing)")
    parts = load_frozen(*read_config(folder), folder)
    return VisionGPT2.from_pretrained(folder, parts), parts


def caption_files(run: str | Path, images: list[str | Path], **options) -> list[str]:
    """Captions for image files, by the bridge of a run folder."""
    model, parts = load_run(run)
    _default_beams(options, model.profile)
    pixels = features.processor_pixels(parts.image_processor)([open_image(p) for p in images])
    return generate.generate_captions(model, pixel_values=pixels, **options)[0]


def evaluate_run(
    run: str | Path, data: str | Path, cache_root: str | Path, split: str = "test", log=print, **options
) -> dict:
    """Caption metrics of a run's bridge on one split of the data (all of it if that split is empty)."""
    model, parts = load_run(run)
    model.to(pick_device())  # captions thousands of images: on the GPU if there is one
    _default_beams(options, model.profile)
    found, cache = folder_features(parts, data, cache_root, log)
    chosen = found.split(split)
    label, chosen = (split if chosen else "all"), chosen or found.records
    scores = score_records(model, chosen, cache, **options)
    log(f"{len(chosen)} images of {data} ({label}):")
    for k, v in scores.items():
        log(f"  {k:<10}{v:.3f}")
    if found.layout == coco.LAYOUT:  # papers' scale, beside published figures (theirs, labelled so)
        for line in coco.published_lines(scores, label):
            log(line)
    return scores
