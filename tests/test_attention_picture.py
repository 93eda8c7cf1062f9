"""`plots.attention_maps` as a reader sees it: one colour scale for every word, the heat opaque (its
colour reads off the bar, not mixed with an orange shape under it), the scene as outlines, and only
the centred square that the processor keeps and the patches cover."""

import numpy as np
import pytest
import torch
from PIL import Image

from vgpt import plots
from vgpt.course.notebook import sample_photo
from vgpt.world import shapes


@pytest.fixture
def scene_and_maps():
    scene = next(s for s in shapes.generate("test", 40, seed=0) if len(s.objects) == 2)
    maps = torch.zeros(3, 4, 4)
    maps[0, 1, 0], maps[1] = 0.5, 1 / 16  # a peaked map and a flat one
    maps[2, 3, 3] = 0.25
    return scene.render(64), ["a", "small", "orange"], maps


def word_panels(fig, n):
    return [ax for ax in fig.axes if ax.get_title().startswith("'")][:n]


def test_every_word_panel_is_the_opaque_heat_on_one_scale_with_the_scene_outlined(scene_and_maps):
    image, words, maps = scene_and_maps
    fig = plots.attention_maps(image, words, maps, close=True)
    panels = word_panels(fig, len(words))
    assert len(panels) == 3
    for ax in panels:
        (heat,) = ax.images  # the heat alone: no picture under it to tint its colours
        assert heat.get_array().shape == (4, 4) and heat.get_alpha() in (None, 1.0)
        assert heat.get_clim() == (0.0, 0.5)  # one scale: 0 to the largest share in any map
        assert ax.collections, "no outline of the scene"  # the contour of the shapes
    first = next(ax for ax in fig.axes if ax.get_title() == "image")
    assert first.images[0].get_array().shape == (64, 64, 3)  # the scene itself, in colour
    bar = fig.axes[-1]
    assert bar.get_ylim() == (0.0, 0.5) and any("uniform 1/16" in t.get_text() for t in bar.get_yticklabels())


def test_a_photo_is_shown_as_the_centred_square_the_patches_cover():
    photo = sample_photo()  # 512 x 600: the processor keeps the middle 512 x 512
    fig = plots.attention_maps(photo, ["a"], torch.rand(1, 4, 4), close=True)
    first = next(ax for ax in fig.axes if ax.get_title() == "image")
    shown = first.images[0].get_array()
    assert shown.shape[:2] == (512, 512)
    assert np.array_equal(np.asarray(shown), np.asarray(photo)[44:556])  # rows (600 - 512) // 2 onwards


def test_a_blank_image_is_drawn_without_an_outline():
    fig = plots.attention_maps(Image.new("RGB", (64, 64)), ["a"], torch.rand(1, 4, 4), close=True)
    (panel,) = word_panels(fig, 1)
    assert not panel.collections and len(panel.images) == 1
