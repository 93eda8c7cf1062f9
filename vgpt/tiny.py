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
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import shapes
from .files import swap_into_place
from .prefix import right_pad
from .profiles import quiet_transformers
from .schedule import warmup_cosine

EOT = "<|endoftext|>"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's, kept for both profiles
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LM_GATE = 1.05  # language model loss <= 1.05 x entropy floor
PROBE_GATE = 0.95  # every attribute recovered with >= 95% accuracy


class GateError(RuntimeError):
    """A build missed its quality gates; nothing shipped was replaced."""


@dataclass
class TinyRecipe:
    """Sizes and step counts; `fast()` shrinks them for tests."""
    seed: int = 0
    image_size: int = 64
    patch_size: int = 16  # 4 x 4 = 16 patches + CLS = 17 visual tokens
    width: int = 128
    lm_layers: int = 4
    lm_steps: int = 800
    lm_batch: int = 32  # rows of `lm_context` packed tokens
    lm_context: int = 64  # positions trained; a 17-token prefix + a 24-token caption fit
    lm_lr: float = 3e-3
    clip_vision_layers: int = 4
    clip_text_layers: int = 2
    clip_steps: int = 2500
    clip_batch: int = 128
    clip_lr: float = 1e-3
    probe_train: int = 24000
    probe_test: int = 1000
    tokenizer_corpus: int = 20000

    @classmethod
    def fast(cls) -> "TinyRecipe":
        return cls(width=32, lm_layers=1, lm_steps=20, lm_batch=8, clip_vision_layers=1, clip_text_layers=1,
                   clip_steps=10, clip_batch=32, probe_train=200, probe_test=100,
                   tokenizer_corpus=2000, patch_size=16)


# ---------------------------------------------------------------- tokenizer

