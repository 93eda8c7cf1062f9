"""The checkers of notebook 01's exercises: CLIP's preprocessing by hand, and patchify.

`check_clip_preprocess` compares with a CLIP image processor built with the
same settings, and names the usual mistakes by the tensor they give: channel-last
pixels, a squashed (not cropped) image, the top-left corner instead of the
centre, a missing rescale or normalisation, bilinear resampling. `check_patchify`
names patches taken column by column (column-major) and patches flattened
channel-last, and a plain reshape that never cuts square patches.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..notebook import sample_photo
from .grading import Case, Checker, Wrong
from .mistakes import matches, name_the_mistake, show
from .wire import kind

# ------------------------------------------------------------------ clip_preprocess


def _processor(size: int, crop: int, mean, std):
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": crop, "width": crop},
                                 image_mean=list(mean), image_std=list(std))  # fmt: skip


def _by_hand(image, size, crop, mean, std, *, squash=False, centre=True, rescale=True, normalise=True,
             resample=Image.BICUBIC, swap=False) -> torch.Tensor:  # fmt: skip
    """The preprocessing with one step changed (the defaults are the right answer)."""
    w, h = image.size
    if squash:
        new = (crop, crop)
    else:
        scale = size / min(w, h)
        new = (size, int(h * scale)) if w <= h else (int(w * scale), size)
    resized = image.resize(new, resample)
    left, top = ((resized.width - crop) // 2, (resized.height - crop) // 2) if centre else (0, 0)
    x = torch.from_numpy(np.asarray(resized.crop((left, top, left + crop, top + crop)), dtype=np.float32))
    x = x.permute(2, 0, 1) / (255 if rescale else 1)
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    if swap:
        m, s = s, m
    return (x - m) / s if normalise else x


def _preprocess_case(name: str, image, size: int, crop: int) -> Case:
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)  # CLIP's
    expected = _processor(size, crop, mean, std)(images=[image], return_tensors="pt")["pixel_values"][0]
    args = (image, size, crop, mean, std)
    known = [
        (_by_hand(*args, squash=True), "squashed: the whole image was resized to a square, which changes "
         "its proportions. Resize the shorter side to `size`, keep the aspect ratio, then crop the centre."),
        (_by_hand(*args, centre=False), "the top-left corner was cropped: cut the centre square, "
         "left = (width - crop) // 2, top = (height - crop) // 2."),
        (_by_hand(*args, rescale=False), "not rescaled: normalising 0..255 values gives numbers about 255 "
         "times too large. Divide by 255 before subtracting the mean."),
        (_by_hand(*args, normalise=False), "values in [0, 1]: rescaled but not normalised. Subtract CLIP's "
         "mean and divide by its std, channel by channel."),
        (_by_hand(*args, rescale=False, normalise=False), "raw 0..255 values: rescale to [0, 1], then "
         "normalise with CLIP's mean and std."),
        (_by_hand(*args, swap=True), "mean and std swapped: normalise as (x - mean) / std."),
        (_by_hand(*args, resample=Image.BILINEAR), "bilinear resampling: CLIP's processor resizes with "
         "bicubic interpolation, Image.BICUBIC."),
    ]  # fmt: skip

    def judge(got):
        if not torch.is_tensor(got):
            raise Wrong(f"expected a torch tensor (3, {crop}, {crop}), got {kind(got)}: "
                        f"torch.from_numpy(...) turns an array into one")  # fmt: skip
        if got.shape == (crop, crop, 3):
            right = matches(got, expected.permute(1, 2, 0), atol=1e-4)
            raise Wrong(f"channel-last (H, W, C) = {tuple(got.shape)}: the tower wants channel-first (C, H, W) = "
                        f"(3, {crop}, {crop}); permute(2, 0, 1), not reshape"
                        + (" (the numbers themselves are right)." if right else "."))  # fmt: skip
        if got.dim() == 4 and got.shape[0] == 1:
            raise Wrong(f"a batch of one, {tuple(got.shape)}: return one image, (3, {crop}, {crop})")
        name_the_mistake(got, expected, f"pixel values of a {image.width} x {image.height} image", known, atol=1e-4)

    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())  # (H, W, 3)
    return Case(name, (pixels, size, crop, mean, std), judge, call="image")


def _clip_preprocess_cases() -> list[Case]:
    rng = np.random.default_rng(0)
    wide = Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8))  # 50 wide, 30 high
    tall = Image.fromarray(rng.integers(0, 256, (47, 31, 3), dtype=np.uint8))
    return [
        _preprocess_case("a wide 50 x 30 image, size 20, crop 16", wide, 20, 16),
        _preprocess_case("a tall 31 x 47 image, size 24, crop 24", tall, 24, 24),
        _preprocess_case("the 512 x 600 photo, size 64, crop 64", sample_photo().convert("RGB"), 64, 64),
    ]


check_clip_preprocess = Checker(
    "clip_preprocess",
    _clip_preprocess_cases,
    """`fn(image, size, crop, mean, std) -> (3, crop, crop)`: CLIP's preprocessing of one PIL RGB image
    (resize the shorter side to `size`, bicubic; centre crop; rescale to [0, 1]; normalise per
    channel; channel-first), equal to CLIP's image processor with the same settings.""",
)


