"""Every setting of a run, written out once, and the places and errors every module shares.

    Profile                  a named recipe: `seed`, `seed-plus`, `tiny`
      model: ModelSpec       which frozen models, which features, the projector and LoRA shapes
      train: TrainConfig     how the bridge trains (stage 06)

`seed` is the reference recipe (CLIP ViT-L/14 and GPT-2 from the Hugging Face Hub, Flickr8k).
`tiny` is the same code path on small models this project pretrained on Shapes World and ships in
`data/tiny/`, for CPU-only and offline machines. The only difference between them is where
`from_pretrained` reads from. A saved bridge records its `ModelSpec`, with the fingerprint of the
frozen models it was trained on filled in (`ModelSpec.for_models`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_DIR = Path(os.environ.get("VGPT_TINY_DIR", REPO_ROOT / "data" / "tiny"))
REPOSITORY = "https://github.com/vgpt-course/vgpt"  # pyproject.toml's [project.urls] Repository


class UserError(Exception):
    """Bad input, a missing file, an unreachable Hub: what the user can fix. The command line prints
    it as one line and exits with 2; any other exception is a bug and keeps its traceback."""


class _Changeable:
    def with_(self, **changes):
        """A copy with some values changed, e.g. `SEED.train.with_(epochs=1)`."""
        return replace(self, **changes)


@dataclass(frozen=True)
class ModelSpec(_Changeable):
    """The vision-language model: the two frozen models and the shape of the bridge between them."""

    vision_model: str  # Hub id or folder: a CLIP vision tower + its image processor
    language_model: str  # Hub id or folder: GPT-2 + its tokenizer
    image_size: int  # pixels the vision tower takes (after resize and crop)
    vision_width: int  # Dv, feature size per visual token
    text_width: int  # Dt, GPT-2 embedding size
    visual_tokens: int  # N, tokens in the visual prefix
    projector: str  # "linear" or "mlp" (stage 02)
    lora_r: int  # rank of each LoRA update (stage 05)
    lora_alpha: int  # the update is scaled by alpha / r
    lora_targets: tuple[str, ...]  # GPT-2 modules that get an adapter
    max_caption_tokens: int  # caption tokens kept in training, and the length limit of generation
    feature_layer: int = -1  # the tower's hidden state used: -1 last (the seed), -2 penultimate (LLaVA)
    keep_cls: bool = True  # keep token 0, CLIP's CLS
    feature_layernorm: bool = False  # apply the tower's final LayerNorm to every token
    lora_dropout: float = 0.0
    # "causal": a caption sees the whole image, the image slots see only earlier ones (GPT-2 as it is);
    # "prefix_lm": every image slot sees the whole image too (stage 04)
    attention: str = "causal"
    vision_fingerprint: str | None = None  # of the frozen models trained on: filled by `for_models`
    vocab_size: int | None = None

    def __post_init__(self):
        if self.attention not in ("causal", "prefix_lm"):
            raise ValueError(f"attention must be 'causal' or 'prefix_lm', not {self.attention!r}")

    def for_models(self, vision, lm, fingerprint: str) -> ModelSpec:
        """This spec with the widths, vocabulary and vision fingerprint of the models actually loaded."""
        return self.with_(
            vision_width=vision.config.hidden_size,
            text_width=lm.config.n_embd,
            vocab_size=lm.config.vocab_size,
            vision_fingerprint=fingerprint,
        )


@dataclass(frozen=True)
class TrainConfig(_Changeable):
    """How the bridge trains: the loop in `train.py` reads these and nothing else."""

    epochs: int = 3
    batch_size: int = 8  # captions per batch
    lr_projector: float = 2e-4  # learning rate of the projector
    lr_lora: float = 2e-4  # learning rate of the LoRA weights
    weight_decay: float = 0.0
    schedule: str = "warmup_cosine"  # or "constant"
    warmup_steps: int = 100
    grad_accum: int = 1  # an optimizer step every `grad_accum` batches
    clip_norm: float = 1.0
    seed: int = 0  # the random seed of the data order (and of the bridge's start, where the caller seeds it)
    # one prefix pass per image for all its captions in a batch (`speedups.py`); None: on when some
    # image has several captions
    shared_prefix: bool | None = None
    # torch.compile GPT-2's transformer body: faster steps on a GPU after a compile of a minute or so;
    # recompiles for new caption lengths, so it pays off on long runs only
    compile: bool = False
    # the head only on caption slots and a fused GELU (`speedups.py`): the same loss, less work; off
    # by default, so that a step by hand (notebook 06) equals a step of train() bit for bit
    lean_forward: bool = False

    def __post_init__(self):
        if self.schedule not in ("constant", "warmup_cosine"):
            raise ValueError(f"schedule must be 'constant' or 'warmup_cosine', not {self.schedule!r}")


@dataclass(frozen=True)
class Profile(_Changeable):
    name: str
    model: ModelSpec
    train: TrainConfig
    eval_beams: int  # beam width when scoring captions; 1 is greedy
    data: str  # which caption data the profile trains on: "flickr8k" or "shapes"
    needs_hub: bool  # its models come from the Hugging Face Hub
    notes: dict[str, str] = field(default_factory=dict, compare=False)


SEED = Profile(
    name="seed",
    model=ModelSpec(
        vision_model="openai/clip-vit-large-patch14",
        language_model="gpt2",
        image_size=224,
        vision_width=1024,
        text_width=768,
        visual_tokens=257,  # last_hidden_state with CLS: 1 + 16 x 16
        projector="linear",  # Linear(1024 -> 768)
        lora_r=16,
        lora_alpha=32,
        lora_targets=("c_attn",),
        max_caption_tokens=40,
    ),
    train=TrainConfig(epochs=3, batch_size=8, lr_projector=2e-4, lr_lora=2e-4, schedule="constant", warmup_steps=0),
    eval_beams=1,
    data="flickr8k",
    needs_hub=True,
    notes={
        "source": "the original recipe: CLIP ViT-L/14 last_hidden_state -> Linear -> "
        "prefix of GPT-2 with LoRA r=16 alpha=32 on c_attn, lr 2e-4 (one for everything), "
        "constant, batch 8, 3 epochs"
    },
)

TINY = Profile(
    name="tiny",
    model=ModelSpec(
        vision_model=str(TINY_DIR / "clip-vision"),
        language_model=str(TINY_DIR / "gpt2"),
        image_size=64,  # seed 224
        vision_width=128,  # seed 1024
        text_width=128,  # seed 768
        visual_tokens=17,  # 1 CLS + 4 x 4, seed 257
        # A 3-minute CPU trial of the first tiny recipe reached 15% exact-match captions with the linear
        # projector and LoRA on c_attn alone, 94% with the MLP and LoRA on every projection: both changed
        # at once, so it says nothing of the projector alone; notebook 09 measures each choice apart.
        projector="mlp",  # seed linear
        lora_r=16,
        lora_alpha=32,
        # The tiny GPT-2 read only captions, where any colour is as likely as any other, so its tied
        # embeddings of 'red' and 'blue' are nearly the same vector and its head cannot say one of
        # them with confidence: without an adapter on lm_head the loss stalled at 0.33 nats/token
        # whatever the rank or learning rate. Seed: c_attn only.
        lora_targets=("c_attn", "c_proj", "c_fc", "lm_head"),
        max_caption_tokens=24,  # seed 40; the longest Shapes World caption is 11 tokens + EOS
    ),
    train=TrainConfig(
        epochs=7,  # over 20,000 cached training scenes, about 2,200 steps
        batch_size=64,  # seed 8
        lr_projector=2e-3,  # seed 2e-4; with warmup, cosine decay and clipping (unstable at 3e-3)
        lr_lora=2e-3,
        schedule="warmup_cosine",  # seed constant
        warmup_steps=100,
    ),
    eval_beams=1,  # captions here are short and near-certain: beams change nothing
    data="shapes",
    needs_hub=False,
    notes={"source": "models pretrained by `python -m vgpt build-tiny` on Shapes World"},
)

# The seed recipe with what the evidence says helps; every change is one line here.
SEED_PLUS = SEED.with_(
    name="seed-plus",
    # LLaVA reports its penultimate-layer CLIP features better than the last layer's (ScienceQA
    # 90.92% vs 89.96%): the last layer is shaped for CLIP's contrastive objective, the one before
    # keeps more local detail. Same 257 x 1024 shape.
    model=SEED.model.with_(feature_layer=-2),
    train=SEED.train.with_(
        # The projector starts from scratch and a LoRA update is a small change to a trained model:
        # projectors are commonly trained at 1e-3 (LLaVA stage 1 uses 2e-3), LoRA at 2e-4.
        lr_projector=1e-3,
        schedule="warmup_cosine",  # warmup protects the frozen model from the first random prefixes
        warmup_steps=500,  # about 5% of 3 epochs of 30,000 captions at batch 8
    ),
    eval_beams=3,  # beam search lifts BLEU and CIDEr over greedy on caption benchmarks
    notes={
        "source": "seed + penultimate CLIP layer, projector lr 1e-3, warmup + cosine, beam 3 "
        "at evaluation; end-of-text is a label in every profile"
    },
)

PROFILES = {"seed": SEED, "seed-plus": SEED_PLUS, "tiny": TINY}
