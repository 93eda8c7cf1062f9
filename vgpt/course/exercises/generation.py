"""The checkers of notebook 07's exercises: the greedy loop with a KV cache, and top-k filtering."""

from __future__ import annotations

import torch

from .calls import language_model
from .grading import Case, Checker, Wrong, same
from .wire import kind

# ------------------------------------------------------------- greedy with a KV cache


def _tiny_language_model():
    """A 2-layer GPT-2, 32 wide, 23 tokens, random but fixed weights (built without touching the global
    generator). Its weights are drawn wider than GPT-2's usual 0.02 so that the most likely token
    stands clear of the second: greedy has one right answer even with rounding."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lm = language_model(CONFIG)  # initialised here, from the seed; its weights go to the call as data
        prefix = torch.randn(3, 5, 32)  # (B, N, D): 3 rows, 5 prefix vectors each
    return lm, prefix


@torch.no_grad()
def _greedy_without_cache(lm, prefix, eos, max_new_tokens) -> list[list[int]]:
    """The definition: every step runs the whole sequence again and takes the last position's argmax."""
    embed = lm.get_input_embeddings()
    sequence, rows, done = prefix, [[] for _ in range(prefix.shape[0])], [False] * prefix.shape[0]
    for _ in range(max_new_tokens):
        next_token = lm(inputs_embeds=sequence, use_cache=False).logits[:, -1].argmax(-1)  # (B,)
        for row, token, finished in zip(rows, next_token.tolist(), done, strict=False):
            if not finished:
                row.append(token)
        done = [d or t == eos for d, t in zip(done, next_token.tolist(), strict=False)]
        if all(done):
            break
        sequence = torch.cat([sequence, embed(next_token)[:, None]], dim=1)
    return rows


CONFIG = dict(n_layer=2, n_head=2, n_embd=32, vocab_size=23, n_positions=64, initializer_range=0.3,
              resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)  # fmt: skip


def _cache_and_more(calls) -> bool:
    return any(length > 1 and cached for length, cached in calls[1:])


def _greedy_case(name: str, lm, prefix, state: dict, eos_from_row: int | None, max_new_tokens: int) -> Case:
    never = _greedy_without_cache(lm, prefix, -1, max_new_tokens)
    if eos_from_row is not None:  # end-of-text: the token that row picks at its third step (or last)
        eos = never[eos_from_row][min(2, max_new_tokens - 1)]
    else:  # a token no row picks: every row runs to max_new_tokens
        eos = next(t for t in range(23) if all(t not in row for row in never))
    expected = _greedy_without_cache(lm, prefix, eos, max_new_tokens)
    with torch.no_grad():
        wrong_position = lm(inputs_embeds=prefix).logits[:, 0].argmax(-1).tolist()

    def judge(facts):
        calls = [tuple(c) for c in facts["calls"]]
        shown = [c[0] for c in calls]
        if facts["generate"]:
            raise Wrong("lm.generate writes the loop for you: the exercise is to write it, one forward call per token")
        if "raised" in facts:
            if _cache_and_more(calls):  # often an index error
                raise Wrong(
                    f"a step passed the cache and more than the new token (positions per call: {shown}), then "
                    f"raised {facts['raised'].type_name}: the cache already holds the earlier positions; feed only "
                    f"the new token, shape (B, 1, D)"
                )
            raise facts["raised"]
        got = facts["rows"]
        if torch.is_tensor(got):
            raise Wrong("return a list of lists of token ids (each row cut after its end-of-text), not a tensor")
        if not isinstance(got, list) or len(got) != len(expected) or not all(isinstance(r, list) for r in got):
            raise Wrong(f"return one list of token ids per row: {len(expected)} lists, got {got!r}")
        later = [length for length, _ in calls[1:]]
        if _cache_and_more(calls):
            raise Wrong(
                f"a step passed the cache and more than the new token (positions per call: {shown}): the "
                f"cache already holds the earlier positions; feed only the new token, shape (B, 1, D)"
            )
        if later and all(length > 1 for length in later):
            raise Wrong(
                f"every step ran the whole sequence again (positions per call: {shown}): "
                f"keep the first call's out.cache and feed only the new token with cache=out.cache"
            )
        if got == expected:
            return
        if any(row[:1] == [w] != e[:1] for row, w, e in zip(got, wrong_position, expected, strict=False)):
            raise Wrong("the first token came from the first position's prediction (logits[:, 0]); the next "
                        "token is predicted at the last position, logits[:, -1]")  # fmt: skip
        for r, (row, right) in enumerate(zip(got, expected, strict=False)):
            if row == right:
                continue
            if right[-1] == eos and row[: len(right) - 1] == right[:-1] and row[len(right) - 1 : len(right)] != [eos]:
                raise Wrong(f"row {r} should end with end-of-text (id {eos}), kept, and stop there: got {row}, "
                            f"expected {right}")  # fmt: skip
            if row[: len(right)] == right and len(row) > len(right):
                raise Wrong(f"row {r} goes on after its end-of-text (id {eos}): got {row}, expected {right}; "
                            f"cut each row just after its end-of-text")  # fmt: skip
            if len(row) > max_new_tokens:
                raise Wrong(f"row {r} has {len(row)} tokens; at most max_new_tokens = {max_new_tokens}")
            raise Wrong(f"row {r}: got {row}, expected {right} (greedy: the argmax of each step's last "
                        f"position, rows that ended stay ended)")  # fmt: skip

    return Case(name, (CONFIG, state, prefix, eos, max_new_tokens), judge, call="greedy")


