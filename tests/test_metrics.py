"""Caption metrics against hand-worked examples."""

import math

import pytest

from vgpt import metrics
from vgpt.world import scores, shapes


def test_bleu_hand_worked():
    hyp, refs = ["the cat sat on the mat"], [["the cat is on the mat"]]
    b1, b2, b3, b4 = metrics.bleu(hyp, refs)
    assert b1 == pytest.approx(5 / 6)  # the x2, cat, on, mat of 6
    assert b2 == pytest.approx(math.sqrt(5 / 6 * 3 / 5))  # the cat, on the, the mat of 5
    assert b3 == pytest.approx((5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3))  # on the mat of 4
    assert b4 < 1e-3  # no 4-gram matches


def test_bleu_clips_counts_and_penalizes_brevity():
    b1 = metrics.bleu(["the the the"], [["the cat"]], max_n=1)[0]
    # one 'the' counts (clipped), of 3 guesses; hypothesis is longer, so no penalty
    assert b1 == pytest.approx(1 / 3)
    short = metrics.bleu(["the cat"], [["the cat sat on the mat"]], max_n=1)[0]
    assert short == pytest.approx(math.exp(1 - 6 / 2))  # precision 1 times the brevity penalty
    # closest reference length is used: with a 2-word reference present, no penalty
    assert metrics.bleu(["the cat"], [["the cat sat on the mat", "a cat"]], max_n=1)[0] == pytest.approx(1.0)


def test_rouge_l_hand_worked():
    assert metrics.rouge_l(["the cat sat on the mat"], [["the cat is on the mat"]]) == pytest.approx(5 / 6)
    # precision 1 (2 of 2), recall 2/6: F with beta 1.2
    p, r = 1.0, 2 / 6
    expected = (1 + 1.44) * p * r / (r + 1.44 * p)
    assert metrics.rouge_l(["the cat"], [["the cat sat on the mat"]]) == pytest.approx(expected)
    assert metrics.rouge_l(["a dog"], [["the cat"]]) == 0.0


def test_cider_d_hand_worked():
    """Two images, each captioned exactly. 'a' is in every image's references, so its idf
    is 0; every other n-gram is in one of two images (idf log 2). Unigram, bigram and
    trigram similarities are 1, there is no 4-gram (0): mean 0.75, times 10."""
    hyps = ["a red circle", "a blue square"]
    refs = [["a red circle"], ["a blue square"]]
    assert metrics.cider_d(hyps, refs) == pytest.approx(7.5)
    swapped = metrics.cider_d(hyps[::-1], refs)
    assert swapped == pytest.approx(0.0)
    # a longer hypothesis with the same content is penalized by length (sigma 6)
    longer = metrics.cider_d(["a red circle a red circle", "a blue square"], refs)
    assert 0 < longer < 7.5


def test_cider_d_clips_repeated_ngrams():
    refs = [["a red circle"], ["a blue square"]]
    repeated = metrics.cider_d(["red red red red", "a blue square"], refs)
    once = metrics.cider_d(["red", "a blue square"], refs)
    assert repeated < 7.5 and once < 7.5
    assert repeated <= once + 1e-9  # saying 'red' four times earns no more than once


def test_caption_scores_keys_and_perfect_score():
    refs = [["a small red circle at the top"], ["a large blue square on the left"]]
    s = metrics.caption_scores([r[0] for r in refs], refs)
    assert set(s) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"}
    assert s["BLEU-4"] == pytest.approx(1.0) and s["ROUGE-L"] == pytest.approx(1.0)


def test_parse_caption_inverts_attributes():
    for scene in shapes.generate("train", 200, seed=0):
        assert scores.parse_caption(scene.caption) == shapes.attributes(scene)
    assert scores.parse_caption("a small red circle left of") is None
    assert scores.parse_caption("a small pink circle at the top") is None
    assert scores.parse_caption("a small red circle in the sky") is None


def test_shapes_scores():
    scenes = shapes.generate("test", 2, seed=0, p_two=1.0)
    first = scenes[0]
    a, b = first.objects
    wrong_color = f"a {a.size} {next(c for c in shapes.COLORS if c != a.color)} {a.shape} {first.relation} {b.phrase}"
    s = scores.shapes_scores([wrong_color, "nonsense"], scenes)
    assert s["exact_match"] == 0.0
    assert s["color_accuracy"] == pytest.approx(1 / 4)  # color2 right in the first, nothing in the second
    assert s["shape_accuracy"] == pytest.approx(2 / 4)
    assert s["relation_accuracy"] == pytest.approx(1 / 2)
    assert scores.shapes_scores([sc.caption for sc in scenes], scenes)["exact_match"] == 1.0


def test_matches_the_coco_caption_scorers():
    """Golden values from pycocoevalcap's Bleu(4), Rouge and Cider (CIDEr-D) scorers, run
    once on this exact corpus: 200 test scenes, 1-4 references each, hypotheses
    with one word swapped and some cut short."""
    import random

    rng = random.Random(1)
    hyps, refs = [], []
    for i, scene in enumerate(shapes.generate("test", 200, seed=0)):
        others = shapes.generate("val", 3, seed=i)
        refs.append([scene.caption] + [o.caption for o in others[: rng.randint(0, 3)]])
        words = scene.caption.split()
        k = rng.randrange(len(words))
        words[k] = rng.choice(["red", "big", "the"])
        if rng.random() < 0.3:
            words = words[:-2]
        hyps.append(" ".join(words))
    b = metrics.bleu(hyps, refs)
    assert b == pytest.approx([0.86454, 0.795728, 0.732415, 0.667708], abs=1e-6)
    assert metrics.rouge_l(hyps, refs) == pytest.approx(0.840077, abs=1e-6)
    assert metrics.cider_d(hyps, refs) == pytest.approx(2.507514, abs=1e-6)
