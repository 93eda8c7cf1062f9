"""Shapes World's own yardsticks: exact match, and accuracy per attribute read back from a caption."""

from __future__ import annotations

import re
from collections import Counter

from . import shapes

_OBJECT = r"a (small|large) (\w+) (circle|square|triangle)"
_ONE = re.compile(f"^{_OBJECT} (.+)$")
_TWO = re.compile(f"^{_OBJECT} (left of|above) {_OBJECT}$")


def parse_caption(text: str) -> dict[str, str] | None:
    """A Shapes World caption back into its facts (as `shapes.attributes` gives them), or None."""
    text = text.strip()
    if m := _TWO.match(text):
        size1, color1, shape1, relation, size2, color2, shape2 = m.groups()
        facts = dict(
            count="2",
            color1=color1,
            shape1=shape1,
            size1=size1,
            relation=relation,
            color2=color2,
            shape2=shape2,
            size2=size2,
        )
    elif (m := _ONE.match(text)) and m.group(4) in shapes.POSITION_PHRASES.values():
        size1, color1, shape1, position = m.groups()
        facts = dict(count="1", color1=color1, shape1=shape1, size1=size1, position=position)
    else:
        return None
    if facts["color1"] not in shapes.COLORS or facts.get("color2", "red") not in shapes.COLORS:
        return None
    return facts


def shapes_scores(predictions: list[str], scenes: list) -> dict[str, float]:
    """Exact match, and accuracy per attribute (color, shape, size, position, relation, count)."""
    hits = Counter()
    totals = Counter()
    exact = 0
    for text, scene in zip(predictions, scenes):
        exact += text.strip() == scene.caption
        truth, guess = shapes.attributes(scene), parse_caption(text) or {}
        for key, value in truth.items():
            group = key.rstrip("12")  # color1, color2 -> color
            totals[group] += 1
            hits[group] += guess.get(key) == value
    result = {"exact_match": exact / max(len(predictions), 1)}
    result.update({f"{k}_accuracy": hits[k] / totals[k] for k in sorted(totals)})
    return result
