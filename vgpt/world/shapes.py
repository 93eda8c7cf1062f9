"""Shapes World: a generated world of captioned scenes for the `tiny` profile.

A scene holds one or two flat shapes on a dark background. Every scene has
exactly one caption, built from a small grammar:

    one object:  "a large red circle at the top left"
    two objects: "a small blue square left of a large yellow triangle"
                 "a small blue square above a large yellow triangle"

The two-object order is fixed (the left or upper object is named first), so
"A left of B" and "B right of A" never compete for the same picture.

The image is cut into a 3 x 3 grid of cells; each object sits in one cell.
Two objects share a row ("left of") or a column ("above").

Splits are a property of the scene, not of the seed: a hash of the scene
decides train / val / test, and any scene that shows a held-out
(color, shape) pair belongs to the `compositional` split. So the splits are
disjoint by construction, whatever seeds and sizes are asked for.
"""

from __future__ import annotations

import csv
import math
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 230, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 240),
    "purple": (160, 60, 200),
}
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
BACKGROUND = (25, 25, 30)

# Fraction of the cell side an object spans, by size word.
SIZE_FRACTION = {"small": 0.65, "large": 0.95}

# Where a lone object sits, named by its cell (row, col).
POSITION_PHRASES: dict[tuple[int, int], str] = {
    (0, 0): "at the top left",
    (0, 1): "at the top",
    (0, 2): "at the top right",
    (1, 0): "on the left",
    (1, 1): "in the center",
    (1, 2): "on the right",
    (2, 0): "at the bottom left",
    (2, 1): "at the bottom",
    (2, 2): "at the bottom right",
}
RELATIONS = ("left of", "above")

# (color, shape) pairs never drawn in train/val/test images; the language
# model still reads captions that use them.
COMPOSITIONAL_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {("orange", "triangle"), ("green", "circle"), ("purple", "square")}
)

SPLITS = ("train", "val", "test", "compositional")
P_TWO_OBJECTS = 0.5
_ORDERED_PAIRS = ((0, 1), (0, 2), (1, 2))  # (first, second) index along a line


@dataclass(frozen=True)
class ShapeObject:
    color: str
    shape: str
    size: str
    row: int
    col: int
    dx: float = 0.0  # jitter inside the cell, as a fraction of the free room
    dy: float = 0.0

    @property
    def phrase(self) -> str:
        return f"a {self.size} {self.color} {self.shape}"


@dataclass(frozen=True)
class Scene:
    objects: tuple[ShapeObject, ...]  # in caption order
    relation: str | None = None  # "left of" / "above" for two objects

    @property
    def caption(self) -> str:
        first = self.objects[0]
        if len(self.objects) == 1:
            return f"{first.phrase} {POSITION_PHRASES[(first.row, first.col)]}"
        return f"{first.phrase} {self.relation} {self.objects[1].phrase}"

    @property
    def split(self) -> str:
        return split_of(self)

    def render(self, image_size: int = 64) -> Image.Image:
        return render(self, image_size)


def split_of(scene: Scene) -> str:
    """Which split a scene belongs to: a pure function of the scene."""
    if any((o.color, o.shape) in COMPOSITIONAL_PAIRS for o in scene.objects):
        return "compositional"
    bucket = zlib.crc32(repr(scene).encode()) % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


def _object(rng: random.Random, row: int, col: int, allow_held_out: bool) -> ShapeObject:
    while True:
        color, shape = rng.choice(list(COLORS)), rng.choice(SHAPES)
        if allow_held_out or (color, shape) not in COMPOSITIONAL_PAIRS:
            break
    size = rng.choice(SIZES)
    return ShapeObject(color, shape, size, row, col, round(rng.uniform(-1, 1), 2), round(rng.uniform(-1, 1), 2))


def sample_scene(rng: random.Random, p_two: float = P_TWO_OBJECTS) -> Scene:
    """Draw one scene from the full grammar (held-out pairs included)."""
    if rng.random() >= p_two:
        return Scene((_object(rng, rng.randrange(3), rng.randrange(3), True),))
    relation = rng.choice(RELATIONS)
    line = rng.randrange(3)
    a, b = rng.choice(_ORDERED_PAIRS)
    if relation == "left of":  # same row, first object in the left column
        cells = ((line, a), (line, b))
    else:  # same column, first object in the upper row
        cells = ((a, line), (b, line))
    return Scene(tuple(_object(rng, r, c, True) for r, c in cells), relation)


