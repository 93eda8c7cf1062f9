"""Stage 01: image -> frozen vision tower -> a sequence of feature vectors, cached on disk.

    pixel_values (B, 3, H, W) --tower--> hidden states --pick a layer, CLS?, LayerNorm?--> (B, N, Dv)

The seed takes CLIP's `last_hidden_state` with CLS: 257 x 1024 for ViT-L/14. LLaVA takes the
penultimate layer without CLS (256 x 1024): the last layer is shaped by CLIP's contrastive objective
toward the pooled CLS, the one before it keeps more local detail.

The tower never trains, so its output for an image never changes: computing it once per image and
reading it back is the biggest speed-up there is. The cache is a memory-mapped fp16 array, so a
4.3 GB Flickr8k cache is read row by row, not loaded into RAM.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .config import ModelSpec, UserError
from .data import DataError
from .runtime import ONE_PROCESS, autocast, autocast_dtype, progress


@torch.no_grad()
def extract_features(
    vision, pixel_values: torch.Tensor, layer: int = -1, keep_cls: bool = True, layernorm: bool = False
) -> torch.Tensor:
    """(B, 3, H, W) -> (B, N, Dv) from a frozen CLIPVisionModel: hidden state `layer` (-1 the last),
    with or without CLS (token 0), with or without the tower's final LayerNorm."""
    vision.eval()
    if layer == -1:
        hidden = vision(pixel_values=pixel_values).last_hidden_state  # (B, 1 + P, Dv)
    else:
        hidden = vision(pixel_values=pixel_values, output_hidden_states=True).hidden_states[layer]
    if not keep_cls:
        hidden = hidden[:, 1:]  # (B, P, Dv)
    return vision.post_layernorm(hidden) if layernorm else hidden


