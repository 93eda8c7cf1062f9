"""Notebook 09's experiments on `tiny`: short training runs that each change a few settings of one
baseline, each repeated over seeds, and a linear probe of the frozen vision tower; every result
cached on disk by its settings.

    Settings (BASE + changes, one seed)
      -> Shapes World features (frozen tower, the chosen hidden state; cached per layer)
      -> a fresh VisionGPT2 on a copy of the frozen GPT-2 (projector and LoRA as asked)
      -> train (one short run)
      -> validation loss (nats / caption token), exact match and end-of-text rate on the test and
         compositional splits, accuracy per attribute
      -> <folder>/<key>.json, key = a hash of the settings
    run_seeds: the same for each of SEEDS -> the mean and spread (sd) of every figure

A short run is chaotic: the same code and seed gives another result wherever the floating-point
rounding differs (another torch build, CPU kernel path or thread count), as much as a change of
seed does. So a single run measures little: every row of the table is the mean of SEEDS, and the
baseline's noise, its spread over seeds, builds, kernel paths and thread counts, is measured once
and shipped (`BASELINE_SPREAD`, made by `.ci/baseline_spread.py`). A difference between two rows
is a finding only where it exceeds twice that noise (`differences`); a learner's baseline passes
where it lies within `TOLERANCE_SDS` of it (`check_baseline`).

A cell that asks for a run whose file exists reads it back instead of training again, so notebook
cells can be rerun freely; change any setting and the key, so the file, changes with it.

The repository ships the results of notebook 09's runs in data/tiny/experiments/ (written by this
module: run the notebook with `RETRAIN = True`, then copy its folder's JSON files there). A run
found neither in `folder` nor there is trained; `shipped=None` ignores the shipped results.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from .. import features, generate
from ..config import TINY_DIR, TrainConfig
from ..files import write_text
from ..masks import joint_attention_mask
from ..model import VisionGPT2
from ..prefix import caption_labels, concat_prefix
from ..train import CaptionData, train, validation_loss
from ..world import scores, shapes
from .notebook import SHIPPED_BRIDGE

CACHE_VERSION = 1  # bump when the way a run is trained or scored changes: old results no longer count
BASE_TARGETS = ("c_attn", "c_proj", "c_fc", "lm_head")  # the tiny profile's
SHIPPED_RESULTS = TINY_DIR / "experiments"  # notebook 09's runs, as this module wrote them
BASELINE_SPREAD = SHIPPED_RESULTS / "baseline-spread.json"  # the baseline's runs on several builds and kernel paths
SEEDS = (0, 1, 2)  # every row of notebook 09's tables is one run per seed
TOLERANCE_SDS = 4  # a learner's baseline passes within this many of the shipped runs' sd of their mean


@dataclass(frozen=True)
class Settings:
    """One short run. The defaults are the baseline: the `tiny` profile's bridge, trained briefly."""

    projector: str = "mlp"  # "mlp" or "linear" (stage 02)
    calibrate: bool = True  # scale the projector to GPT-2's embedding size before training (stage 02)
    layer: int = -1  # the tower's hidden state used as features: -1 last, -2 penultimate, 0 embeddings
    lora_targets: tuple[str, ...] = BASE_TARGETS  # the GPT-2 modules that get an adapter
    lora_r: int = 16  # rank; alpha = 2 r, so that the update's scale alpha / r stays 2 (stage 05)
    labels: str = "position"  # "position" (stage 03's rule) or "token_id" (-100 wherever id == pad)
    attention: str = "causal"  # "causal" or "prefix_lm": the image block opened (stage 04's two rules)
    zero_features: bool = False  # every feature replaced by 0: a captioner that cannot see
    data: str = "plain"  # "plain" scenes; "counterfactual": half one-word twins; "balanced": see training_scenes
    start: str = "scratch"  # "scratch" (a new bridge) or "shipped": go on training data/tiny/bridge
    n_train: int = 4000  # training scenes (one caption each)
    epochs: int = 2  # 0: no training, only the scores of the bridge as it starts
    batch_size: int = 16  # the profile's 64 learns less per second in a run this short
    lr: float = 2e-3  # projector and LoRA alike
    warmup_steps: int = 50
    schedule: str = "warmup_cosine"  # or "constant"
    seed: int = 0
    n_eval: int = 300  # scenes per evaluation split (val, test, compositional)

    def __post_init__(self):
        choices = {"projector": ("mlp", "linear"), "labels": ("position", "token_id"),
                   "attention": ("causal", "prefix_lm"), "data": ("plain", "counterfactual", "balanced"),
                   "schedule": ("warmup_cosine", "constant"), "start": ("scratch", "shipped")}  # fmt: skip
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}: choose one of {', '.join(map(repr, allowed))}")
        if not self.lora_targets:
            raise ValueError("lora_targets is empty: name at least one GPT-2 module, e.g. ('c_attn',)")
        shipped = {"projector": "mlp", "layer": -1, "lora_r": 16, "lora_targets": BASE_TARGETS}
        if self.start == "shipped" and any(getattr(self, k) != v for k, v in shipped.items()):
            raise ValueError(
                f"start='shipped' goes on training the shipped bridge, whose shape is fixed: "
                f"keep {', '.join(f'{k}={v!r}' for k, v in shipped.items())}"
            )

    def key(self) -> str:
        settings = asdict(self)
        if settings["attention"] == "causal":  # the default leaves the key as it was before it was a setting
            del settings["attention"]
        blob = json.dumps({"version": CACHE_VERSION, **settings}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


BASE = Settings()


def settings_with(changes: dict, base: Settings = BASE) -> Settings:
    """`base` with `changes`; an unknown name is refused with the list of known ones."""
    known = [f.name for f in fields(Settings)]
    unknown = sorted(set(changes) - set(known))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if "lora_targets" in changes:
        changes = {**changes, "lora_targets": tuple(changes["lora_targets"])}
    return replace(base, **changes)


# ------------------------------------------------------------------ labels by token id


def labels_by_token_id(ids: torch.Tensor, text_mask: torch.Tensor, n_prefix: int, pad_id: int) -> torch.Tensor:
    """The usual mistake, on purpose: stage 03's labels, then -100 wherever the token is the pad id.

    GPT-2 pads with its end-of-text id, so this also hides every caption's own end-of-text: the
    model is never taught to stop. ids (B, T) -> labels (B, N + T).
    """
    labels = caption_labels(ids, text_mask, n_prefix)
    labels[:, n_prefix:] = labels[:, n_prefix:].masked_fill(ids == pad_id, -100)
    return labels


class TokenIdLabelsGPT2(VisionGPT2):
    """`VisionGPT2` that *trains* on `labels_by_token_id`. In eval mode (validation) it scores with
    stage 03's labels like every other run, so its loss counts the end-of-text it never learned.
    (Training one caption per sequence goes through this forward; the runner trains that way.)"""

    def forward(self, input_ids, text_mask, pixel_values=None, features=None, with_loss: bool = True, owner=None,
                shared_prefix: bool = False, lean: bool = False):  # fmt: skip
        if not (self.training and with_loss):
            return super().forward(input_ids, text_mask, pixel_values, features, with_loss, owner, shared_prefix, lean)
        if owner is not None:
            features = features[owner.to(features.device)]
        prefix = self.visual_prefix(pixel_values=pixel_values, features=features)  # (B, N, Dt)
        embeds = concat_prefix(prefix, self.token_embeddings(input_ids))  # (B, N + T, Dt)
        mask = joint_attention_mask(text_mask, prefix.shape[1])  # (B, N + T)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        labels = labels_by_token_id(input_ids, text_mask, prefix.shape[1], pad)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, labels=labels)


# ------------------------------------------------------------------ data and model


def scene_features(parts, scenes: list, name: str, layer: int, cache_root: Path):
    """Image ids and a feature cache (frozen tower, hidden state `layer`) for Shapes World scenes."""
    spec = parts.profile.model.with_(feature_layer=layer)
    size = parts.profile.model.image_size
    items = [(f"{name}-{i}", (lambda s=s: s.render(size))) for i, s in enumerate(scenes)]
    cache = features.build_cache(parts.vision, items, features.processor_pixels(parts.image_processor),
                                 cache_root / name, spec, batch_size=256)  # fmt: skip
    return [i for i, _ in items], cache


def feature_lookup(cache, zero: bool = False):
    """Image ids -> features (B, N, Dv) as float32 from the cache; all zeros when `zero`."""

    def get(ids):
        found = cache.get(ids).float()
        return torch.zeros_like(found) if zero else found

    return get


# colours that training images show with every shape: in scenes of these alone, colour says nothing about shape
NEUTRAL_COLORS = tuple(c for c in shapes.COLORS if all(c != held for held, _ in shapes.COMPOSITIONAL_PAIRS))


def training_scenes(settings: Settings) -> list:
    """`n_train` training scenes. "counterfactual": half of them replaced by one-word twins of the
    other half (`shapes.counterfactual`: same split, so never a held-out colour-shape pair).
    "balanced": only scenes whose objects all have a `NEUTRAL_COLORS` colour."""
    if settings.data == "balanced":
        pool = shapes.generate("train", 4 * settings.n_train, seed=settings.seed)
        scenes = [s for s in pool if all(o.color in NEUTRAL_COLORS for o in s.objects)][: settings.n_train]
        if len(scenes) < settings.n_train:
            raise ValueError(f"only {len(scenes)} balanced scenes in a pool of {len(pool)}; ask for fewer")
        return scenes
    scenes = shapes.generate("train", settings.n_train, seed=settings.seed)
    if settings.data == "plain":
        return scenes
    rng, half = random.Random(f"twins:{settings.seed}"), settings.n_train // 2
    twins = [shapes.counterfactual(s, rng) for s in scenes[:half]]
    return scenes[:half] + [t or s for t, s in zip(twins, scenes[half:], strict=True)]


def build_model(parts, settings: Settings) -> VisionGPT2:
    """A fresh bridge as `settings` asks, on a copy of the frozen GPT-2 (the one in `parts` is untouched)."""
    spec = parts.profile.model.with_(projector=settings.projector, lora_r=settings.lora_r,
                                     lora_alpha=2 * settings.lora_r, lora_targets=settings.lora_targets,
                                     feature_layer=settings.layer, attention=settings.attention)  # fmt: skip
    cls = TokenIdLabelsGPT2 if settings.labels == "token_id" else VisionGPT2
    return cls.from_parts(parts, parts.profile.with_(model=spec), random_seed=settings.seed)


# ------------------------------------------------------------------ one run


def cached_result(folder: Path | None, key: str, shipped: Path | None = None) -> tuple[Path | None, dict | None]:
    """Where the result with this key lives in `folder`, and the result if it is there (else the one
    in `shipped`, marked `"shipped": True`, if that folder has it)."""
    path = folder / f"{key}.json" if folder is not None else None
    if path is not None and path.is_file():
        return path, json.loads(path.read_text())
    kept = shipped / f"{key}.json" if shipped is not None else None
    return path, ({**json.loads(kept.read_text()), "shipped": True} if kept is not None and kept.is_file() else None)


def store_result(path: Path | None, result: dict) -> None:
    """Write a result as JSON, atomically: a half-written file never counts."""
    if path is not None:
        write_text(path, json.dumps(result, indent=1) + "\n")


def run_ablation(
    name: str,
    changes: dict | None = None,
    parts=None,
    folder: str | Path | None = None,
    base: Settings = BASE,
    log=print,
    shipped: Path | None = SHIPPED_RESULTS,
) -> dict:
    """Train and score one variant of `base`, or read its result back from `folder` (or from the
    `shipped` results: then `result["shipped"]` is True).

    Returns a dict: name, settings, key, seconds, cached, val_loss (nats per caption token after
    training), step_loss (per optimizer step), calibration_factor (None when the projector was not
    calibrated), and for "test" and "compositional": exact_match, held-out shape accuracy,
    eos_rate, accuracy per attribute and up to five wrong captions as (said, truth). `log` (None:
    silent) gets one line per run trained.
    """
    settings = settings_with(changes or {}, base)
    folder = Path(folder) if folder is not None else None
    path, result = cached_result(folder, settings.key(), shipped)
    if result is not None:
        return {**result, "name": name, "cached": True}
    if parts is None:
        raise ValueError(f"{name}: no cached result for these settings, and no `parts` to train with")
    start = time.perf_counter()
    result = _train_and_score(name, settings, parts, (folder or Path("runs/experiments")) / "features")
    result["seconds"] = round(time.perf_counter() - start, 1)
    (log or (lambda _: None))(
        f"{name}: {result['seconds']:.0f} s, val loss {result['val_loss']:.3f}, exact match "
        f"test {result['test']['exact_match']:.1%} / compositional {result['compositional']['exact_match']:.1%}"
    )
    store_result(path, result)
    return {**result, "cached": False, "shipped": False}


def _train_and_score(name: str, settings: Settings, parts, cache_root: Path) -> dict:
    train_scenes = training_scenes(settings)
    tag = f"{settings.data}-{settings.n_train}-{settings.seed}"
    train_ids, train_cache = scene_features(parts, train_scenes, f"train-{tag}", settings.layer, cache_root)
    evals = {}
    for split in ("val", "test", "compositional"):
        scenes = shapes.generate(split, settings.n_eval, seed=settings.seed)
        ids, cache = scene_features(parts, scenes, f"{split}-{settings.n_eval}-{settings.seed}", settings.layer,
                                    cache_root)  # fmt: skip
        evals[split] = (scenes, ids, feature_lookup(cache, settings.zero_features))
    lookup = feature_lookup(train_cache, settings.zero_features)

    def data(scenes, ids, get):
        return CaptionData(list(zip(ids, [s.caption for s in scenes], strict=True)), get)

    model, factor = build_model(parts, settings), None
    if settings.start == "shipped":
        model.load_bridge_weights(SHIPPED_BRIDGE)
    elif settings.calibrate:  # the factor that brought the projector's output to GPT-2's embedding size
        factor = model.calibrate_projector(lookup(train_ids[:256]))
    config = TrainConfig(epochs=settings.epochs, batch_size=settings.batch_size, lr_projector=settings.lr,
                         lr_lora=settings.lr, warmup_steps=settings.warmup_steps, schedule=settings.schedule,
                         seed=settings.seed, shared_prefix=False)  # fmt: skip
    step_loss, val_data = [], data(*evals["val"])
    if settings.epochs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            history = train(model, data(train_scenes, train_ids, lookup), config, val_data=val_data, device="cpu",
                            progress=False, checkpoint_every=None)  # fmt: skip
        step_loss, val_loss = history["step_loss"], history["epochs"][-1]["val_loss"]
    else:  # epochs=0: score the bridge as it starts (the shipped one, say)
        val_loss = validation_loss(model, val_data, config, torch.device("cpu"), None)
    result = {"name": name, "settings": asdict(settings), "key": settings.key(), "val_loss": val_loss,
              "step_loss": step_loss, "calibration_factor": factor, "made_with": made_with()}  # fmt: skip
    for split in ("test", "compositional"):
        scenes, ids, get = evals[split]
        texts, ended = generate.generate_captions(model, features=get(ids))
        found = scores.shapes_scores(texts, scenes)
        found["eos_rate"] = sum(ended) / len(ended)
        found["examples"] = [[t, s.caption] for t, s in zip(texts, scenes, strict=True) if t != s.caption][:5]
        found["heldout_shape_accuracy"] = heldout_shape_accuracy(texts, scenes)
        result[split] = found
    return result


def heldout_shape_accuracy(texts: list[str], scenes: list) -> float | None:
    """Of the objects that show a held-out colour-shape pair, the share whose shape the caption names
    right (None where there is none, as on the test split)."""
    right = total = 0
    for text, scene in zip(texts, scenes, strict=True):
        said = scores.parse_caption(text) or {}
        for k, obj in enumerate(scene.objects, 1):
            if (obj.color, obj.shape) in shapes.COMPOSITIONAL_PAIRS:
                total += 1
                right += said.get(f"shape{k}") == obj.shape
    return right / total if total else None


def made_with() -> dict:
    """What decides a run's rounding: the torch build, its CPU kernel path, the thread count."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}  # fmt: skip


# ------------------------------------------------------------------ seeds, spread and noise

# what the tables report of one run, by column
FIGURES = {
    "final loss": lambda r: r["val_loss"],
    "test exact": lambda r: r["test"]["exact_match"],
    "comp. exact": lambda r: r["compositional"]["exact_match"],
    "held-out shape": lambda r: r["compositional"]["heldout_shape_accuracy"],
    "test colour": lambda r: r["test"]["color_accuracy"],
    "end-of-text": lambda r: r["test"]["eos_rate"],
    "comp. colour": lambda r: r["compositional"]["color_accuracy"],
}
TABLE = ("final loss", "test exact", "comp. exact", "held-out shape", "test colour", "end-of-text")


def figures_of(result: dict) -> dict[str, float]:
    """One run's `FIGURES`."""
    return {name: get(result) for name, get in FIGURES.items()}


def summary(figures: list[dict]) -> dict:
    """{"mean": {figure: mean}, "sd": {figure: sample standard deviation (0 for one run)}} over runs."""
    columns = {name: [f[name] for f in figures] for name in figures[0]}
    return {"mean": {k: statistics.fmean(v) for k, v in columns.items()},
            "sd": {k: statistics.stdev(v) if len(v) > 1 else 0.0 for k, v in columns.items()}}  # fmt: skip


def run_seeds(
    name: str,
    changes: dict | None = None,
    parts=None,
    folder: str | Path | None = None,
    base: Settings = BASE,
    log=print,
    shipped: Path | None = SHIPPED_RESULTS,
    seeds: tuple[int, ...] = SEEDS,
) -> dict:
    """`run_ablation` once per seed (each run read back where it is cached or shipped).

    Returns {"name", "changes", "runs": [one result per seed], "mean": {figure: value}, "sd": {...}}.
    """
    changes = dict(changes or {})
    runs = [run_ablation(name, {**changes, "seed": seed}, parts, folder, base, log, shipped) for seed in seeds]
    return {"name": name, "changes": changes, "runs": runs, **summary([figures_of(r) for r in runs])}


def load_spread(path: Path = BASELINE_SPREAD) -> dict:
    """The baseline's shipped runs on several builds, kernel paths and thread counts: {"settings",
    "runs": [{"seed", "torch", "cpu_capability", "threads", figure: value, ...}], "mean", "sd"}."""
    return json.loads(Path(path).read_text())


def band(spread: dict, name: str, k: float = TOLERANCE_SDS) -> tuple[float, float]:
    """The range a baseline run's figure `name` passes in: the shipped runs' mean +- k sd, rounded
    outwards to 0.01 (nats, or a point of exact match) so that it reads as printed."""
    mean, sd = spread["mean"][name], spread["sd"][name]
    return max(0.0, math.floor(100 * (mean - k * sd)) / 100), math.ceil(100 * (mean + k * sd)) / 100


def check_baseline(result: dict, spread: dict, k: float = TOLERANCE_SDS) -> list[str]:
    """What is wrong with a baseline run against the shipped baseline's runs: each of final loss and
    test exact match outside its `band`, said in one line; [] when it passes."""
    wrong = []
    for name in ("final loss", "test exact"):
        value, (low, high) = FIGURES[name](result), band(spread, name, k)
        if not low <= value <= high:
            wrong.append(f"{name} {value:.3f} is outside {low:.2f} to {high:.2f}, the shipped runs' mean ± {k:g} sd")
    return wrong


def differences(row: dict, reference: dict, noise: dict | None = None, times: float = 2) -> dict:
    """Each figure's difference of means, row - reference, and whether it is a finding: larger than
    `times` the noise of one run. `noise` is that noise where it was measured apart (the sd of the
    baseline's many shipped runs); without it, the two rows' sd pooled. Returns {figure: (difference,
    finding)}."""
    out = {}
    for name in row["mean"]:
        if noise is not None:
            scale = noise[name]
        else:
            scale = math.sqrt((row["sd"][name] ** 2 + reference["sd"][name] ** 2) / 2)
        diff = row["mean"][name] - reference["mean"][name]
        out[name] = (diff, abs(diff) > times * scale)
    return out


def _value(name: str, value: float, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{value:{sign}.3f}" if name == "final loss" else f"{100 * value:{sign}.1f}"


def table(rows: dict, columns: tuple[str, ...] = TABLE, width: int = 16) -> list[str]:
    """Rows of `run_seeds` results as text: mean ± sd of each figure (losses in nats, the rest in %)."""
    lines = [f"{'run':<27}" + "".join(f"{c:>{width}}" for c in columns)]
    for name, row in rows.items():
        cells = [f"{_value(c, row['mean'][c])} ± {_value(c, row['sd'][c])}" for c in columns]
        lines.append(f"{name:<27}" + "".join(f"{c:>{width}}" for c in cells))
    return lines


def difference_table(rows: dict, reference: str, noise: dict | None = None, columns: tuple[str, ...] = TABLE,
                     width: int = 16) -> list[str]:  # fmt: skip
    """Each row's difference of means from `reference` (`differences`), * where it is a finding."""
    lines = [f"{'vs ' + reference:<27}" + "".join(f"{c:>{width}}" for c in columns)]
    for name, row in rows.items():
        if name != reference:
            found = differences(row, rows[reference], noise)
            cells = [_value(c, found[c][0], signed=True) + (" *" if found[c][1] else "  ") for c in columns]
            lines.append(f"{name:<27}" + "".join(f"{c:>{width}}" for c in cells))
    return lines
