"""Notebook 07's checkers accept the worked solutions and name the usual wrong answers."""

import pytest
import torch
from notebook_exercises import exercise_solution

import vgpt.generate
from vgpt.course.exercises import check_greedy_with_kv_cache, check_top_k_filter

STEM = "07_generation"


def test_greedy_checker_accepts_the_worked_solution(capsys):
    assert check_greedy_with_kv_cache(exercise_solution(STEM, "greedy_with_kv_cache")) is True
    assert "Correct!" in capsys.readouterr().out


def greedy_with(cache="new token", position=-1, cut=True, keep_eos=True):
    """A greedy loop with one deliberate slip."""

    @torch.no_grad()
    def loop(lm, prefix, eos, max_new_tokens):
        embed = lm.get_input_embeddings()
        sequence = prefix
        out = lm(inputs_embeds=prefix, use_cache=cache != "none")
        done = torch.zeros(prefix.shape[0], dtype=torch.bool)
        tokens = []
        for _ in range(max_new_tokens):
            token = out.logits[:, position].argmax(-1)
            token = torch.where(done, eos, token)
            tokens.append(token)
            done |= token == eos
            if done.all() and cut:
                break
            sequence = torch.cat([sequence, embed(token)[:, None]], dim=1)
            if cache == "none":
                out = lm(inputs_embeds=sequence)
            elif cache == "whole sequence":
                out = lm(inputs_embeds=sequence, cache=out.cache, use_cache=True)
            else:
                out = lm(inputs_embeds=embed(token)[:, None], cache=out.cache, use_cache=True)
        rows = torch.stack(tokens, dim=1).tolist()
        if cut:
            rows = [row[: row.index(eos) + 1] if eos in row else row for row in rows]
        if not keep_eos:
            rows = [row[:-1] if row and row[-1] == eos else row for row in rows]
        return rows

    return loop


def test_greedy_checker_accepts_a_right_variant(capsys):
    assert check_greedy_with_kv_cache(greedy_with()) is True


@pytest.mark.parametrize(
    "wrong, named",
    [
        (greedy_with(cache="none"), "every step ran the whole sequence again"),
        (greedy_with(cache="whole sequence"), "a step passed the cache and more than the new token"),
        (greedy_with(position=0), "the first position's prediction (logits[:, 0])"),
        (greedy_with(cut=False), "goes on after its end-of-text"),
        (greedy_with(keep_eos=False), "should end with end-of-text"),
        (
            lambda lm, prefix, eos, n: lm.generate(inputs_embeds=prefix, max_new_tokens=n).tolist(),
            "lm.generate writes the loop",
        ),
        (lambda lm, prefix, eos, n: torch.tensor(greedy_with()(lm, prefix, eos, n)[2:]), "not a tensor"),
    ],
    ids=["no-cache", "cache-and-whole-sequence", "first-position", "no-cut", "eos-dropped", "generate", "tensor"],
)
def test_greedy_checker_names_the_mistake(wrong, named, capsys):
    assert check_greedy_with_kv_cache(wrong) is False
    assert named in capsys.readouterr().out


def test_greedy_checker_refuses_the_package_loop(capsys):
    assert check_greedy_with_kv_cache(vgpt.generate.greedy) is False
    assert "vgpt's own" in capsys.readouterr().out


def test_top_k_checker_accepts_the_worked_solution(capsys):
    assert check_top_k_filter(exercise_solution(STEM, "top_k_filter")) is True
    assert "Correct!" in capsys.readouterr().out


def kth(logits, k):
    return logits.topk(k, dim=-1).values[..., -1:]


@pytest.mark.parametrize(
    "wrong, named",
    [
        (lambda logits, k: logits.topk(k, dim=-1).values, "returned values instead of a mask/logits"),
        (lambda logits, k: logits.topk(k, dim=-1).indices, "returned the indices"),
        (lambda logits, k: logits >= kth(logits, k), "returned the mask of kept entries"),
        (lambda logits, k: logits.masked_fill(logits < kth(logits, k), 0.0), "masked with 0 instead of -inf"),
        (lambda logits, k: logits.masked_fill(logits < kth(logits, k), -1e9), "masked with a large negative number"),
        (lambda logits, k: logits.masked_fill(logits <= kth(logits, k), float("-inf")), "kept 1 per row instead of 2"),
        (
            lambda logits, k: logits.masked_fill(logits < kth(logits, k), float("-inf")).softmax(-1),
            "returned probabilities",
        ),
        (lambda logits, k: logits.masked_fill(logits < logits.topk(k, dim=0).values[-1:], float("-inf")), "dim 0"),
    ],
    ids=["values", "indices", "mask", "zero", "large-negative", "k-minus-1", "probabilities", "columns"],
)
def test_top_k_checker_names_the_mistake(wrong, named, capsys):
    assert check_top_k_filter(wrong) is False
    assert named in capsys.readouterr().out
