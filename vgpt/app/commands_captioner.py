"""The handlers of `python -m vgpt demo | train | extract | caption | evaluate`: a captioner trained,
its features cached, images captioned, a run scored. Each takes the parsed arguments and returns the
exit code; the heavy imports wait until a command runs, so `--help` stays fast."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def demo(args) -> int:
    from .demo import run_demo

    size = dict(n_train=args.train_scenes, epochs=args.epochs)
    if args.quick:
        size = dict(n_train=2000, n_eval=100, epochs=1)
    run_demo(args.out, seed=args.seed, cache_root=args.cache, recipe=args.recipe, **size)
    return 0


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise UsageError(f"{what} {path} does not exist")
    return path


def _need_data(source: str) -> str:
    """A caption source: a path that exists here, or an owner/name that may be a Hugging Face Hub id."""
    from ..hf_data import hf_source_kind

    if not Path(source).exists() and hf_source_kind(source) != "hub":
        raise UsageError(f"data folder {source} does not exist (nor is it a Hugging Face Hub id, owner/name)")
    return source


def _decoding(args) -> dict:
    return dict(
        num_beams=args.beams,
        do_sample=args.sample,
        top_p=args.top_p,
        temperature=args.temperature,
        max_new_tokens=args.max_tokens,
        repetition_penalty=args.repetition_penalty,
    )


def train(args) -> int:
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
        _need_data(args.data),
        args.out,
        args.cache,
        resume=args.resume,
        checkpoint_every=_checkpoint_every(args.checkpoint_every),
        **changes,
    )
    return 0


def _checkpoint_every(text: str):
    """'500' -> every 500 steps; '10min' -> every 10 minutes."""
    if text.endswith("min") and text[:-3].replace(".", "", 1).isdigit():
        return text
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise UsageError(f"--checkpoint-every {text!r}: give steps (e.g. 500) or minutes (e.g. 10min)")


def extract(args) -> int:
    from ..loading import load_profile
    from .runs import folder_features

    found, cache = folder_features(load_profile(args.profile), _need_data(args.data), args.cache)
    print(f"features of {len(found.records)} images: {cache.folder} {tuple(cache.array.shape)} fp16")
    return 0


def caption(args) -> int:
    from .runs import caption_files

    images = [_need(p, "image") for p in args.images]
    for path, text in zip(images, caption_files(_need(args.run, "run folder"), images, **_decoding(args))):
        print(f"{path}: {text}")
    return 0


def evaluate(args) -> int:
    from .runs import evaluate_run

    evaluate_run(_need(args.run, "run folder"), _need_data(args.data), args.cache, args.split, **_decoding(args))
    return 0