def _greedy_cases() -> list[Case]:
    lm, prefix = _tiny_language_model()
    state = {k: v.detach().clone() for k, v in lm.state_dict().items()}
    return [
        _greedy_case("3 rows, row 0 ends at its third token", lm, prefix, state, 0, 8),
        _greedy_case("3 rows, row 2 ends at its third token", lm, prefix, state, 2, 8),
        _greedy_case("no row ever picks end-of-text", lm, prefix, state, None, 6),
        _greedy_case("max_new_tokens = 1", lm, prefix, state, 1, 1),
    ]


check_greedy_with_kv_cache = Checker(
    "greedy_with_kv_cache",
    _greedy_cases,
    """`fn(lm, prefix (B, N, D), eos, max_new_tokens) -> list[list[int]]`: greedy decoding that runs
    the prefix once, then one new position per step with the KV cache; each row stops after its
    end-of-text (kept) or after max_new_tokens tokens.""",
)


# ------------------------------------------------------------- top-k filtering


def _top_k_mistake(got, logits: torch.Tensor, k: int) -> str | None:
    """The usual wrong answers to top-k filtering, recognised from what came back."""
    values, indices = logits.topk(k, dim=-1)
    if not torch.is_tensor(got):
        return f"expected a tensor of shape {tuple(logits.shape)}, got {kind(got)}"
    if got.shape == values.shape and got.shape != logits.shape:
        if got.dtype == torch.long:
            return (f"returned the indices of the {k} largest logits, shape {tuple(got.shape)}: return the whole "
                    f"(B, V) logits with every other entry set to -inf")  # fmt: skip
        return (f"returned values instead of a mask/logits: the {k} largest values, shape {tuple(got.shape)} "
                f"(what topk gives), where the whole (B, V) = {tuple(logits.shape)} row of logits is wanted, "
                f"with every other entry set to -inf")  # fmt: skip
    if got.shape != logits.shape:
        return f"expected shape {tuple(logits.shape)} (B, V), got {tuple(got.shape)}"
    if got.dtype == torch.bool:
        return ("returned the mask of kept entries instead of the logits: apply it, "
                "logits.masked_fill(~keep, float('-inf'))")  # fmt: skip
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, indices, True)
    if torch.allclose(got.float().exp().sum(-1), torch.ones(len(got)), atol=1e-4) or torch.allclose(
        got.float().sum(-1), torch.ones(len(got)), atol=1e-4
    ):
        return "returned probabilities (softmax applied) instead of the filtered logits: return the logits"
    outside = got[~keep]
    if outside.numel() and torch.all(outside == 0):
        return ("masked with 0 instead of -inf: softmax gives a logit of 0 the weight e^0 = 1, so those tokens "
                "can still be drawn; set them to float('-inf')")  # fmt: skip
    if outside.numel() and torch.all(torch.isfinite(outside)) and torch.all(outside < -1e3):
        return "masked with a large negative number; set the others to exactly float('-inf')"
    column = torch.zeros_like(keep).scatter(0, logits.topk(min(k, logits.shape[0]), dim=0).indices, True)
    if torch.equal(~torch.isinf(got), column) and not torch.equal(column, keep):
        return f"kept the {k} largest of each column (dim 0); top-k works along each row, dim -1 (the vocabulary)"
    kept = (~torch.isinf(got)).sum(-1)
    if torch.all(kept == k - 1):
        return (f"kept {k - 1} per row instead of {k}: keep logits >= the k-th largest (logits > it drops "
                f"the k-th itself)")  # fmt: skip
    if torch.all(kept == k + 1):
        return f"kept {k + 1} per row instead of {k}: off by one in k"
    if not torch.equal(~torch.isinf(got), keep):
        return f"with k={k} each row must keep exactly its {k} largest logits; kept per row: {kept.tolist()}"
    return None


def _top_k_case(name: str, k: int, rows: int, vocab: int, seed: int) -> Case:
    logits = torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed))

    def judge(got):
        mistake = _top_k_mistake(got, logits, k)
        if mistake:
            raise Wrong(f"{mistake}\nlogits:\n{logits}\ngot:\n{got}" if logits.numel() <= 40 else mistake)
        keep = ~torch.isinf(got)
        same(got[keep], logits[keep], "the kept logits (unchanged, in their places)")

    return Case(name, (logits, k), judge)


check_top_k_filter = Checker(
    "top_k_filter",
    lambda: [
        _top_k_case("k = 2 of 7", 2, 3, 7, 0),
        _top_k_case("k = 1", 1, 3, 11, 1),
        _top_k_case("k = 4 of 50", 4, 5, 50, 2),
        _top_k_case("k = V", 11, 3, 11, 3),
    ],  # fmt: skip
    """`fn(logits (B, V), k) -> (B, V)`: the k largest logits of each row kept as they are,
    every other one set to -inf (so softmax gives it probability 0).""",
)

EXERCISES = (check_greedy_with_kv_cache, check_top_k_filter)
