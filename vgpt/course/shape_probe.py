"""Notebook 09's look inside the frozen vision tower: can the shape of an object whose colour-shape
pair no training image shows be read *linearly* out of the tower's hidden states?

    one-object scenes --frozen tower--> every hidden state (B, layers + 1, N, Dv)
      --flatten one layer--> (B, N * Dv) --logistic regression fitted on seen pairs-->
      shape accuracy on seen pairs (test split) and on held-out pairs (compositional split)

A probe fitted on every training colour learns what the bridge learns from the same data: green is
never a circle. A probe fitted only on colours shown with every shape cannot lean on colour. If the
second finds the circle in a green one where the first does not, the shape is in the features and the
failure is a shortcut taken from the data. Results are cached like notebook 09's runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from ..world import shapes
from ..world.probes import fit_linear_probe
from ..world.vision import pixel_tensor
from .experiments import CACHE_VERSION, NEUTRAL_COLORS, SHIPPED_RESULTS, cached_result, store_result


@torch.no_grad()
def hidden_states(tower, scenes: list, image_size: int, batch: int = 256) -> torch.Tensor:
    """Every hidden state of the frozen tower for each scene: (B, layers + 1, N, Dv); index 0 is the
    patch embeddings (before any attention), the last is what the baseline's prefix is made of."""
    out = []
    for i in range(0, len(scenes), batch):
        pixels = pixel_tensor([s.render(image_size) for s in scenes[i : i + batch]])
        out.append(torch.stack(tower(pixel_values=pixels, output_hidden_states=True).hidden_states, dim=1))
    return torch.cat(out)


def shape_probe(
    parts,
    n_train: int = 2000,
    n_test: int = 300,
    seed: int = 3,
    folder: str | Path | None = None,
    log=print,
    shipped: Path | None = SHIPPED_RESULTS,
) -> dict:
    """Can the shape of one object be read *linearly* out of each hidden state of the frozen tower,
    when the probe learned only from seen colour-shape pairs?

    Two probes per hidden state, both fitted on one-object training scenes: "all" on every colour (so,
    as for the bridge, green is never a circle there), "neutral" on the colours that training shows
    with every shape (`NEUTRAL_COLORS`: colour says nothing about shape). Each is scored on one-object
    test scenes (seen pairs) and compositional scenes (every object a held-out pair). Returns
    {"layers": [0..L], "all": {"test": [...], "compositional": [...], "pairs": {layer: {"green circle":
    {"circle": n, "square": n, "triangle": n}, ...}}}, "neutral": {the same}}.
    """
    settings = {"probe": "shape", "n_train": n_train, "n_test": n_test, "seed": seed, "version": CACHE_VERSION}
    key = "probe-" + hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    path, result = cached_result(Path(folder) if folder is not None else None, key, shipped)
    if result is not None:
        return result
    start, size = time.perf_counter(), parts.profile.model.image_size
    sets = {split: shapes.generate(split, n, seed=seed, p_two=0.0)
            for split, n in (("train", n_train), ("test", n_test), ("compositional", n_test))}  # fmt: skip
    states = {split: hidden_states(parts.vision, scenes, size) for split, scenes in sets.items()}
    label = {split: torch.tensor([shapes.SHAPES.index(s.objects[0].shape) for s in scenes])
             for split, scenes in sets.items()}  # fmt: skip
    rows = {
        "all": torch.arange(n_train),
        "neutral": torch.tensor([i for i, s in enumerate(sets["train"]) if s.objects[0].color in NEUTRAL_COLORS]),
    }
    result = {"settings": settings, "layers": list(range(states["train"].shape[1]))}
    for probe, train_rows in rows.items():
        scores = result[probe] = {"test": [], "compositional": [], "pairs": {}, "n_train": len(train_rows)}
        for layer in result["layers"]:
            torch.manual_seed(seed)
            x = states["train"][train_rows, layer].flatten(1)
            predict = fit_linear_probe(x, label["train"][train_rows], len(shapes.SHAPES))
            for split in ("test", "compositional"):
                said = predict(states[split][:, layer].flatten(1))
                scores[split].append(float((said == label[split]).float().mean()))
            scores["pairs"][str(layer)] = _tally(sets["compositional"], said.tolist())
    result["seconds"] = round(time.perf_counter() - start, 1)
    (log or (lambda _: None))(f"shape probes on {len(result['layers'])} hidden states in {result['seconds']:.0f} s")
    store_result(path, result)
    return result


def _tally(scenes: list, guesses: list[int]) -> dict[str, dict[str, int]]:
    """Per held-out pair ("green circle"), how often the probe said each shape."""
    tally: dict[str, dict[str, int]] = {}
    for scene, guess in zip(scenes, guesses, strict=True):
        obj = scene.objects[0]
        row = tally.setdefault(f"{obj.color} {obj.shape}", dict.fromkeys(shapes.SHAPES, 0))
        row[shapes.SHAPES[guess]] += 1
    return tally
