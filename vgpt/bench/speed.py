"""`python -m vgpt bench`: what caching features and sharing the prefix buy, measured side by side.

Training, per image with 5 captions (forward + backward of one batch):
  (a) the original recipe: the vision tower runs for every caption, fp32, one caption per sequence
  (b) cached features, one caption per sequence
  (c) cached features and one shared prefix per image (`speedups.py`)
Generation of 30 new tokens: one by one or batched, with or without the KV cache.

Every variant runs in the same process on the same models, a warm-up first
(which also counts its FLOPs with torch's FLOP counter and its kernels), then
`repeats` timed runs, the training variants in turn, whose median is reported
with the fastest and slowest. By default the models are the seed's
architectures with random weights (no download; same shapes, same FLOPs).
On a GPU, (b), (c) and generation run under bf16 / fp16 autocast.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from .. import speedups
from ..config import SEED, TINY
from ..generate import greedy
from ..loading import load_profile
from ..model import VisionGPT2
from ..runtime import autocast, autocast_dtype, pick_device
from ..scale.standins import seed_architectures
from .extraction import extraction_timings, measured_peak_memory
from .timing import SavedTensors, Timing, caption_batch, measure, measure_all

HOST = ((speedups, "packing"),)  # the shared prefix's layout: index arithmetic on the host, before any kernel


def bench_models(profile: str = "seed"):
    """(model, profile): the seed's architectures with random weights, or the tiny models."""
    if profile == "seed":
        vision, lm = seed_architectures()
        tokenizer, chosen = SimpleNamespace(eos_token_id=lm.config.eos_token_id), SEED
    elif profile == "tiny":
        parts = load_profile("tiny", verbose=False)
        vision, lm, tokenizer, chosen = parts.vision, parts.language_model, parts.tokenizer, TINY
    else:
        raise ValueError(f"bench runs on 'seed' (random weights) or 'tiny', not {profile!r}")
    return VisionGPT2(vision, lm, chosen, tokenizer), chosen


