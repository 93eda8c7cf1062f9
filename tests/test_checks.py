"""Every exercise checker accepts its solution and rejects the usual wrong answers and the bare stub."""

import importlib.util
from collections import Counter
from pathlib import Path

import pytest
import torch

from vgpt.course import exercises

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def solution(notebook: str, name: str):
    spec = importlib.util.spec_from_file_location(f"solution_{notebook[:2]}", SOLUTIONS / f"{notebook}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def stub(*args, **kwargs):
    raise NotImplementedError


def _grams(words, n):
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


WRONG = {
    "count_parameters": [lambda m, trainable_only=False: sum(t.numel() for t in m.state_dict().values()),
                         lambda m, trainable_only=False: sum(p.numel() for p in m.parameters())],
    "patchify": [lambda x, p: x.reshape(x.shape[0], -1, x.shape[1] * p * p),
                 lambda x, p: x.unfold(2, p, p).unfold(3, p, p).permute(0, 3, 2, 1, 4, 5).reshape(
                     x.shape[0], -1, x.shape[1] * p * p)],
    "rms_scale": [lambda prefix, table: (table.std() / prefix.std()).item()],
    "caption_labels": [lambda ids, mask, n: torch.cat([torch.full((ids.shape[0], n), -100), ids.masked_fill(
        ids == 0, -100)], 1), lambda ids, mask, n: ids.masked_fill(mask == 0, -100)],
    "position_ids": [lambda mask: torch.arange(mask.shape[1]).expand_as(mask)],
    "lora_forward": [lambda x, w, b, a, bb, alpha: x @ w + b + x @ a.T @ bb.T,
                     lambda x, w, b, a, bb, alpha: x @ w + b + (x @ a.T @ bb.T) * alpha],
    "clipped_precision": [lambda c, refs, n: sum(min(v, max(_grams(r, n)[g] for r in refs)) for g, v in
                                                 _grams(c, n).items()) / max(1, len(c)),
                          lambda c, refs, n: sum(1 for g in _grams(c, n).elements() if any(
                              g in _grams(r, n) for r in refs)) / max(1, sum(_grams(c, n).values()))],
}
NOTEBOOK = {"count_parameters": "00_two_alien_models", "patchify": "01_feature_extraction",
            "rms_scale": "02_projector", "caption_labels": "03_prefix_concatenation",
            "position_ids": "04_joint_attention_mask", "lora_forward": "05_lora_injection",
            "clipped_precision": "08_evaluation_and_demo"}


@pytest.mark.parametrize("name", list(NOTEBOOK))
def test_checker_accepts_the_solution_and_rejects_wrong_answers(name, capsys):
    check = getattr(exercises, f"check_{name}")
    assert check(solution(NOTEBOOK[name], name)) is True
    assert "Correct!" in capsys.readouterr().out
    for wrong in WRONG[name]:
        assert check(wrong) is False, f"{name}: a wrong answer passed"
        assert "not yet" in capsys.readouterr().out
    assert check(stub) is False
    assert "not written yet" in capsys.readouterr().out


def test_every_notebook_has_a_solution_and_its_checker_exists():
    notebooks = sorted(p.stem for p in (SOLUTIONS.parent).glob("[0-9][0-9]_*.ipynb"))
    assert sorted(NOTEBOOK.values()) == sorted(p.stem for p in SOLUTIONS.glob("[0-9][0-9]_*.py"))
    if notebooks:  # the notebooks and their solutions are named alike
        assert set(NOTEBOOK.values()) <= set(notebooks)
