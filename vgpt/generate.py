"""Stage 07: captions from images, greedy, beam or sampled, stopping at end-of-text.

    features (B, N, Dv) --projector--> prefix (B, N, Dt) --GPT-2 + LoRA, one token at a time--> text

Two ways, which a test proves equal:

- `greedy`, written out by hand (notebook 07's exercise, with its signature, so a learner's own
  stands in as the model's `decode` stage): run the prefix once, keep every layer's keys and values
  (the KV cache), then feed one new token per step, so each step costs one position instead of the
  whole sequence again.
- `generate_ids`, Hugging Face `generate(inputs_embeds=...)`, which adds beam search, top-k and
  nucleus sampling, temperature, repetition penalty and no-repeat n-grams. It returns only the new
  tokens.

All prefixes in a batch have the same length (N visual tokens), so a batch needs no padding to
start; rows that finish early are padded after their end-of-text, and the text is cut there.
"""

from __future__ import annotations

import warnings

import torch


def cut_at_eos(rows: list[list[int]], eos: int) -> list[list[int]]:
    """Each row up to and including its first end-of-text."""
    return [row[: row.index(eos) + 1] if eos in row else row for row in rows]


@torch.no_grad()
def greedy(
    lm, prefix: torch.Tensor, eos: int, max_new_tokens: int, kv_cache: bool = True, bias=None
) -> list[list[int]]:
    """Greedy decoding: token ids per row, each cut just after its end-of-text (kept).

    `lm` is GPT-2 with LoRA, called with `inputs_embeds`; `prefix` (B, N, D). With `kv_cache=False`
    every step re-runs the whole sequence: the same tokens, far more work. `bias(length)`, where
    given, is the (B, 1, L, L) attention bias of the first `length` slots (a prefix-LM bridge's).
    """
    embed = lm.get_input_embeddings()
    sequence = prefix  # (B, N, D)
    out = lm(inputs_embeds=prefix, attention_mask=bias(prefix.shape[1]) if bias else None, use_cache=kv_cache)
    done = torch.zeros(prefix.shape[0], dtype=torch.bool, device=prefix.device)
    tokens = []
    for _ in range(max_new_tokens):
        next_token = out.logits[:, -1].argmax(-1)  # (B,): the prediction at the last position
        next_token = torch.where(done, eos, next_token)  # finished rows stay finished
        tokens.append(next_token)
        done |= next_token == eos
        if done.all():
            break
        step = embed(next_token)[:, None]  # (B, 1, D): only the new position
        if kv_cache:  # the keys and values of every earlier position come from the cache
            out = lm(inputs_embeds=step, cache=out.cache, use_cache=True)
        else:
            sequence = torch.cat([sequence, step], dim=1)
            out = lm(inputs_embeds=sequence, attention_mask=bias(sequence.shape[1]) if bias else None)
    return cut_at_eos(torch.stack(tokens, dim=1).tolist(), eos)  # (B, steps) -> rows


@torch.no_grad()
def generate_ids(model, prefix: torch.Tensor, max_new_tokens: int | None = None, num_beams: int = 1,
                 do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
                 seed: int | None = None) -> list[list[int]]:  # fmt: skip
    """Hugging Face `generate` on a visual prefix: new token ids per row, cut after end-of-text.

    With a `seed`, sampling draws from a generator of its own: the caller's global random state is
    left as it was.
    """
    if model.spec.attention == "prefix_lm":
        raise ValueError("Hugging Face generate reads the prefix causally; a prefix-LM bridge decodes greedily")
    eos = model.tokenizer.eos_token_id
    options = dict(
        max_new_tokens=max_new_tokens or model.spec.max_caption_tokens,
        num_beams=num_beams,
        do_sample=do_sample,
        repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    if do_sample:
        options.update(temperature=temperature, top_k=top_k or 0, top_p=top_p if top_p is not None else 1.0)
    mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
    devices = [prefix.device] if prefix.device.type == "cuda" else []
    with warnings.catch_warnings(), torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)  # inside the fork: restored on the way out
        # "penalty applies only to new tokens": right here, the prompt is a picture
        warnings.filterwarnings("ignore", message=".*only to newly generated tokens.*")
        out = model.lm.generate(inputs_embeds=prefix, attention_mask=mask, **options)  # (B, new tokens)
    return cut_at_eos(out.tolist(), eos)


def decode_greedy(model, prefix: torch.Tensor, max_new_tokens: int | None = None) -> list[list[int]]:
    """The model's `decode` stage (the package's `greedy` unless a learner's stands in) on a prefix."""
    eos, limit = model.tokenizer.eos_token_id, max_new_tokens or model.spec.max_caption_tokens
    if "decode" in model.stages:
        if model.spec.attention == "prefix_lm":
            raise ValueError("a decode stage of your own reads the prefix causally; a prefix-LM bridge needs vgpt's")
        return model.stages["decode"](model.lm, prefix, eos, limit)
    ones = prefix.new_ones(prefix.shape[0], prefix.shape[1], dtype=torch.long)
    bias = (
        (lambda n: model.attention_bias(ones[:, :n], prefix.shape[1])) if model.spec.attention == "prefix_lm" else None
    )
    return greedy(model.lm, prefix, eos, limit, bias=bias)


def decode(model, rows: list[list[int]]) -> list[str]:
    """Token ids -> caption text, without the end-of-text."""
    return [t.strip() for t in model.tokenizer.batch_decode(rows, skip_special_tokens=True)]


def generate_captions(model, pixel_values: torch.Tensor | None = None, features: torch.Tensor | None = None,
                      batch_size: int = 64, **options) -> tuple[list[str], list[bool]]:  # fmt: skip
    """Captions for a batch of images, and for each whether it ended with end-of-text.

    `options` go to `generate_ids`: num_beams, do_sample, temperature, top_k, top_p,
    repetition_penalty, no_repeat_ngram_size, max_new_tokens, seed. Plain greedy decoding (no
    option but max_new_tokens) runs the model's `decode` stage.
    """
    model.eval()
    eos = model.tokenizer.eos_token_id
    plain = (
        (options.get("num_beams") or 1) == 1
        and not options.get("do_sample")
        and options.get("repetition_penalty", 1.0) == 1.0
        and not options.get("no_repeat_ngram_size")
    )
    n = (features if features is not None else pixel_values).shape[0]
    texts, ended = [], []
    for i in range(0, n, batch_size):
        part = slice(i, i + batch_size)
        with torch.no_grad():
            prefix = model.visual_prefix(
                pixel_values=None if pixel_values is None else pixel_values[part],
                features=None if features is None else features[part],
            )
        rows = (
            decode_greedy(model, prefix, options.get("max_new_tokens"))
            if plain
            else generate_ids(model, prefix, **options)
        )
        texts += decode(model, rows)
        ended += [bool(row) and row[-1] == eos for row in rows]
    return texts, ended
