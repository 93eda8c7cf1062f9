"""Stage 01: image -> frozen vision tower -> a sequence of feature vectors, cached on disk.

    pixel_values (B, 3, H, W) --tower--> hidden states --pick layer, CLS?, LN?--> (B, N, Dv)

The seed takes CLIP's `last_hidden_state` with CLS: 257 x 1024 for ViT-L/14.
LLaVA takes the penultimate layer without CLS (256 x 1024): the last layer is
shaped by CLIP's contrastive objective toward the pooled CLS, the one before
it keeps more local detail.

The tower never trains, so its output for an image never changes: computing
it once per image and reading it back is the biggest speed-up available.
The cache is a memory-mapped fp16 array, so a 4.3 GB Flickr8k cache is read
row by row, not loaded into RAM.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import distributed
from .data import DataError
from .device import autocast, autocast_dtype
from .errors import UserError
from .profiles import FeatureSpec
from .progress import progress


@torch.no_grad()
def extract_features(vision, pixel_values: torch.Tensor, spec: FeatureSpec = FeatureSpec()) -> torch.Tensor:
    """(B, 3, H, W) -> (B, N, Dv) from a frozen CLIPVisionModel."""
    vision.eval()
    if spec.layer == -1:
        hidden = vision(pixel_values=pixel_values).last_hidden_state  # (B, 1 + P, Dv)
    else:
        hidden = vision(pixel_values=pixel_values, output_hidden_states=True).hidden_states[spec.layer]
    if not spec.keep_cls:
        hidden = hidden[:, 1:]  # (B, P, Dv)
    if spec.layernorm:
        hidden = vision.post_layernorm(hidden)
    return hidden


MAX_ASPECT = 2.0  # longer side / shorter side kept before the processor's resize and centre crop


def trim_aspect(image, max_aspect: float = MAX_ASPECT):
    """Cut a very long image down to its middle, at most `max_aspect` times as long as it is wide.

    The processor resizes the *shorter* side to the tower's size, then keeps only
    the centre square, so this changes nothing it would keep; but a 10,000 x 2
    strip would otherwise be resized to 320,000 x 64 pixels first.
    """
    w, h = image.size
    if max(w, h) <= max_aspect * min(w, h):
        return image
    keep = max(1, int(max_aspect * min(w, h)))
    if w > h:
        left = (w - keep) // 2
        return image.crop((left, 0, left + keep, h))
    top = (h - keep) // 2
    return image.crop((0, top, w, top + keep))


def processor_pixels(processor) -> Callable[[list], torch.Tensor]:
    """A function from a list of images to the image processor's (B, 3, H, W) pixel values."""
    return lambda images: processor(images=[trim_aspect(i) for i in images], return_tensors="pt")["pixel_values"]


ARCHITECTURE_KEYS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_channels",
    "image_size",
    "patch_size",
    "hidden_act",
    "layer_norm_eps",
)