def train_tokenizer(captions: list[str], max_length: int = 64):
    """A byte-level BPE tokenizer (GPT-2's scheme) learned from caption text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=[EOT], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(captions, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT,
                                   unk_token=EOT, model_max_length=max_length)


def caption_rows(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """`<eot> caption <eot>`, right-padded; labels are -100 on padding by position."""
    eot = tokenizer.eos_token_id
    ids, mask = right_pad([[eot] + tokenizer(c).input_ids + [eot] for c in captions], eot)
    return ids, ids.masked_fill(mask == 0, -100)


# ---------------------------------------------------------- language model

def entropy_floor(tokenizer) -> float:
    """Least achievable loss per predicted token: H(caption) / E[tokens + EOS]."""
    dist = shapes.caption_distribution()
    lengths = {c: len(tokenizer(c).input_ids) + 1 for c in dist}
    return shapes.caption_entropy() / sum(p * lengths[c] for c, p in dist.items())


@torch.no_grad()
def expected_lm_loss(model, tokenizer) -> float:
    """The model's exact expected loss per token over the whole grammar.

    Every caption is scored and weighted by its probability, so there is no
    sampling noise in the comparison with `entropy_floor`.
    """
    dist = shapes.caption_distribution()
    captions, probs = list(dist), torch.tensor(list(dist.values()), dtype=torch.float64)
    nll, count = torch.zeros(len(captions), dtype=torch.float64), torch.zeros(len(captions))
    model.eval()
    for i in range(0, len(captions), 512):
        ids, labels = caption_rows(tokenizer, captions[i:i + 512])
        logits = model(input_ids=ids, attention_mask=(labels != -100).long()).logits[:, :-1]
        target = labels[:, 1:]
        token_nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
        nll[i:i + 512] = token_nll.sum(1).double()
        count[i:i + 512] = (target != -100).sum(1)
    return float((probs * nll).sum() / (probs * count.double()).sum())


def packed_lm_batch(tokenizer, rng: random.Random, rows: int, context: int) -> torch.Tensor:
    """(rows, context) ids: `<eot> caption <eot> caption <eot> ...`, cut at `context`.

    Packing captions back to back, as GPT-2 was pretrained on documents,
    trains every position up to `context`. With one caption per row only
    positions 0-12 would ever be seen, and a visual prefix pushes the caption
    to positions 17-40, whose position embeddings would still be random.
    """
    eot = tokenizer.eos_token_id
    out = []
    for _ in range(rows):
        ids = [eot]
        while len(ids) < context:
            ids += tokenizer(shapes.sample_scene(rng).caption).input_ids + [eot]
        out.append(ids[:context])
    return torch.tensor(out)


def train_language_model(tokenizer, recipe: TinyRecipe, log=print):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(recipe.seed)
    eot = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=recipe.lm_context, n_embd=recipe.width,
                        n_layer=recipe.lm_layers, n_head=4, n_inner=4 * recipe.width,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lm_lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, recipe.lm_steps, 50))
    rng = random.Random(f"lm:{recipe.seed}")
    model.train()
    for step in (bar := tqdm(range(recipe.lm_steps), desc="tiny GPT-2", leave=False)):
        ids = packed_lm_batch(tokenizer, rng, recipe.lm_batch, recipe.lm_context)
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model


# ------------------------------------------------------------- tiny CLIP

def pixel_tensor(images, mean=CLIP_MEAN, std=CLIP_STD) -> torch.Tensor:
    """RGB images already at model size -> normalized (B, 3, H, W).

    Equals the saved image processor's output for such images (a test checks
    it); used in training loops where calling the processor is the slow part.
    """
    arr = torch.from_numpy(np.stack([np.asarray(im, dtype=np.float32) for im in images]))
    x = arr.permute(0, 3, 1, 2) / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def clip_config(tokenizer, recipe: TinyRecipe):
    from transformers import CLIPConfig

    eot = tokenizer.eos_token_id
    if eot == 2:  # CLIP's text tower falls back to legacy argmax pooling for id 2
        raise ValueError("the end-of-text id must not be 2 for CLIP's text pooling")
    w = recipe.width
    text = dict(vocab_size=len(tokenizer), hidden_size=w, intermediate_size=4 * w,
                num_hidden_layers=recipe.clip_text_layers, num_attention_heads=4,
                max_position_embeddings=32, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)
    vision = dict(hidden_size=w, intermediate_size=4 * w, num_hidden_layers=recipe.clip_vision_layers,
                  num_attention_heads=4, image_size=recipe.image_size, patch_size=recipe.patch_size)
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=w)


def clip_text_batch(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """`caption <eot>`, right-padded with <eot>: CLIP pools at the first <eot>."""
    eot = tokenizer.eos_token_id
    return right_pad([tokenizer(c).input_ids + [eot] for c in captions], eot)


def contrastive_loss(logits_per_image: torch.Tensor, captions: list[str]) -> torch.Tensor:
    """Symmetric InfoNCE where every image whose caption is identical counts as a match.

    Shapes World repeats captions inside a batch; treating those as negatives
    would ask CLIP to tell apart two pictures that the text cannot.
    """
    index = {c: i for i, c in enumerate(dict.fromkeys(captions))}
    ids = torch.tensor([index[c] for c in captions])
    target = (ids[:, None] == ids[None, :]).float()
    target = target / target.sum(1, keepdim=True)
    return (F.cross_entropy(logits_per_image, target) + F.cross_entropy(logits_per_image.T, target)) / 2


def clip_batch_scenes(n: int, rng: random.Random, seed: int) -> list[shapes.Scene]:
    """Half fresh training scenes, half their one-word counterfactual twins."""
    base = shapes.generate("train", n - n // 2, seed=seed)
    twins = [t for t in (shapes.counterfactual(s, rng) for s in base[: n // 2]) if t is not None]
    return base + twins


def train_clip(tokenizer, recipe: TinyRecipe, log=print):
    from transformers import CLIPModel

    torch.manual_seed(recipe.seed)
    model = CLIPModel(clip_config(tokenizer, recipe))
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.clip_lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, recipe.clip_steps, 100))
    rng = random.Random(f"clip:{recipe.seed}")
    model.train()
    for step in (bar := tqdm(range(recipe.clip_steps), desc="tiny CLIP", leave=False)):
        scenes = clip_batch_scenes(recipe.clip_batch, rng, seed=recipe.seed * 100_000 + step)
        captions = [s.caption for s in scenes]
        ids, mask = clip_text_batch(tokenizer, captions)
        out = model(input_ids=ids, attention_mask=mask,
                    pixel_values=pixel_tensor([s.render(recipe.image_size) for s in scenes]))
        loss = contrastive_loss(out.logits_per_image, captions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model


@torch.no_grad()
def retrieval_top1(model, tokenizer, scenes: list[shapes.Scene], image_size: int) -> float:
    """Image -> text top-1 among the scenes' captions (an identical caption counts)."""
    captions = [s.caption for s in scenes]
    ids, mask = clip_text_batch(tokenizer, captions)
    out = model(input_ids=ids, attention_mask=mask,
                pixel_values=pixel_tensor([s.render(image_size) for s in scenes]))
    best = out.logits_per_image.argmax(1)
    return float(np.mean([captions[j] == captions[i] for i, j in enumerate(best.tolist())]))


def vision_tower_from_clip(clip):
    """The vision half of a CLIPModel as a standalone CLIPVisionModel."""
    from transformers import CLIPVisionModel

    tower = CLIPVisionModel(clip.config.vision_config)
    tower.load_state_dict(clip.vision_model.state_dict())
    return tower.eval()


# ------------------------------------------------------------------ probes