# ------------------------------------------------------------------ patchify


def _patches(pixels: torch.Tensor, patch: int, order=(0, 2, 4, 1, 3, 5)) -> torch.Tensor:
    """Patches by blocks; `order` permutes (B, C, rows, p, cols, p). The default is row-major,
    channel-first; (0, 4, 2, 1, 3, 5) is column-major; (0, 2, 4, 3, 5, 1) is channel-last."""
    b, c, h, w = pixels.shape
    blocks = pixels.reshape(b, c, h // patch, patch, w // patch, patch).permute(*order)
    return blocks.reshape(b, (h // patch) * (w // patch), c * patch * patch)


def _patchify_case(name: str, pixels: torch.Tensor, patch: int) -> Case:
    b, c, h, w = pixels.shape
    known = [
        (_patches(pixels, patch, (0, 4, 2, 1, 3, 5)), "column-major: the patches come column by column. "
         "A ViT reads them row-major, row by row, each row left to right, the order its position "
         "embeddings were trained with: permute to (B, rows, cols, ...), rows before columns."),
        (_patches(pixels, patch, (0, 2, 4, 3, 5, 1)), "each patch is flattened channel-last (p, p, C). "
         "Flatten it channel-first (C, p, p), as the convolution's weight (Dv, C, p, p) is laid out: "
         "the channel axis before the two pixel axes."),
        (_patches(pixels, patch, (0, 4, 2, 3, 5, 1)), "column-major patches, flattened channel-last: "
         "take the patches row by row and flatten each channel-first (C, p, p)."),
        (_patches(pixels, patch, (0, 2, 4, 1, 5, 3)), "the pixels inside each patch are transposed "
         "(x before y): keep (C, p_rows, p_cols)."),
        (pixels.reshape(b, -1, c * patch * patch), "a plain reshape cuts the flat pixel list into runs of "
         "C * p * p numbers, which are not square patches. Split H and W into blocks first, "
         "reshape to (B, C, H/p, p, W/p, p), then permute."),
    ]  # fmt: skip
    what = f"the patches of pixels {show(pixels)} with patch {patch}"
    return Case(name, (pixels, patch), lambda got: name_the_mistake(got, _patches(pixels, patch), what, known))


def _patchify_cases() -> list[Case]:
    counting = torch.arange(48, dtype=torch.float).view(1, 3, 4, 4)  # small enough to print whole
    wide = torch.randn(2, 3, 4, 12)
    conv = nn.Conv2d(3, 5, kernel_size=4, stride=4, bias=False)
    x = torch.randn(2, 3, 8, 12)
    with torch.no_grad():
        expected = conv(x).flatten(2).transpose(1, 2)  # (2, P, 5)

    def like_the_conv(got):
        if not torch.is_tensor(got) or got.shape != (2, 6, 48):
            shape = tuple(got.shape) if torch.is_tensor(got) else got
            raise Wrong(f"expected patches of shape (2, 6, 48), got {shape}")
        with torch.no_grad():
            if not matches(got @ conv.weight.reshape(5, -1).T, expected, atol=1e-4):
                raise Wrong("patches times the convolution's weight (reshaped to (Dv, C * p * p)) differ from the "
                            "convolution's output")  # fmt: skip

    return [
        _patchify_case("a 3 x 4 x 4 image counting 0..47, patch 2", counting, 2),
        _patchify_case("a batch of 2 wide 3 x 4 x 12 images, patch 2", wide, 2),
        Case("the patch embedding (a convolution, stride = kernel = 4)", (x, 4), like_the_conv),
    ]


check_patchify = Checker(
    "patchify",
    _patchify_cases,
    """`fn(pixels (B, C, H, W), patch) -> (B, P, C * patch * patch)`, patches row by row (row-major),
    each flattened channel-first, as a ViT's patch embedding (a strided convolution) reads them.""",
)

EXERCISES = (check_clip_preprocess, check_patchify)