def spec_features(vision, pixel_values: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """`extract_features` with the choices a model spec makes."""
    return extract_features(vision, pixel_values, spec.feature_layer, spec.keep_cls, spec.feature_layernorm)


MAX_ASPECT = 2.0  # longer side / shorter side kept before the processor's resize and centre crop


def trim_aspect(image, max_aspect: float = MAX_ASPECT):
    """Cut a very long image down to its middle, at most `max_aspect` times as long as it is wide.

    The processor resizes the *shorter* side to the tower's size, then keeps only the centre square,
    so this changes nothing it would keep; but a 10,000 x 2 strip would otherwise be resized to
    320,000 x 64 pixels first.
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
        if tensor.is_meta:  # a tower of shapes only (torch.device("meta")): the architecture is all there is
            continue
        if name.endswith(("patch_embedding.weight", "post_layernorm.weight", "post_layernorm.bias")):
            h.update(tensor.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


class CacheError(UserError):
    """A feature cache cannot be used or written; the message names the folder."""


class FeatureCache:
    """Features of many images in one folder: `features.npy` (fp16, memory-mapped), `ids.json`, and
    `meta.json`, which is written last: no meta, no cache."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / "meta.json").is_file():
            raise CacheError(f"{self.folder}: not a complete feature cache (meta.json missing)")
        self.meta = json.loads((self.folder / "meta.json").read_text())
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
        return torch.from_numpy(np.stack([self.array[self.row[i]] for i in image_ids]))


def cache_key(vision, spec: ModelSpec) -> str:
    """What the features depend on: the tower's weights, the layer choices and the image size."""
    choice = {
        "tower": tower_fingerprint(vision),
        "layer": spec.feature_layer,
        "keep_cls": spec.keep_cls,
        "layernorm": spec.feature_layernorm,
        "image_size": spec.image_size,
    }
    return hashlib.sha256(json.dumps(choice).encode()).hexdigest()[:12]


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


def _fill(vision, images, to_pixels, array_path: Path, spec, batch_size, device, dtype, prefetch, world) -> dict:
    """Write this process's batches into the memory-mapped array; returns the images it could not read.

    The next batch is opened and preprocessed (PIL decoding, resizing) in a thread while the tower
    runs on the current one, so a GPU does not wait for the CPU."""
    array = np.load(array_path, mmap_mode="r+")
    unreadable: dict[str, str] = {}
    starts = list(range(world.rank * batch_size, len(images), batch_size * world.size))

    def pixels_of(start):
        return to_pixels(_open_all(images[start : start + batch_size], spec.image_size, unreadable))

    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(pixels_of, starts[0]) if starts and prefetch else None
        for k, start in enumerate(progress(starts, desc="features", unit="batch", disable=not world.is_main)):
            pixels = (upcoming.result() if prefetch else pixels_of(start)).to(device)
            if prefetch and k + 1 < len(starts):
                upcoming = pool.submit(pixels_of, starts[k + 1])
            with autocast(device, dtype):
                array[start : start + len(pixels)] = (
                    spec_features(vision, pixels, spec).to("cpu", torch.float16).numpy()
                )
    array.flush()
    return unreadable


def build_cache(vision, images: Sequence[tuple[str, Callable[[], object]]],
                to_pixels: Callable[[list], torch.Tensor], root: str | Path, spec: ModelSpec, batch_size: int = 32,
                device: str | torch.device = "cpu", dtype: torch.dtype | None | str = "auto",
                prefetch: bool = True, world=ONE_PROCESS) -> FeatureCache:  # fmt: skip
    """Features for `images` (pairs of id and a function that opens the image), cached under
    `root/<key>/`. Reused when the key (tower weights, layer choices, image size) and the ids match;
    otherwise rebuilt. An image that cannot be read gets a row of a black image's features and is
    listed, with the reason, in `cache.unreadable`, for the caller to leave out.

    `dtype`: the autocast precision of the tower; "auto" is the device's (fp16 or bf16 on a GPU, none
    on a CPU). Several processes (`world`) each extract their share of the batches into one cache.
    """
    device = torch.device(device)
    dtype = autocast_dtype(device) if dtype == "auto" else dtype
    folder, ids = Path(root) / cache_key(vision, spec), [image_id for image_id, _ in images]
    try:
        if (cache := FeatureCache(folder)).ids == ids:
            return cache
    except (CacheError, OSError, ValueError):
        pass  # missing, half-written or for other images: rebuild
    if not images:
        raise CacheError("no images given to cache")
    work = folder.with_name(f".{folder.name}.partial")  # written here, renamed into place when complete
    try:
        if world.is_main:
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
    except OSError as err:
        raise CacheError(
            f"{root}: cannot write the feature cache here ({err.__class__.__name__}: {err}); "
            f"pass another cache folder (--cache)"
        ) from err
    home = next(vision.parameters()).device  # the tower goes to `device` and comes back after
    vision.to(device)
    try:
        if world.is_main:
            with autocast(device, dtype):  # (N, Dv), from one black image
                black = to_pixels([Image.new("RGB", (spec.image_size, spec.image_size))]).to(device)
                shape = (len(images), *spec_features(vision, black, spec).shape[1:])
            np.lib.format.open_memmap(work / "features.npy", mode="w+", dtype=np.float16, shape=shape).flush()
        world.barrier()
        found = _fill(
            vision, images, to_pixels, work / "features.npy", spec, batch_size, device, dtype, prefetch, world
        )
        unreadable = world.gather(found)
        world.barrier()
        if world.is_main:
            meta = {
                "tower": tower_fingerprint(vision),
                "feature_layer": spec.feature_layer,
                "keep_cls": spec.keep_cls,
                "feature_layernorm": spec.feature_layernorm,
                "image_size": spec.image_size,
                "count": len(ids),
                "unreadable": unreadable,
            }
            (work / "ids.json").write_text(json.dumps(ids))
            (work / "meta.json").write_text(json.dumps(meta, indent=2))  # last: no meta, no cache
            shutil.rmtree(folder, ignore_errors=True)
            work.rename(folder)
        world.barrier()  # the others wait for the rename
    except OSError as err:  # a full disk, a folder made read-only meanwhile: say so, leave no half cache
        shutil.rmtree(work, ignore_errors=True)
        raise CacheError(f"{root}: writing the feature cache failed ({err.__class__.__name__}: {err})") from err
    finally:
        vision.to(home)  # the caller's models stay where they were (a notebook's on the CPU)
    return FeatureCache(folder)
