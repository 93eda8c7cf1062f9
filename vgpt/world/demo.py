"""The main job, end to end on the `tiny` profile, offline, on a CPU:

Shapes World scenes -> cached features -> train the bridge -> caption the
test and compositional splits -> metrics table, metrics.json, loss curve,
caption grid, bridge checkpoint, all in one run folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from .. import features, generate, metrics, plots
from ..config import TINY
from ..files import repo_relative, write_text
from ..loading import load_profile
from ..model import VisionGPT2
from ..train import CaptionData, train
from . import scores, shapes

# The demo's training recipe, cut for time: the profile's own with fewer epochs at a higher learning
# rate, and the lean forward (the same loss, less work a step); `python -m vgpt bench --demo` times it
# beside the profile's own. `recipe="profile"` runs TINY.train as it is, the recipe of the shipped
# bridge and of notebooks 06-09.
RECIPES = {
    "profile": TINY.train,
    "fast": TINY.train.with_(epochs=4, lr_projector=3e-3, lr_lora=3e-3, lean_forward=True),  # 7, 2e-3, 2e-3, False
}


CARD_METRICS = ("exact_match", "eos_rate", "BLEU-4", "CIDEr-D")  # the model card's figures of a run


def shapes_features(parts, split: str, n: int, seed: int, cache_root: Path):
    """Scenes of one split and a feature lookup backed by the on-disk cache."""
    scenes = shapes.generate(split, n, seed=seed)
    items = [(f"{split}-{seed}-{i}", (lambda s=s: s.render(TINY.model.image_size))) for i, s in enumerate(scenes)]
    cache = features.build_cache(
        parts.vision,
        items,
        features.processor_pixels(parts.image_processor),
        cache_root / f"shapes-{split}-{n}-{seed}",
        parts.profile.model,
        batch_size=256,
    )
    return scenes, [i for i, _ in items], cache


def run_demo(
    run_dir: str | Path = "runs/demo",
    n_train: int = 20_000,
    n_eval: int = 500,
    epochs: int | None = None,
    seed: int = 0,
    cache_root: str | Path = "runs/features",
    progress: bool = True,
    log=print,
    recipe: str = "fast",
) -> dict:
    start = time.perf_counter()
    run_dir, cache_root = Path(run_dir), Path(cache_root)
    run_dir.mkdir(parents=True, exist_ok=True)
    parts = load_profile(TINY, verbose=False)
    profile = parts.profile
    log(f"profile tiny: {repo_relative(profile.model.vision_model)} + {repo_relative(profile.model.language_model)}")

    splits = {
        name: shapes_features(parts, name, n, seed, cache_root)
        for name, n in (("train", n_train), ("val", n_eval), ("test", n_eval), ("compositional", n_eval))
    }

    def data(name):
        scenes, ids, cache = splits[name]
        return CaptionData(list(zip(ids, [s.caption for s in scenes])), lambda batch: cache.get(batch).float())

    torch.manual_seed(seed)
    model = VisionGPT2.from_parts(parts)
    model.calibrate_projector(splits["train"][2].get(splits["train"][1][:256]).float())
    report = model.parameter_report()
    log(
        f"trainable {report['trainable']:,} of {report['total']:,} parameters "
        f"(projector {report['projector']:,}, LoRA {report['lora']:,})"
    )
    config = RECIPES[recipe].with_(seed=seed, **({"epochs": epochs} if epochs else {}))
    val_scenes, val_ids, val_cache = splits["val"]

    def val_captions(epoch, record):  # caption metrics each epoch, on the val split
        texts, ended = generate.generate_captions(model, features=val_cache.get(val_ids).float())
        record["val_exact_match"] = scores.shapes_scores(texts, val_scenes)["exact_match"]
        record["val_eos_rate"] = sum(ended) / len(ended)

    t = time.perf_counter()
    history = train(
        model,
        data("train"),
        config,
        val_data=data("val"),
        run_dir=run_dir,
        on_epoch_end=val_captions,
        progress=progress,
    )
    train_s = time.perf_counter() - t
    for e in history["epochs"]:
        log(
            f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, val loss {e['val_loss']:.4f}, "
            f"val exact match {e['val_exact_match']:.1%}"
        )

    results, t = {}, time.perf_counter()
    for name in ("test", "compositional"):
        scenes, ids, cache = splits[name]
        texts, ended = generate.generate_captions(model, features=cache.get(ids).float())
        found = scores.shapes_scores(texts, scenes)
        found.update(metrics.caption_scores(texts, [[s.caption] for s in scenes]))
        found["eos_rate"] = sum(ended) / len(ended)
        results[name] = {
            "scores": found,
            "examples": [{"reference": s.caption, "prediction": p} for s, p in zip(scenes[:8], texts[:8])],
        }
        if name == "test":
            plots.caption_grid(
                [s.render(256) for s in scenes[:12]],
                texts[:12],
                [s.caption for s in scenes[:12]],
                run_dir / "captions.png",
            )
    caption_s = (time.perf_counter() - t) / (2 * n_eval)
    card = {
        "recipe": config,
        "metrics": {split: {k: v for k, v in r["scores"].items() if k in CARD_METRICS} for split, r in results.items()},
    }
    model.save_pretrained(run_dir / "bridge", card)
    plots.loss_curve(history, run_dir / "loss.png")
    summary = {
        "profile": asdict(profile),
        "train_config": asdict(config),
        "n_train": n_train,
        "n_eval": n_eval,
        "parameters": report,
        "history": history["epochs"],
        "results": results,
        "seconds": {
            "train": round(train_s, 1),
            "per_caption": round(caption_s, 4),
            "total": round(time.perf_counter() - start, 1),
        },
    }
    write_text(run_dir / "metrics.json", json.dumps(summary, indent=2) + "\n")
    _print_table(results, log)
    log(
        f"wrote {run_dir}/: bridge/, metrics.json, loss.png, captions.png "
        f"({summary['seconds']['total']:.0f} s in all, training {train_s:.0f} s)"
    )
    return summary


def _print_table(results: dict, log) -> None:
    keys = list(results["test"]["scores"])
    log(f"\n{'metric':<20}{'test':>10}{'compositional':>16}")
    for k in keys:
        a, b = results["test"]["scores"][k], results["compositional"]["scores"][k]
        fmt = (lambda v: f"{v:.1%}") if k.endswith(("match", "accuracy", "rate")) else (lambda v: f"{v:.3f}")
        log(f"{k:<20}{fmt(a):>10}{fmt(b):>16}")
    log("\nexamples (test split):")
    for ex in results["test"]["examples"][:5]:
        mark = "ok " if ex["prediction"] == ex["reference"] else "   "
        log(f"  {mark}{ex['prediction']!r:<55} truth: {ex['reference']!r}")