@torch.no_grad()
def vision_features(tower, scenes: list[shapes.Scene], image_size: int, batch: int = 256) -> torch.Tensor:
    """Flattened last hidden state, (B, N * D): all that a visual prefix would carry."""
    out = []
    for i in range(0, len(scenes), batch):
        px = pixel_tensor([s.render(image_size) for s in scenes[i:i + batch]])
        out.append(tower(pixel_values=px).last_hidden_state.flatten(1))
    return torch.cat(out)


def linear_probe(train_x, train_y, test_x, test_y, n_classes: int, weight_decay: float = 1e-4) -> float:
    """Multinomial logistic regression (full-batch L-BFGS); returns test accuracy."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    xtr, xte = (train_x - mean) / std, (test_x - mean) / std
    probe = torch.nn.Linear(xtr.shape[1], n_classes)
    opt = torch.optim.LBFGS(probe.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(probe(xtr), train_y) + weight_decay * probe.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((probe(xte).argmax(1) == test_y).float().mean())


def probe_attributes(tower, image_size: int, n_train: int, n_test: int, seed: int = 0,
                     test_split: str = "test") -> dict[str, float]:
    """Accuracy of a linear probe per caption attribute, on held-out scenes."""
    train = shapes.generate("train", n_train, seed=10_000 + seed)
    test = shapes.generate(test_split, n_test, seed=20_000 + seed)
    ftr, fte = vision_features(tower, train, image_size), vision_features(tower, test, image_size)
    atr = [shapes.attributes(s) for s in train]
    ate = [shapes.attributes(s) for s in test]
    result = {}
    for name in sorted({k for a in atr for k in a}):
        itr = [i for i, a in enumerate(atr) if name in a]
        ite = [i for i, a in enumerate(ate) if name in a]
        if not ite:
            continue
        classes = sorted({atr[i][name] for i in itr} | {ate[i][name] for i in ite})
        code = {c: k for k, c in enumerate(classes)}
        ytr = torch.tensor([code[atr[i][name]] for i in itr])
        yte = torch.tensor([code[ate[i][name]] for i in ite])
        result[name] = linear_probe(ftr[itr], ytr, fte[ite], yte, len(classes))
    return result


# ------------------------------------------------------------------- build

def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def build_tiny(out: str | Path, recipe: TinyRecipe | None = None, enforce_gates: bool = True,
               log: Callable[[str], None] = print) -> dict:
    """Train both tiny models and write them to `out` (replaced only on success)."""
    from transformers import CLIPImageProcessorPil, CLIPVisionModel

    quiet_transformers()
    recipe = recipe or TinyRecipe()
    out = Path(out)
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "gpt2").mkdir(parents=True)
    t0 = time.perf_counter()
    timings = {}

    tokenizer = train_tokenizer(shapes.sample_captions(recipe.tokenizer_corpus, seed=recipe.seed))
    log(f"tokenizer: {len(tokenizer)} tokens, end-of-text id {tokenizer.eos_token_id}")

    t = time.perf_counter()
    lm = train_language_model(tokenizer, recipe, log)
    timings["language_model_s"] = round(time.perf_counter() - t, 1)
    floor, lm_loss = entropy_floor(tokenizer), expected_lm_loss(lm, tokenizer)
    log(f"tiny GPT-2: {_n_params(lm):,} params, loss {lm_loss:.4f} vs floor {floor:.4f} "
        f"({lm_loss / floor:.3f}x) in {timings['language_model_s']} s")
    lm.save_pretrained(work / "gpt2")
    tokenizer.save_pretrained(work / "gpt2")

    t = time.perf_counter()
    clip = train_clip(tokenizer, recipe, log)
    timings["clip_s"] = round(time.perf_counter() - t, 1)
    retrieval = retrieval_top1(clip, tokenizer, shapes.generate("test", 500, seed=recipe.seed),
                               recipe.image_size)
    log(f"tiny CLIP: image->text top-1 of 500 held-out scenes {retrieval:.1%} in {timings['clip_s']} s")
    vision_tower_from_clip(clip).save_pretrained(work / "clip-vision")
    CLIPImageProcessorPil(size={"shortest_edge": recipe.image_size},
                          crop_size={"height": recipe.image_size, "width": recipe.image_size},
                          image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD)
                          ).save_pretrained(work / "clip-vision")

    t = time.perf_counter()  # probe the tower as saved, to test the round trip too
    tower = CLIPVisionModel.from_pretrained(work / "clip-vision", use_safetensors=True).eval()
    probes = probe_attributes(tower, recipe.image_size, recipe.probe_train, recipe.probe_test, recipe.seed)
    timings["probe_s"] = round(time.perf_counter() - t, 1)
    log("linear probes on held-out scenes: " + ", ".join(f"{k} {v:.1%}" for k, v in probes.items()))

    gates = {"lm_loss_over_floor": lm_loss / floor <= LM_GATE,
             "probes": all(v >= PROBE_GATE for v in probes.values())}
    timings["total_s"] = round(time.perf_counter() - t0, 1)
    manifest = {
        "built_with": {"python": platform.python_version(), "torch": torch.__version__,
                       "transformers": __import__("transformers").__version__,
                       "threads": torch.get_num_threads()},
        "recipe": asdict(recipe),
        "world": {"image_size": recipe.image_size, "colors": list(shapes.COLORS),
                  "shapes": list(shapes.SHAPES), "sizes": list(shapes.SIZES),
                  "compositional_pairs": sorted(map(list, shapes.COMPOSITIONAL_PAIRS)),
                  "p_two_objects": shapes.P_TWO_OBJECTS,
                  "distinct_captions": len(shapes.caption_distribution())},
        "data": {"lm_tokens_seen": recipe.lm_steps * recipe.lm_batch * recipe.lm_context,
                 "clip_pairs_seen": recipe.clip_steps * recipe.clip_batch,
                 "tokenizer_corpus": recipe.tokenizer_corpus,
                 "probe_train": recipe.probe_train, "probe_test": recipe.probe_test},
        "sizes": {"vocab": len(tokenizer), "gpt2_params": _n_params(lm),
                  "clip_vision_params": _n_params(tower), "clip_total_params": _n_params(clip)},
        "quality": {"lm_expected_loss": round(lm_loss, 4), "lm_entropy_floor": round(floor, 4),
                    "lm_loss_over_floor": round(lm_loss / floor, 4), "lm_gate": LM_GATE,
                    "clip_retrieval_top1": round(retrieval, 4),
                    "probe_accuracy": {k: round(v, 4) for k, v in probes.items()},
                    "probe_gate": PROBE_GATE, "gates": gates, "gates_passed": all(gates.values())},
        "timings": timings,
    }
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["bytes"] = _folder_bytes(work)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if enforce_gates and not all(gates.values()):
        failed = ", ".join(k for k, ok in gates.items() if not ok)
        raise GateError(f"tiny build missed its quality gates ({failed}); "
                           f"nothing replaced, the attempt is in {work}")
    swap_into_place(work, out)
    log(f"wrote {out} ({manifest['bytes'] / 1e6:.1f} MB) in {timings['total_s']} s")
    return manifest


def check_tiny(folder: str | Path, n_train: int | None = None, n_test: int | None = None,
               log: Callable[[str], None] = print) -> dict:
    """Reload shipped tiny models offline and re-measure their quality gates.

    The probes use the build's own seed and sizes, so the figures should
    reproduce the manifest's; the compositional column is extra information.
    """
    from transformers import AutoTokenizer, CLIPVisionModel, GPT2LMHeadModel

    quiet_transformers()
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    recipe, shipped = manifest["recipe"], manifest["quality"]["probe_accuracy"]
    n_train, n_test = n_train or recipe["probe_train"], n_test or recipe["probe_test"]
    tokenizer = AutoTokenizer.from_pretrained(folder / "gpt2")
    lm = GPT2LMHeadModel.from_pretrained(folder / "gpt2", use_safetensors=True)
    tower = CLIPVisionModel.from_pretrained(folder / "clip-vision", use_safetensors=True).eval()
    size = manifest["world"]["image_size"]
    floor, loss = entropy_floor(tokenizer), expected_lm_loss(lm, tokenizer)
    probes = probe_attributes(tower, size, n_train, n_test, seed=recipe["seed"])
    comp = probe_attributes(tower, size, n_train, n_test, seed=recipe["seed"], test_split="compositional")
    log(f"tiny GPT-2 ({_n_params(lm):,} params): loss {loss:.4f} vs entropy floor {floor:.4f} "
        f"= {loss / floor:.3f}x (gate <= {LM_GATE})")
    log(f"tiny CLIP vision tower ({_n_params(tower):,} params), linear probes "
        f"({n_train:,} training scenes, {n_test:,} held-out):")
    log(f"  {'attribute':<10}{'test':>8}{'manifest':>10}{'compositional':>15}")
    for k in probes:
        log(f"  {k:<10}{probes[k]:>8.1%}{shipped.get(k, float('nan')):>10.1%}{comp.get(k, float('nan')):>15.1%}")
    ok = loss / floor <= LM_GATE and all(v >= PROBE_GATE for v in probes.values())
    log("quality gates: " + ("passed" if ok else "MISSED"))
    return {"lm_loss_over_floor": loss / floor, "probes": probes, "compositional_probes": comp,
            "passed": ok}
