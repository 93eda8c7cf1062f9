"""Notebook 01's checkers accept the worked solutions and name the usual mistakes."""

import numpy as np
import pytest
import torch
from conftest import exercise_solution
from PIL import Image

from vgpt import features
from vgpt.course.exercises import check_clip_preprocess, check_patchify
from vgpt.course.exercises.feature_extraction import _patches

STEM = "01_feature_extraction"


def _preprocess(image, size, crop, mean, std, *, resample=Image.BICUBIC, squash=False, corner=False,
                rescale=True, normalise=True, channels_last=False):  # fmt: skip
    """A student's preprocessing, with one of the usual mistakes switched on."""
    w, h = image.size
    new = (crop, crop) if squash else ((size, int(h * size / w)) if w <= h else (int(w * size / h), size))
    resized = image.resize(new, resample)
    left, top = (0, 0) if corner else ((resized.width - crop) // 2, (resized.height - crop) // 2)
    x = torch.from_numpy(np.asarray(resized.crop((left, top, left + crop, top + crop)), dtype=np.float32))
    x = x / 255 if rescale else x
    x = (x - torch.tensor(mean)) / torch.tensor(std) if normalise else x
    return x if channels_last else x.permute(2, 0, 1)


def test_clip_preprocess_accepts_the_worked_solution_and_a_careful_hand_version(capsys):
    assert check_clip_preprocess(exercise_solution(STEM, "clip_preprocess")) is True
    assert check_clip_preprocess(_preprocess) is True
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    "options, message",
    [
        ({"channels_last": True}, "channel-last (H, W, C)"),
        ({"squash": True}, "squashed"),
        ({"corner": True}, "top-left corner"),
        ({"rescale": False}, "not rescaled"),
        ({"normalise": False}, "rescaled but not normalised"),
        ({"rescale": False, "normalise": False}, "raw 0..255 values"),
        ({"resample": Image.BILINEAR}, "bilinear resampling"),
    ],
)
def test_clip_preprocess_names_the_mistake(options, message, capsys):
    assert check_clip_preprocess(lambda *args: _preprocess(*args, **options)) is False
    assert message in capsys.readouterr().out


def test_clip_preprocess_names_swapped_statistics_a_batch_and_an_array(capsys):
    swapped = lambda image, size, crop, mean, std: _preprocess(image, size, crop, std, mean)  # noqa: E731
    assert check_clip_preprocess(swapped) is False
    assert "mean and std swapped" in capsys.readouterr().out
    assert check_clip_preprocess(lambda *args: _preprocess(*args)[None]) is False
    assert "a batch of one" in capsys.readouterr().out
    assert check_clip_preprocess(lambda *args: _preprocess(*args).numpy()) is False
    assert "expected a torch tensor" in capsys.readouterr().out


def test_clip_preprocess_refuses_vgpts_own(capsys):
    assert check_clip_preprocess(features.processor_pixels(None)) is False
    assert "vgpt's own" in capsys.readouterr().out


def test_patchify_accepts_the_worked_solution(capsys):
    assert check_patchify(exercise_solution(STEM, "patchify")) is True
    assert "Correct!" in capsys.readouterr().out


def _blocks(order):
    def patchify(x, p):
        b, c, h, w = x.shape
        return x.reshape(b, c, h // p, p, w // p, p).permute(*order).reshape(b, -1, c * p * p)

    return patchify


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_blocks((0, 4, 2, 1, 3, 5)), "column-major"),
        (_blocks((0, 2, 4, 3, 5, 1)), "flattened channel-last (p, p, C)"),
        (_blocks((0, 4, 2, 3, 5, 1)), "column-major patches, flattened channel-last"),
        (_blocks((0, 2, 4, 1, 5, 3)), "transposed"),
        (lambda x, p: x.reshape(x.shape[0], -1, x.shape[1] * p * p), "a plain reshape"),
        (
            lambda x, p: x.unfold(2, p, p).unfold(3, p, p).permute(0, 3, 2, 1, 4, 5).flatten(3).flatten(1, 2),
            "column-major",
        ),
        (lambda x, p: x.unfold(2, p, p).unfold(3, p, p).reshape(x.shape[0], -1, x.shape[1] * p * p), "not yet"),
    ],
)
def test_patchify_names_the_mistake(wrong, message, capsys):
    assert check_patchify(wrong) is False
    assert message in capsys.readouterr().out


def test_patchify_refuses_vgpts_own(capsys):
    assert check_patchify(_patches) is False
    assert "vgpt's own" in capsys.readouterr().out
