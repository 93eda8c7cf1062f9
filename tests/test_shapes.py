"""Shapes World: deterministic, captions true to the pixels, splits disjoint."""

import csv
import math
import random
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from vgpt.world import shapes


def color_mask(image: Image.Image, color: str) -> np.ndarray:
    return (np.asarray(image) == np.array(shapes.COLORS[color])).all(-1)


def test_same_seed_same_scenes_and_pixels():
    a, b = shapes.generate("train", 50, seed=3), shapes.generate("train", 50, seed=3)
    assert a == b
    assert all(x.render().tobytes() == y.render().tobytes() for x, y in zip(a, b))
    assert shapes.generate("train", 50, seed=4) != a


def test_one_object_caption_matches_pixels():
    """The named color is drawn, inside the named cell, and nothing else is."""
    for scene in shapes.generate("train", 200, seed=0, p_two=0.0):
        obj = scene.objects[0]
        image = scene.render(64)
        mask = color_mask(image, obj.color)
        assert mask.sum() > 20, scene.caption
        ys, xs = np.nonzero(mask)
        row, col = int(ys.mean() // (64 / 3)), int(xs.mean() // (64 / 3))
        assert shapes.POSITION_PHRASES[(row, col)] in scene.caption
        others = [c for c in shapes.COLORS if c != obj.color]
        assert not any(color_mask(image, c).any() for c in others)


def test_two_object_relation_matches_pixels():
    """The first-named object's pixels lie left of (or above) the second's."""
    checked = 0
    for scene in shapes.generate("train", 400, seed=1, p_two=1.0):
        a, b = scene.objects
        if a.color == b.color:
            continue
        image = scene.render(64)
        ya, xa = np.nonzero(color_mask(image, a.color))
        yb, xb = np.nonzero(color_mask(image, b.color))
        if scene.relation == "left of":
            assert xa.max() < xb.min(), scene.caption
            assert scene.caption == f"{a.phrase} left of {b.phrase}"
        else:
            assert ya.max() < yb.min(), scene.caption
            assert scene.caption == f"{a.phrase} above {b.phrase}"
        checked += 1
    assert checked > 200


def test_size_word_matches_drawn_extent():
    """Every small object's bounding box is narrower than every large one's."""
    widths = {"small": [], "large": []}
    for s in shapes.generate("train", 300, seed=2, p_two=0.0):
        xs = np.nonzero(color_mask(s.render(), s.objects[0].color))[1]
        widths[s.objects[0].size].append(xs.max() - xs.min() + 1)
    assert max(widths["small"]) + 4 <= min(widths["large"])


def test_shape_word_matches_fill_ratio():
    """Square fills its box most, circle ~pi/4 of it, triangle ~1/2."""
    fill = {k: [] for k in shapes.SHAPES}
    for s in shapes.generate("train", 300, seed=5, p_two=0.0):
        o = s.objects[0]
        if o.size != "large":
            continue
        ys, xs = np.nonzero(color_mask(s.render(), o.color))
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        fill[o.shape].append(len(ys) / box)
    assert min(fill["square"]) > 0.95
    assert all(0.7 < f < 0.85 for f in fill["circle"])
    assert all(0.4 < f < 0.65 for f in fill["triangle"])


def test_splits_are_disjoint_and_compositional_pairs_never_in_training():
    splits = {name: shapes.generate(name, 300, seed=0) for name in shapes.SPLITS}
    sets = {name: set(scenes) for name, scenes in splits.items()}
    names = list(sets)
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            assert not sets[x] & sets[y], (x, y)
    for name in ("train", "val", "test"):
        for scene in splits[name]:
            assert all((o.color, o.shape) not in shapes.COMPOSITIONAL_PAIRS for o in scene.objects)
            assert scene.split == name
    assert all(
        any((o.color, o.shape) in shapes.COMPOSITIONAL_PAIRS for o in s.objects) for s in splits["compositional"]
    )
    # and the language model's text does use the held-out pairs
    text = " ".join(shapes.sample_captions(2000))
    for color, shape in shapes.COMPOSITIONAL_PAIRS:
        assert f"{color} {shape}" in text


def test_caption_distribution_is_exact():
    dist = shapes.caption_distribution()
    assert math.isclose(sum(dist.values()), 1.0)
    assert len(dist) == 6 * 3 * 2 * 9 + 2 * 36 * 36
    n = 60000
    counts = Counter(shapes.sample_captions(n, seed=9))
    assert set(counts) <= set(dist)
    one = sum(v for c, v in counts.items() if " of " not in c and " above " not in c)
    assert abs(one / n - 0.5) < 0.01
    # a frequent single-object caption appears about as often as predicted
    c = "a large red circle in the center"
    assert abs(counts[c] - n * dist[c]) < 5 * math.sqrt(n * dist[c])
    expected = -sum(p * math.log(p) for p in dist.values())
    assert math.isclose(shapes.caption_entropy(), expected)
    assert math.isclose(expected, math.log(2) + 0.5 * math.log(324) + 0.5 * math.log(2592))


def test_counterfactual_twin_differs_in_one_word_and_keeps_split():
    rng = random.Random(0)
    for scene in shapes.generate("train", 200, seed=0):
        twin = shapes.counterfactual(scene, rng)
        if twin is None:
            continue
        assert twin.split == "train"
        a, b = scene.caption.split(), twin.caption.split()
        assert len(a) == len(b)
        diff = sum(x != y for x, y in zip(a, b))
        assert diff == 1 or (diff <= 6 and sorted(a) == sorted(b))  # one word, or a swap


def test_unknown_split_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown split 'trian'"):
        shapes.generate("trian", 1)


def test_flickr_layout(tmp_path):
    scenes = shapes.generate("val", 5, seed=0)
    folder = shapes.write_flickr_layout(scenes, tmp_path / "shapes8k")
    with open(folder / "captions.txt", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "caption"]
    assert [r[1] for r in rows[1:]] == [s.caption for s in scenes]
    for (name, _), scene in zip(rows[1:], scenes):
        image = Image.open(folder / "Images" / name)
        assert image.size == (64, 64)
        assert image.tobytes() == scene.render().tobytes()
