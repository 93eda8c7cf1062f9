"""The tiny language model: a byte-level BPE tokenizer and a GPT-2 trained on Shapes World captions.

Its yardstick is exact: the grammar's entropy per predicted token is the
least loss any model can reach (`entropy_floor`), and `expected_lm_loss`
scores every caption of the grammar weighted by its probability.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from ..prefix import right_pad
from . import shapes
from .loop import fit

EOT = "<|endoftext|>"


def train_tokenizer(captions: list[str], max_length: int = 64):
    """A byte-level BPE tokenizer (GPT-2's scheme) learned from caption text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=[EOT], show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(captions, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOT, eos_token=EOT, unk_token=EOT, model_max_length=max_length
    )


def caption_rows(tokenizer, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """`<eot> caption <eot>`, right-padded; labels are -100 on padding by position."""
    eot = tokenizer.eos_token_id
    ids, mask = right_pad([[eot] + tokenizer(c).input_ids + [eot] for c in captions], eot)
    return ids, ids.masked_fill(mask == 0, -100)


def entropy_floor(tokenizer) -> float:
    """Least achievable loss per predicted token: H(caption) / E[tokens + EOS]."""
    dist = shapes.caption_distribution()
    lengths = {c: len(tokenizer(c).input_ids) + 1 for c in dist}
    return shapes.caption_entropy() / sum(p * lengths[c] for c, p in dist.items())


@torch.no_grad()
def expected_lm_loss(model, tokenizer) -> float:
    """The model's exact expected loss per token over the whole grammar.

    Every caption is scored and weighted by its probability, so there is no
    sampling noise in the comparison with `entropy_floor`.
    """
    dist = shapes.caption_distribution()
    captions, probs = list(dist), torch.tensor(list(dist.values()), dtype=torch.float64)
    nll, count = torch.zeros(len(captions), dtype=torch.float64), torch.zeros(len(captions))
    model.eval()
    for i in range(0, len(captions), 512):
        ids, labels = caption_rows(tokenizer, captions[i : i + 512])
        logits = model(input_ids=ids, attention_mask=(labels != -100).long()).logits[:, :-1]
        target = labels[:, 1:]
        token_nll = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
        nll[i : i + 512] = token_nll.sum(1).double()
        count[i : i + 512] = (target != -100).sum(1)
    return float((probs * nll).sum() / (probs * count.double()).sum())


def packed_lm_batch(tokenizer, rng: random.Random, rows: int, context: int) -> torch.Tensor:
    """(rows, context) ids: `<eot> caption <eot> caption <eot> ...`, cut at `context`.

    Packing captions back to back, as GPT-2 was pretrained on documents,
    trains every position up to `context`. With one caption per row only
    positions 0-12 would ever be seen, and a visual prefix pushes the caption
    to positions 17-40, whose position embeddings would still be random.
    """
    eot = tokenizer.eos_token_id
    out = []
    for _ in range(rows):
        ids = [eot]
        while len(ids) < context:
            ids += tokenizer(shapes.sample_scene(rng).caption).input_ids + [eot]
        out.append(ids[:context])
    return torch.tensor(out)


def train_language_model(tokenizer, recipe, log=print):
    """A small GPT-2 trained on packed Shapes World captions alone: it has never seen an image."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(recipe.seed)
    eot = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=recipe.lm_context, n_embd=recipe.width,
                        n_layer=recipe.lm_layers, n_head=4, n_inner=4 * recipe.width,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=eot, eos_token_id=eot, pad_token_id=eot)  # fmt: skip
    model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"
    rng = random.Random(f"lm:{recipe.seed}")

    def loss_at(step):
        ids = packed_lm_batch(tokenizer, rng, recipe.lm_batch, recipe.lm_context)
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss

    return fit(model, loss_at, recipe.lm_steps, recipe.lm_lr, weight_decay=0.01, warmup=50, desc="tiny GPT-2")