def tower_fingerprint(vision) -> str:
    """Identifies a tower by its architecture and a hash of some of its weights' bytes: the same
    wherever the model folder lies and whichever transformers version wrote its config."""
    config = vision.config.to_dict()
    h = hashlib.sha256(json.dumps({k: config.get(k) for k in ARCHITECTURE_KEYS}, sort_keys=True).encode())
    for name, tensor in sorted(vision.state_dict().items()):
        if name.endswith(("patch_embedding.weight", "post_layernorm.weight", "post_layernorm.bias")):
            h.update(tensor.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


class CacheError(UserError):
    """A feature cache cannot be used or written; the message names the folder."""


class FeatureCache:
    """Features of many images in one folder: `features.npy` (fp16, memory-mapped),
    `ids.json`, and `meta.json`, which is written last: no meta, no cache.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise CacheError(f"{self.folder}: not a complete feature cache (meta.json missing)")
        self.meta = json.loads(meta_path.read_text())
        self.ids = json.loads((self.folder / "ids.json").read_text())
        self.row = {image_id: i for i, image_id in enumerate(self.ids)}
        self.array = np.load(self.folder / "features.npy", mmap_mode="r")
        if self.array.shape[0] != len(self.ids):
            raise CacheError(f"{self.folder}: {self.array.shape[0]} feature rows for {len(self.ids)} ids")

    @property
    def unreadable(self) -> dict[str, str]:
        """Image id -> why it could not be read (its row holds a black image's features)."""
        return self.meta.get("unreadable", {})

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, image_id: str) -> bool:
        return image_id in self.row

    def get(self, image_ids: Sequence[str]) -> torch.Tensor:
        """(B, N, Dv) fp16 for these ids, read from disk."""
        rows = [self.row[i] for i in image_ids]
        return torch.from_numpy(np.stack([self.array[r] for r in rows]))


def cache_key(vision, spec: FeatureSpec, image_size: int) -> str:
    blob = json.dumps({"tower": tower_fingerprint(vision), "spec": asdict(spec), "image_size": image_size})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _open_all(chunk, image_size: int, unreadable: dict[str, str]) -> list:
    """Open each image; one that cannot be read is noted with the reason and stands in as black."""
    opened = []
    for image_id, open_image in chunk:
        try:
            opened.append(open_image())
        except DataError as err:
            unreadable[image_id] = str(err)
            opened.append(Image.new("RGB", (image_size, image_size)))
    return opened


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _now(fn, *args):
    """`pool.submit`'s shape, run at once on this thread (no prefetch)."""
    return _Done(fn(*args))


def _feature_shape(vision, to_pixels, spec: FeatureSpec, image_size: int, device, dtype) -> tuple[int, ...]:
    """(N, Dv) for this tower and spec, from one black image."""
    with autocast(device, dtype):
        probe = extract_features(vision, to_pixels([Image.new("RGB", (image_size, image_size))]).to(device), spec)
    return tuple(probe.shape[1:])


def _write_cache(
    vision,
    images,
    to_pixels,
    work: Path,
    spec: FeatureSpec,
    batch_size: int,
    device,
    image_size: int,
    dtype,
    prefetch: bool = True,
) -> dict[str, str]:
    """Fill work/features.npy, this rank's batches only; returns the unreadable images of all ranks.

    Opening and preprocessing the next batch (PIL decoding, resizing) runs in a
    thread while the tower runs on the current one, so a GPU does not wait
    for the CPU; the tower runs under `dtype` autocast (fp16 or bf16 on a GPU).
    """
    vision = vision.to(device)
    shape = (len(images), *_feature_shape(vision, to_pixels, spec, image_size, device, dtype))
    if distributed.is_main():
        np.lib.format.open_memmap(work / "features.npy", mode="w+", dtype=np.float16, shape=shape).flush()
    distributed.barrier()
    array = np.load(work / "features.npy", mmap_mode="r+")
    unreadable: dict[str, str] = {}
    step = batch_size * distributed.world_size()
    starts = list(range(distributed.rank() * batch_size, len(images), step))

    def pixels_of(start):
        return to_pixels(_open_all(images[start : start + batch_size], image_size, unreadable))

    with ThreadPoolExecutor(max_workers=1) as pool:
        load = pool.submit if prefetch else _now
        upcoming = load(pixels_of, starts[0]) if starts else None
        for k, start in enumerate(progress(starts, desc="features", unit="batch", disable=not distributed.is_main())):
            pixels = upcoming.result().to(device)
            if k + 1 < len(starts):
                upcoming = load(pixels_of, starts[k + 1])
            with autocast(device, dtype):
                feats = extract_features(vision, pixels, spec)
            array[start : start + len(pixels)] = feats.to("cpu", torch.float16).numpy()
    array.flush()
    del array
    distributed.barrier()
    return distributed.gather_dict(unreadable)


def build_cache(
    vision,
    images: Sequence[tuple[str, Callable[[], object]]],
    to_pixels: Callable[[list], torch.Tensor],
    root: str | Path,
    spec: FeatureSpec = FeatureSpec(),
    image_size: int = 224,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None | str = "auto",
    prefetch: bool = True,
) -> FeatureCache:
    """Features for `images` (pairs of id and a function that opens the image),
    cached under `root/<key>/`. Reused when the key (tower weights, layer
    choice, image size) and the ids match; otherwise rebuilt. An image that
    cannot be read gets a row of features of a black image and is listed, with
    the reason, in `cache.unreadable`, for the caller to leave out.

    `dtype`: the autocast precision of the tower; "auto" is the device's
    (fp16 or bf16 on a GPU, none on a CPU). Under `torchrun` every rank
    extracts its share of the batches into the one cache; rank 0 finishes it.
    """
    device = torch.device(device)
    dtype = autocast_dtype(device) if dtype == "auto" else dtype
    key = cache_key(vision, spec, image_size)
    folder = Path(root) / key
    ids = [image_id for image_id, _ in images]
    try:
        cache = FeatureCache(folder)
        if cache.ids == ids:
            return cache
    except (CacheError, OSError, ValueError):
        pass  # missing, half-written or for other images: rebuild
    if not images:
        raise CacheError("no images given to cache")
    work = Path(root) / f".{key}.partial"  # written here, renamed into place when complete
    try:
        if distributed.is_main():
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
    except OSError as err:
        raise CacheError(
            f"{root}: cannot write the feature cache here ({err.__class__.__name__}: {err}); "
            f"pass another cache folder (--cache)"
        ) from err
    home = next(vision.parameters()).device  # _write_cache takes the tower to `device`; it comes back after
    try:
        unreadable = _write_cache(
            vision, images, to_pixels, work, spec, batch_size, device, image_size, dtype, prefetch
        )
        if not distributed.is_main():
            distributed.barrier()  # rank 0 renames the finished cache into place
            return FeatureCache(folder)
        meta = {
            "key": key,
            "tower": tower_fingerprint(vision),
            "spec": asdict(spec),
            "image_size": image_size,
            "count": len(ids),
            "unreadable": unreadable,
        }
        (work / "ids.json").write_text(json.dumps(ids))
        (work / "meta.json").write_text(json.dumps(meta, indent=2))  # last: no meta, no cache
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
        distributed.barrier()
    except OSError as err:  # a full disk, a folder made read-only meanwhile: say so, leave no half cache
        shutil.rmtree(work, ignore_errors=True)
        raise CacheError(f"{root}: writing the feature cache failed ({err.__class__.__name__}: {err})") from err
    finally:
        vision.to(home)  # the caller's models stay where they were (a notebook's on the CPU)
    return FeatureCache(folder)
