"""Build the `tiny` profile's two pretrained "alien" models from Shapes World.

    python -m vgpt build-tiny            # full build, about 5 minutes on 2 cores
    python -m vgpt build-tiny --fast     # seconds; quality gates reported, not enforced
    python -m vgpt build-tiny --check    # re-measure the shipped models' quality

What gets built, in the standard Hugging Face layout under `data/tiny/`:

- `gpt2/`: a byte-level BPE tokenizer trained on caption text, with
  `<|endoftext|>`, and a small `GPT2LMHeadModel` trained as a language model on
  Shapes World captions alone. It has never seen an image.
- `clip-vision/`: the vision tower of a small `CLIPModel` trained
  contrastively on Shapes World image/caption pairs (train split only), plus
  its image processor config. The text tower is thrown away, as with CLIP.
- `manifest.json`: seeds, sizes, data sizes and the quality gates:
  the language model's loss against the grammar's entropy floor, and linear
  probes that read every caption attribute out of the frozen vision features.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import torch

from ..config import UserError
from ..files import new_folder
from ..loading import quiet_loading
from . import shapes
from .language import entropy_floor, expected_lm_loss, train_language_model, train_tokenizer
from .probes import probe_attributes
from .vision import CLIP_MEAN, CLIP_STD, retrieval_top1, train_clip, vision_tower_from_clip

LM_GATE = 1.05  # language model loss <= 1.05 x entropy floor
PROBE_GATE = 0.95  # every attribute recovered with >= 95% accuracy


class GateError(UserError):
    """A build missed its quality gates; nothing shipped was replaced."""


# Sizes and step counts of the build; FAST_RECIPE shrinks them for tests.
RECIPE = dict(
    seed=0,
    image_size=64,
    patch_size=16,  # 4 x 4 = 16 patches + CLS = 17 visual tokens
    width=128,
    lm_layers=4,
    lm_steps=800,
    lm_batch=32,  # rows of `lm_context` packed tokens
    lm_context=64,  # positions trained; a 17-token prefix + a 24-token caption fit
    lm_lr=3e-3,
    clip_vision_layers=4,
    clip_text_layers=2,
    clip_steps=2500,
    clip_batch=128,
    clip_lr=1e-3,
    probe_train=24000,
    probe_test=1000,
    tokenizer_corpus=20000,
)
FAST_RECIPE = dict(
    RECIPE,
    width=32,
    lm_layers=1,
    lm_steps=20,
    lm_batch=8,
    clip_vision_layers=1,
    clip_text_layers=1,
    clip_steps=10,
    clip_batch=32,
    probe_train=200,
    probe_test=100,
    tokenizer_corpus=2000,
)


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def build_tiny(
    out: str | Path, recipe: dict | None = None, enforce_gates: bool = True, log: Callable[[str], None] = print
) -> dict:
    """Train both tiny models and write them to `out` (replaced only on success)."""
    recipe = SimpleNamespace(**(recipe or RECIPE))  # read as recipe.lm_steps by the trainers
    out = Path(out)
    with new_folder(out) as work:  # replaced only when the build is whole and passed its gates
        manifest = _build(work, recipe, enforce_gates, log)
    log(f"wrote {out} ({manifest['bytes'] / 1e6:.1f} MB) in {manifest['timings']['total_s']} s")
    return manifest


def _build(work: Path, recipe, enforce_gates: bool, log) -> dict:
    """The build into `work`: tokenizer, GPT-2, CLIP, probes, manifest; a `GateError` if it missed its gates."""
    from transformers import CLIPImageProcessorPil, CLIPVisionModel

    (work / "gpt2").mkdir()
    t0 = time.perf_counter()
    timings = {}

    tokenizer = train_tokenizer(shapes.sample_captions(recipe.tokenizer_corpus, seed=recipe.seed))
    log(f"tokenizer: {len(tokenizer)} tokens, end-of-text id {tokenizer.eos_token_id}")

    t = time.perf_counter()
    lm = train_language_model(tokenizer, recipe, log)
    timings["language_model_s"] = round(time.perf_counter() - t, 1)
    floor, lm_loss = entropy_floor(tokenizer), expected_lm_loss(lm, tokenizer)
    log(
        f"tiny GPT-2: {_n_params(lm):,} params, loss {lm_loss:.4f} vs floor {floor:.4f} "
        f"({lm_loss / floor:.3f}x) in {timings['language_model_s']} s"
    )
    lm.save_pretrained(work / "gpt2")
    tokenizer.save_pretrained(work / "gpt2")

    t = time.perf_counter()
    clip = train_clip(tokenizer, recipe, log)
    timings["clip_s"] = round(time.perf_counter() - t, 1)
    retrieval = retrieval_top1(clip, tokenizer, shapes.generate("test", 500, seed=recipe.seed), recipe.image_size)
    log(f"tiny CLIP: image->text top-1 of 500 held-out scenes {retrieval:.1%} in {timings['clip_s']} s")
    vision_tower_from_clip(clip).save_pretrained(work / "clip-vision")
    CLIPImageProcessorPil(
        size={"shortest_edge": recipe.image_size},
        crop_size={"height": recipe.image_size, "width": recipe.image_size},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
    ).save_pretrained(work / "clip-vision")

    t = time.perf_counter()  # probe the tower as saved, to test the round trip too
    with quiet_loading():
        tower = CLIPVisionModel.from_pretrained(work / "clip-vision", use_safetensors=True).eval()
    probes = probe_attributes(tower, recipe.image_size, recipe.probe_train, recipe.probe_test, recipe.seed)
    timings["probe_s"] = round(time.perf_counter() - t, 1)
    log("linear probes on held-out scenes: " + ", ".join(f"{k} {v:.1%}" for k, v in probes.items()))

    gates = {"lm_loss_over_floor": lm_loss / floor <= LM_GATE, "probes": all(v >= PROBE_GATE for v in probes.values())}
    timings["total_s"] = round(time.perf_counter() - t0, 1)
    manifest = {
        "built_with": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
            "threads": torch.get_num_threads(),
        },
        "recipe": vars(recipe),
        "world": {
            "image_size": recipe.image_size,
            "colors": list(shapes.COLORS),
            "shapes": list(shapes.SHAPES),
            "sizes": list(shapes.SIZES),
            "compositional_pairs": sorted(map(list, shapes.COMPOSITIONAL_PAIRS)),
            "p_two_objects": shapes.P_TWO_OBJECTS,
            "distinct_captions": len(shapes.caption_distribution()),
        },
        "data": {
            "lm_tokens_seen": recipe.lm_steps * recipe.lm_batch * recipe.lm_context,
            "clip_pairs_seen": recipe.clip_steps * recipe.clip_batch,
            "tokenizer_corpus": recipe.tokenizer_corpus,
            "probe_train": recipe.probe_train,
            "probe_test": recipe.probe_test,
        },
        "sizes": {
            "vocab": len(tokenizer),
            "gpt2_params": _n_params(lm),
            "clip_vision_params": _n_params(tower),
            "clip_total_params": _n_params(clip),
        },
        "quality": {
            "lm_expected_loss": round(lm_loss, 4),
            "lm_entropy_floor": round(floor, 4),
            "lm_loss_over_floor": round(lm_loss / floor, 4),
            "lm_gate": LM_GATE,
            "clip_retrieval_top1": round(retrieval, 4),
            "probe_accuracy": {k: round(v, 4) for k, v in probes.items()},
            "probe_gate": PROBE_GATE,
            "gates": gates,
            "gates_passed": all(gates.values()),
        },
        "timings": timings,
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["bytes"] = _folder_bytes(work)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if enforce_gates and not all(gates.values()):
        failed = ", ".join(k for k, ok in gates.items() if not ok)
        kept = work.with_name(work.name.removeprefix(".").replace(".partial", ".rejected"))
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(work, kept)
        raise GateError(f"tiny build missed its quality gates ({failed}); nothing replaced, the attempt is in {kept}")
    return manifest


def check_tiny(
    folder: str | Path, n_train: int | None = None, n_test: int | None = None, log: Callable[[str], None] = print
) -> dict:
    """Reload shipped tiny models offline and re-measure their quality gates.

    The probes use the build's own seed and sizes, so the figures should
    reproduce the manifest's; the compositional column is extra information.
    """
    from transformers import AutoTokenizer, CLIPVisionModel, GPT2LMHeadModel

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    recipe, shipped = manifest["recipe"], manifest["quality"]["probe_accuracy"]
    n_train, n_test = n_train or recipe["probe_train"], n_test or recipe["probe_test"]
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(folder / "gpt2")
        lm = GPT2LMHeadModel.from_pretrained(folder / "gpt2", use_safetensors=True)
        tower = CLIPVisionModel.from_pretrained(folder / "clip-vision", use_safetensors=True).eval()
    size = manifest["world"]["image_size"]
    floor, loss = entropy_floor(tokenizer), expected_lm_loss(lm, tokenizer)
    probes = probe_attributes(tower, size, n_train, n_test, seed=recipe["seed"])
    comp = probe_attributes(tower, size, n_train, n_test, seed=recipe["seed"], test_split="compositional")
    log(
        f"tiny GPT-2 ({_n_params(lm):,} params): loss {loss:.4f} vs entropy floor {floor:.4f} "
        f"= {loss / floor:.3f}x (gate <= {LM_GATE})"
    )
    log(
        f"tiny CLIP vision tower ({_n_params(tower):,} params), linear probes "
        f"({n_train:,} training scenes, {n_test:,} held-out):"
    )
    log(f"  {'attribute':<10}{'test':>8}{'manifest':>10}{'compositional':>15}")
    for k in probes:
        log(f"  {k:<10}{probes[k]:>8.1%}{shipped.get(k, float('nan')):>10.1%}{comp.get(k, float('nan')):>15.1%}")
    ok = loss / floor <= LM_GATE and all(v >= PROBE_GATE for v in probes.values())
    log("quality gates: " + ("passed" if ok else "MISSED"))
    return {"lm_loss_over_floor": loss / floor, "probes": probes, "compositional_probes": comp, "passed": ok}
