"""Stage 07: captions from images, greedy, beam or sampled, stopping at end-of-text.

    features (B, N, Dv) --projector--> prefix (B, N, Dt) --GPT-2 + LoRA, one token at a time--> text

Two ways, which a test proves equal:

- `greedy`, written out by hand: run the prefix once, keep every
  layer's keys and values (the KV cache), then feed one new token per step,
  so each step costs one position instead of the whole sequence again.
- `generate_captions`, Hugging Face `generate(inputs_embeds=...)`, which adds
  beam search, top-k / nucleus sampling, temperature, repetition penalty and
  no-repeat n-grams on the same batch API. It returns only the new tokens.

All prefixes in a batch have the same length (N visual tokens), so a batch
needs no padding to start; rows that finish early are padded after their
end-of-text, and the text is cut there.
"""

from __future__ import annotations

import warnings

import torch


def _cut_at_eos(rows: list[list[int]], eos: int) -> list[list[int]]:
    return [row[: row.index(eos) + 1] if eos in row else row for row in rows]


@torch.no_grad()
def greedy(model, prefix: torch.Tensor, max_new_tokens: int, kv_cache: bool = True) -> list[list[int]]:
    """The hand-written greedy loop: token ids per row, each ending at end-of-text (kept).

    With `kv_cache=False` every step re-runs the whole sequence: the same
    tokens, far more work.
    """
    lm, eos = model.lm, model.tokenizer.eos_token_id
    embed = lm.get_input_embeddings()
    sequence = prefix  # (B, N, Dt)
    mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
    out = lm(inputs_embeds=sequence, attention_mask=mask, use_cache=kv_cache)
    tokens, done = [], torch.zeros(prefix.shape[0], dtype=torch.bool, device=prefix.device)
    for _ in range(max_new_tokens):
        next_token = out.logits[:, -1].argmax(-1)  # (B,)
        next_token = torch.where(done, torch.full_like(next_token, eos), next_token)
        tokens.append(next_token)
        done |= next_token == eos
        if done.all():
            break
        step = embed(next_token)[:, None]  # (B, 1, Dt)
        mask = torch.cat([mask, mask[:, :1]], dim=1)  # (B, length so far)
        if kv_cache:  # only the new position runs; keys and values of the rest come from the cache
            out = lm(inputs_embeds=step, attention_mask=mask, cache=out.cache, use_cache=True)
        else:
            sequence = torch.cat([sequence, step], dim=1)
            out = lm(inputs_embeds=sequence, attention_mask=mask, use_cache=False)
    ids = torch.stack(tokens, dim=1).tolist()  # (B, steps)
    return _cut_at_eos(ids, eos)


@torch.no_grad()
def generate_ids(
    model,
    prefix: torch.Tensor,
    max_new_tokens: int | None = None,
    num_beams: int = 1,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    seed: int | None = None,
) -> list[list[int]]:
    """Hugging Face `generate` on a visual prefix: new token ids per row, cut after end-of-text.

    With a `seed`, sampling draws from a generator of its own: the caller's
    global random state is left as it was.
    """
    eos = model.tokenizer.eos_token_id
    max_new_tokens = max_new_tokens or model.config.model.max_caption_tokens
    options = dict(
        max_new_tokens=max_new_tokens,
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
    return _cut_at_eos(out.tolist(), eos)


def decode(model, rows: list[list[int]]) -> list[str]:
    """Token ids -> caption text, without the end-of-text."""
    return [t.strip() for t in model.tokenizer.batch_decode(rows, skip_special_tokens=True)]


def generate_captions(
    model,
    pixel_values: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
    batch_size: int = 64,
    **options,
) -> tuple[list[str], list[bool]]:
    """Captions for a batch of images, and for each whether it ended with end-of-text.

    `options` go to `generate_ids`: num_beams, do_sample, temperature, top_k,
    top_p, repetition_penalty, no_repeat_ngram_size, max_new_tokens, seed.
    """
    model.eval()
    eos = model.tokenizer.eos_token_id
    n = (features if features is not None else pixel_values).shape[0]
    texts, ended = [], []
    for i in range(0, n, batch_size):
        part = slice(i, i + batch_size)
        with torch.no_grad():
            prefix = model.visual_prefix(
                pixel_values=None if pixel_values is None else pixel_values[part],
                features=None if features is None else features[part],
            )
        rows = generate_ids(model, prefix, **options)
        texts += decode(model, rows)
        ended += [bool(row) and row[-1] == eos for row in rows]
    return texts, ended