def training_timings(model, profile, images: int, captions: int, repeats: int, device) -> list[Timing]:
    dtype = autocast_dtype(device)
    size = profile.model.image_size
    pixels = torch.randn(images, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    ids, mask, owner = caption_batch(images, captions, model.spec.vocab_size)
    ids, mask, owner = ids.to(device), mask.to(device), owner.to(device)
    features = model.features(pixels)
    model.train()

    def original():  # the tower per caption, fp32, as the recipe's data loader does
        model(ids, mask, pixel_values=pixels[owner]).loss.backward()
        model.zero_grad(set_to_none=True)

    def cached_step(shared: bool):
        def run():
            with autocast(device, dtype):
                loss = model(ids, mask, features=features, owner=owner, shared_prefix=shared).loss
            loss.backward()
            model.zero_grad(set_to_none=True)

        return run

    runs = {
        "(a) original: tower per caption, fp32": (original, None),
        "(b) cached features": (cached_step(False), None),
        "(c) cached + shared prefix": (cached_step(True), None),
    }
    return measure_all(runs, repeats, device, HOST)


def generation_timings(model, images: int, new_tokens: int, repeats: int, device) -> list[Timing]:
    dtype = autocast_dtype(device)
    model.eval()
    size = model.vision.config.image_size
    pixels = torch.randn(images, 3, size, size, generator=torch.Generator().manual_seed(2)).to(device)
    with torch.no_grad():
        prefix = model.visual_prefix(pixel_values=pixels)
    produced, eos = {}, model.tokenizer.eos_token_id

    def variant(batched: bool, cache: bool, tokens: int):
        def run():
            with autocast(device, dtype):
                rows = (
                    [greedy(model.lm, prefix, eos, tokens, kv_cache=cache)]
                    if batched
                    else [greedy(model.lm, prefix[i : i + 1], eos, tokens, kv_cache=cache) for i in range(images)]
                )
            produced[(batched, cache)] = sum(len(r) for part in rows for r in part)

        return run

    out = []
    for batched, cache, name in (
        (False, False, "one by one, no KV cache"),
        (False, True, "one by one, KV cache"),
        (True, False, "batched, no KV cache"),
        (True, True, "batched, KV cache"),
    ):
        out.append(
            measure(
                name, variant(batched, cache, new_tokens), repeats, warmup=variant(batched, cache, 2), device=device
            )
        )
        out[-1].tokens = produced[(batched, cache)]
    return out


def memory_estimate(model, profile, device, captions: int = 5, batch_sizes=(8, 16, 32, 64)) -> dict:
    """Peak GPU memory of a training step from cached features, estimated for 16-bit autocast.

    Measured here, on whatever device: the bytes autograd saves for the backward pass of one image
    with `captions` captions under 16-bit autocast (bf16 on CPU, the same 2 bytes per element as a
    T4's fp16). Added: the frozen weights in fp32 (the vision tower too, as `train` moves the
    whole model), their 16-bit copies that autocast makes, the bridge and its AdamW state, the
    fp32 logits and their gradient, and 0.5 GB of CUDA context.
    """
    dtype = autocast_dtype(device) or torch.bfloat16
    ids, mask, owner = caption_batch(1, captions, model.spec.vocab_size, seed=3)
    ids, mask, owner = ids.to(device), mask.to(device), owner.to(device)
    features = torch.randn(1, profile.model.visual_tokens, profile.model.vision_width, device=device)
    model.train()
    per_caption = {}
    for name, shared in (("(b) cached features", False), ("(c) cached + shared prefix", True)):
        saved = SavedTensors()
        with saved, torch.autocast(device.type, dtype=dtype):
            out = model(ids, mask, features=features, owner=owner, shared_prefix=shared)
        out.loss.backward()
        model.zero_grad(set_to_none=True)
        per_caption[name] = (saved.total / captions, out.logits[0].numel())
        del out
    weights = sum(p.numel() for p in model.parameters())
    frozen_lm = sum(p.numel() for p in model.lm.parameters() if not p.requires_grad)
    bridge = sum(p.numel() for p in model.trainable_parameters())
    fixed = 4 * weights + 2 * frozen_lm + 16 * bridge + 0.5e9
    table = {
        name: {b: fixed + b * (act + 8 * logits) for b in batch_sizes} for name, (act, logits) in per_caption.items()
    }
    return {"fixed_bytes": fixed, "per_caption": per_caption, "peak_bytes": table}


def run_bench(
    profile: str = "seed",
    images: int = 1,
    captions: int = 5,
    gen_images: int = 4,
    new_tokens: int = 30,
    repeats: int = 3,
    device: str | None = None,
    extract_images: int = 16,
    log=print,
) -> dict:
    """Run both benchmarks, print their tables, return the figures."""
    device = pick_device(device)
    torch.manual_seed(0)
    model, chosen = bench_models(profile)
    model.to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    log(
        f"device: {name}; autocast: {autocast_dtype(device)}; torch {torch.__version__}; profile {chosen.name}"
        f"{' (random weights)' if profile == 'seed' else ''}; {chosen.model.visual_tokens}-token prefix"
    )
    log(
        f"\ntraining step (forward + backward), {images} image(s) x {captions} captions, "
        f"median of {repeats}, per image:"
    )
    train = training_timings(model, chosen, images, captions, repeats, device)
    base = train[0]
    log(
        f"  {'variant':<40}{'s / image':>10}{'(min - max)':>16}{'speed-up':>10}{'GFLOP / image':>15}"
        f"{'FLOP ratio':>12}{'kernels':>9}"
    )
    for t in train:
        low, high = t.spread
        log(
            f"  {t.name:<40}{t.median / images:>10.3f}{f'({low / images:.3f} - {high / images:.3f})':>16}"
            f"{base.median / t.median:>9.2f}x{t.flops / images / 1e9:>15.1f}{base.flops / t.flops:>11.2f}x"
            f"{sum(t.kernels.values()):>9}"
        )
    log("  (kernels: operations a step runs, forward and backward, views and allocations not counted)")
    log(f"\ngeneration of {new_tokens} new tokens (greedy), {gen_images} images, median of {repeats}:")
    gen = generation_timings(model, gen_images, new_tokens, repeats, device)
    slow = gen[0]
    log(f"  {'variant':<40}{'captions / s':>13}{'speed-up':>10}{'tokens':>8}")
    for t in gen:
        log(f"  {t.name:<40}{gen_images / t.median:>13.2f}{slow.median / t.median:>9.2f}x{t.tokens:>8}")
    memory = memory_estimate(model, chosen, device)
    log(
        f"\nestimated peak GPU memory of a training step, 16-bit autocast, cached features "
        f"(activations measured here; fixed part {memory['fixed_bytes'] / 2**30:.2f} GiB):"
    )
    sizes = list(next(iter(memory["peak_bytes"].values())))
    log(f"  {'batch size (captions)':<40}" + "".join(f"{b:>9}" for b in sizes))
    for variant, row in memory["peak_bytes"].items():
        log(f"  {variant:<40}" + "".join(f"{row[b] / 2**30:>8.1f}G" for b in sizes))
    extraction = extraction_timings(model, chosen, extract_images, device)
    base_rate = next(iter(extraction.values()))
    log(f"\nfeature extraction, {extract_images} JPEG images (640 x 480) from disk into the cache:")
    log(f"  {'variant':<48}{'images / s':>11}{'speed-up':>10}")
    for variant, rate in extraction.items():
        log(f"  {variant:<48}{rate:>11.2f}{rate / base_rate:>9.2f}x")
    measured = {}
    if device.type == "cuda":
        measured = measured_peak_memory(model, chosen, device)
        log("\nmeasured peak GPU memory of one optimizer step (torch.cuda.max_memory_allocated):")
        for variant, row in measured.items():
            log(f"  {variant:<40}" + "".join(f"  batch {b}: {v:.2f} GiB" for b, v in row.items()))
    return {
        "device": name,
        "profile": chosen.name,
        "memory": memory,
        "extraction_images_per_second": extraction,
        "measured_peak_gib": measured,
        "training": {
            t.name: {
                "seconds_per_image": t.median / images,
                "seconds_per_image_all": [x / images for x in t.seconds],
                "kernels_per_step": sum(t.kernels.values()),
                "host_ops_per_step": t.host_ops,
                "speedup": base.median / t.median,
                "gflops_per_image": t.flops / images / 1e9,
                "flop_ratio": base.flops / t.flops,
            }
            for t in train
        },
        "generation": {
            t.name: {
                "captions_per_second": gen_images / t.median,
                "speedup": slow.median / t.median,
                "tokens": t.tokens,
            }
            for t in gen
        },
    }
