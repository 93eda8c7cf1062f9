"""Two more benchmark figures: feature extraction speed, and (on a GPU) the measured peak memory of a
training step, to set beside `bench.memory_estimate`."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from ..data import open_image
from ..features import build_cache, processor_pixels
from ..runtime import autocast, autocast_dtype
from ..train import make_optimizer, scaled_train_step
from ..world import shapes
from .timing import caption_batch


def extraction_timings(model, profile, images: int, device, batch_size: int = 32) -> dict[str, float]:
    """Images per second through `features.build_cache` from JPEG files on disk (640 x 480 photos'
    size): as first written (fp32, each batch decoded on the main thread while the tower waits) and
    now (the device's autocast, the next batch decoded in a thread while the tower runs)."""
    from transformers import CLIPImageProcessorPil

    size = profile.model.image_size
    processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    fast = autocast_dtype(device)
    fast_name = f"autocast {str(fast).removeprefix('torch.')}" if fast else "fp32 (no autocast on a CPU)"
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, scene in enumerate(shapes.generate("train", images, seed=5)):
            files.append(Path(tmp) / f"{i}.jpg")
            scene.render(480).resize((640, 480)).save(files[-1], quality=90)
        items = [(f.name, (lambda f=f: open_image(f))) for f in files]
        variants = (
            ("fp32, decode on the main thread", None, False),
            (f"{fast_name}, decode in a thread", "auto", True),
        )
        build_cache(
            model.vision, items[:4], processor_pixels(processor), Path(tmp) / "warm-up", profile.model, 4, device
        )
        for k, (name, dtype, prefetch) in enumerate(variants):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            build_cache(
                model.vision,
                items,
                processor_pixels(processor),
                Path(tmp) / f"cache{k}",
                profile.model,
                batch_size,
                device,
                dtype=dtype,
                prefetch=prefetch,
            )
            if device.type == "cuda":
                torch.cuda.synchronize()
            out[name] = images / (time.perf_counter() - start)
    return out


def measured_peak_memory(model, profile, device, batch_sizes=(8, 32), captions: int = 5) -> dict:
    """Peak CUDA memory (GiB) of one real optimizer step from cached features at each batch size
    (captions per step, `captions` per image), one caption per sequence and with the shared prefix."""
    dtype = autocast_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    opt = make_optimizer(model, profile.train)
    model.train()
    out = {}
    for name, shared in (("(b) cached features", False), ("(c) cached + shared prefix", True)):
        for batch in batch_sizes:
            images = max(1, batch // captions)
            ids, mask, owner = (t.to(device) for t in caption_batch(images, captions, model.spec.vocab_size))
            feats = torch.randn(images, profile.model.visual_tokens, profile.model.vision_width, device=device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)

            def loss_fn(ids=ids, mask=mask, feats=feats, owner=owner, shared=shared):
                with autocast(device, dtype):
                    return model(ids, mask, features=feats, owner=owner, shared_prefix=shared).loss

            scaled_train_step(scaler)(opt, loss_fn, 1.0, 1.0)
            torch.cuda.synchronize()
            out.setdefault(name, {})[images * captions] = torch.cuda.max_memory_allocated(device) / 2**30
    return out
