"""`python -m vgpt train | extract | caption | evaluate`: the recipe on real caption data. The handlers
import their jobs when they run, so that --help does not wait for torch (see `world/commands.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import UserError
from .hf_data import hf_source_kind

DATA_HELP = (
    "caption data: a folder with Images/ + captions.txt (Kaggle), Flicker8k_Dataset/ + Flickr8k.token.txt "
    "(original) or an image folder + dataset_flickr8k.json (Karpathy), dataset_coco.json (COCO); or a "
    "Hugging Face dataset: a Hub id such as ariG23498/flickr8k, a save_to_disk folder or parquet files "
    '(needs pip install "vgpt[hf]")'
)
PROFILE_HELP = "auto, seed, seed-plus or tiny (default: %(default)s)"


def add_commands(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a bridge on caption data (any Flickr8k layout, COCO, a Hugging Face dataset)",
        description="Cache features, train projector + LoRA on the data's train split, validate on its "
        "val split, and write a run folder.",
    )
    p.add_argument("--profile", default="auto", help=PROFILE_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--out", type=Path, default=Path("runs/train"), help="run folder (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="(default: the profile's)")
    p.add_argument("--batch-size", type=int, default=None, help="(default: the profile's)")
    p.add_argument(
        "--lr", type=float, default=None, help="learning rate for projector and LoRA (default: the profile's)"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--compile", action="store_true", help="torch.compile GPT-2 (worth it for long GPU runs)")
    p.add_argument(
        "--no-shared-prefix",
        action="store_true",
        help="run GPT-2 over the image prefix once per caption (slower; same losses)",
    )
    p.add_argument(
        "--checkpoint-every",
        default="10min",
        help="mid-epoch checkpoints every N steps (500) or minutes (10min) (default: %(default)s)",
    )
    p.set_defaults(func=train)

    p = sub.add_parser(
        "extract",
        help="cache the vision features of caption data",
        description="Run the frozen vision tower once over every image and cache the features.",
    )
    p.add_argument("--profile", default="auto", help=PROFILE_HELP)
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    p.set_defaults(func=extract)

    p = sub.add_parser(
        "caption",
        help="caption image files with a trained run",
        description="Load a run's bridge onto fresh frozen models and caption the images.",
    )
    p.add_argument("images", type=Path, nargs="+", help="image files")
    p.add_argument("--run", type=Path, required=True, help="run folder (or its bridge/ folder)")
    add_decoding(p)
    p.set_defaults(func=caption)

    p = sub.add_parser(
        "evaluate",
        help="caption metrics of a trained run on caption data",
        description="BLEU-1..4, ROUGE-L, CIDEr-D and the end-of-text rate on one split.",
    )
    p.add_argument("--run", type=Path, required=True, help="run folder")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="(default: %(default)s)")
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    add_decoding(p)
    p.set_defaults(func=evaluate)


def add_decoding(p) -> None:
    p.add_argument("--beams", type=int, default=None, help="beam width; 1 is greedy (default: the profile's)")
    p.add_argument("--sample", action="store_true", help="sample instead of searching")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass, with --sample")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="(default: %(default)s)")
    p.add_argument("--max-tokens", type=int, default=None, help="length limit (default: the profile's)")


def decoding(args: argparse.Namespace) -> dict:
    return dict(
        num_beams=args.beams,
        do_sample=args.sample,
        top_p=args.top_p,
        temperature=args.temperature,
        max_new_tokens=args.max_tokens,
        repetition_penalty=args.repetition_penalty,
    )


def need(path: Path, what: str) -> Path:
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    return path


def need_data(source: str) -> str:
    """A caption source: a path that exists here, or an owner/name that may be a Hugging Face Hub id."""
    if not Path(source).exists() and hf_source_kind(source) != "hub":
        raise UserError(f"data folder {source} does not exist (nor is it a Hugging Face Hub id, owner/name)")
    return source


def checkpoint_every(text: str):
    """'500' -> every 500 steps; '10min' -> every 10 minutes."""
    if text.endswith("min") and text[:-3].replace(".", "", 1).isdigit():
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise UserError(f"--checkpoint-every {text!r}: give steps (e.g. 500) or minutes (e.g. 10min)")


def train(args: argparse.Namespace) -> int:
    from .runs import train_folder

    changes = {
        k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed).items() if v is not None
    }
    if args.lr is not None:
        changes.update(lr_projector=args.lr, lr_lora=args.lr)
    if args.compile:
        changes["compile"] = True
    if args.no_shared_prefix:
        changes["shared_prefix"] = False
    train_folder(
        args.profile,
        need_data(args.data),
        args.out,
        args.cache,
        resume=args.resume,
        checkpoint_every=checkpoint_every(args.checkpoint_every),
        **changes,
    )
    return 0


def extract(args: argparse.Namespace) -> int:
    from ..loading import load_profile
    from .runs import folder_features

    found, cache = folder_features(load_profile(args.profile), need_data(args.data), args.cache)
    print(f"features of {len(found.records)} images: {cache.folder} {tuple(cache.array.shape)} fp16")
    return 0


def caption(args: argparse.Namespace) -> int:
    from .runs import caption_files

    images = [need(p, "image") for p in args.images]
    for path, text in zip(images, caption_files(need(args.run, "run folder"), images, **decoding(args))):
        print(f"{path}: {text}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from .runs import evaluate_run

    evaluate_run(need(args.run, "run folder"), need_data(args.data), args.cache, args.split, **decoding(args))
    return 0