def generate(split: str, n: int, seed: int = 0, p_two: float = P_TWO_OBJECTS) -> list[Scene]:
    """`n` distinct scenes of one split, the same for the same (split, n, seed)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    rng = random.Random(f"{split}:{seed}")
    scenes: list[Scene] = []
    seen: set[Scene] = set()
    while len(scenes) < n:
        scene = sample_scene(rng, p_two)
        if split_of(scene) == split and scene not in seen:
            seen.add(scene)
            scenes.append(scene)
    return scenes


def counterfactual(scene: Scene, rng: random.Random, tries: int = 20) -> Scene | None:
    """A twin of `scene` in the same split that differs in exactly one word.

    One object's color, shape or size changes, or a two-object scene swaps
    its objects. Twins make hard negatives for contrastive training: a batch
    that holds both forces the vision tower to see every attribute.
    """
    for _ in range(tries):
        objects = list(scene.objects)
        k = rng.randrange(len(objects))
        what = rng.choice(("color", "shape", "size", "swap") if len(objects) == 2 else ("color", "shape", "size"))
        if what == "swap":
            a, b = objects
            objects = [
                ShapeObject(b.color, b.shape, b.size, a.row, a.col, a.dx, a.dy),
                ShapeObject(a.color, a.shape, a.size, b.row, b.col, b.dx, b.dy),
            ]
        else:
            values = {"color": list(COLORS), "shape": list(SHAPES), "size": list(SIZES)}[what]
            old = getattr(objects[k], what)
            new = rng.choice([v for v in values if v != old])
            o = objects[k]
            objects[k] = ShapeObject(**{**o.__dict__, what: new})
        twin = Scene(tuple(objects), scene.relation)
        if twin.caption != scene.caption and split_of(twin) == split_of(scene):
            return twin
    return None


def sample_captions(n: int, seed: int = 0, p_two: float = P_TWO_OBJECTS) -> list[str]:
    """Captions from the full grammar, for the language model's text corpus.

    Held-out (color, shape) pairs are included: the language model may read
    about an orange triangle even though no training image shows one.
    """
    rng = random.Random(f"text:{seed}")
    return [sample_scene(rng, p_two).caption for _ in range(n)]


def caption_distribution(p_two: float = P_TWO_OBJECTS) -> dict[str, float]:
    """Every caption of the grammar with its exact probability under `sample_scene`."""
    objects = [f"a {s} {c} {sh}" for c in COLORS for sh in SHAPES for s in SIZES]
    p_obj = 1.0 / len(objects)
    dist: dict[str, float] = {}
    for o in objects:
        for where in POSITION_PHRASES.values():
            dist[f"{o} {where}"] = (1 - p_two) * p_obj / len(POSITION_PHRASES)
    for rel in RELATIONS:
        for o1 in objects:
            for o2 in objects:
                dist[f"{o1} {rel} {o2}"] = p_two * p_obj * p_obj / len(RELATIONS)
    return dist


def caption_entropy(p_two: float = P_TWO_OBJECTS) -> float:
    """Entropy of one caption, in nats: the least a perfect model can pay."""
    return -sum(p * math.log(p) for p in caption_distribution(p_two).values())


def object_box(obj: ShapeObject, image_size: int) -> tuple[float, float, float, float]:
    """Pixel box (x0, y0, x1, y1) of an object: its cell, size and jitter."""
    cell = image_size / 3
    side = cell * SIZE_FRACTION[obj.size]
    room = max(0.0, (cell - side) / 2 - 1)  # keep a pixel between object and cell edge
    cx = (obj.col + 0.5) * cell + obj.dx * room
    cy = (obj.row + 0.5) * cell + obj.dy * room
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def render(scene: Scene, image_size: int = 64) -> Image.Image:
    """Draw a scene with hard edges (no anti-aliasing), so colors are exact."""
    image = Image.new("RGB", (image_size, image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        x0, y0, x1, y1 = object_box(obj, image_size)
        fill = COLORS[obj.color]
        if obj.shape == "circle":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif obj.shape == "square":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    return image


def attributes(scene: Scene) -> dict[str, str]:
    """The facts a caption states, one label per attribute (for probes and metrics)."""
    first = scene.objects[0]
    facts = {"count": str(len(scene.objects)), "color1": first.color, "shape1": first.shape, "size1": first.size}
    if len(scene.objects) == 1:
        facts["position"] = POSITION_PHRASES[(first.row, first.col)]
    else:
        second = scene.objects[1]
        facts.update(relation=scene.relation, color2=second.color, shape2=second.shape, size2=second.size)
    return facts


def write_flickr_layout(scenes: list[Scene], folder: str | Path, image_size: int = 64, prefix: str = "scene") -> Path:
    """Write scenes as a Flickr8k Kaggle-style folder: Images/*.png + captions.txt."""
    folder = Path(folder)
    (folder / "Images").mkdir(parents=True, exist_ok=True)
    with open(folder / "captions.txt", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption"])
        for i, scene in enumerate(scenes):
            name = f"{prefix}_{i:05d}.png"
            scene.render(image_size).save(folder / "Images" / name)
            writer.writerow([name, scene.caption])
    return folder
