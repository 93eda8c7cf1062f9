"""`python -m vgpt COMMAND`: the project's command line. Every command has --help.

Errors a user can fix (bad arguments, missing files, an unreachable Hub) end
as one line on stderr and a non-zero exit code, not a traceback.

Here: the parser and `main`. The commands' handlers live by job in
`commands_captioner.py` (demo, train, extract, caption, evaluate),
`commands_setup.py` (build-tiny, profile) and `commands_classroom.py`;
bench's, which only picks a benchmark module, stays beside its parser here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError
from ..paths import TINY_DIR
from . import commands_captioner, commands_classroom, commands_setup

DATA_HELP = (
    "caption data: a folder with Images/ + captions.txt (Kaggle), Flicker8k_Dataset/ + Flickr8k.token.txt "
    "(original) or an image folder + dataset_flickr8k.json (Karpathy); or a Hugging Face dataset: "
    "a Hub id such as ariG23498/flickr8k, a save_to_disk folder or parquet files "
    '(needs pip install "vgpt[hf]")'
)


def _bench(args) -> int:
    from .bench import run_bench
    from .bench_threads import run_thread_bench

    if args.demo:
        from .bench_demo import run_demo_bench

        figures = run_demo_bench(n_train=args.demo_scenes, seeds=tuple(args.demo_seeds))
    elif args.under_load:
        figures = run_thread_bench(args.profile or "tiny", steps=args.steps, rounds=args.repeats)
    else:
        figures = run_bench(
            args.profile or "seed",
            images=args.images,
            gen_images=args.gen_images,
            new_tokens=args.new_tokens,
            repeats=args.repeats,
            device=args.device,
            extract_images=args.extract_images,
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


SOURCE_HELP = "the teacher's notebooks folder (default: the repository's notebooks/)"
GRADE_HELP = """Grade each SUBMISSION (a student's folder of notebooks, or one notebook) against the teacher's
notebooks. For each student and notebook a grading notebook is built from the teacher's source, with only
the exercise cells (matched by nbgrader grade_id) taken from the student: checker cells always come from
the source. It runs in a fresh kernel, in a process and temporary folder of its own, with a time limit;
every checker gets its chance even after errors. Writes one CSV row per (student, notebook, exercise):
student, notebook, exercise, passed (0/1), points, message, and prints a students x notebooks table.

NOT A SECURITY SANDBOX: submissions run as you, with your files and network. This isolates students from
each other and from crashes and hangs, not from a hostile student. Grade untrusted code in a throwaway
container or account."""


def _add_decoding(p) -> None:
    p.add_argument("--beams", type=int, default=None, help="beam width; 1 is greedy (default: the profile's)")
    p.add_argument("--sample", action="store_true", help="sample instead of searching")
    p.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass, with --sample")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    p.add_argument("--repetition-penalty", type=float, default=1.0, help="(default: %(default)s)")
    p.add_argument("--max-tokens", type=int, default=None, help="length limit (default: the profile's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vgpt", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "build-tiny",
        help="build (or --check) the tiny profile's pretrained models",
        description="Train the tiny tokenizer, GPT-2 and CLIP vision tower on "
        "Shapes World and write them, with a manifest, to --out.",
    )
    p.add_argument("--out", type=Path, default=TINY_DIR, help="output folder (default: %(default)s)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="seconds-long build with tiny step counts; quality gates reported, not enforced",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="do not build: reload the models in --out offline and re-measure their quality gates",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.set_defaults(func=commands_setup.build_tiny)

    p = sub.add_parser(
        "demo",
        help="the main job: train and evaluate a captioner on Shapes World, offline",
        description="On the tiny profile: cache features, train the bridge, caption the test "
        "and compositional splits, and write a run folder with the bridge, "
        "metrics.json, loss.png and captions.png.",
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (default: %(default)s)")
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    p.add_argument("--train-scenes", type=int, default=20_000, help="training scenes (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a small, one-epoch run for smoke tests (about a minute)")
    p.add_argument("--recipe", default="fast", choices=("fast", "profile"),
                   help="fast: fewer epochs, lean forward (the default); profile: the tiny profile's own")  # fmt: skip
    p.set_defaults(func=commands_captioner.demo)

    p = sub.add_parser(
        "train",
        help="train a bridge on caption data (any Flickr8k layout, or a Hugging Face dataset)",
        description="Cache features, train projector + LoRA on the folder's train split, "
        "validate on its val split, and write a run folder.",
    )
    p.add_argument("--profile", default="auto", help="auto, seed, seed-plus or tiny (default: %(default)s)")
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
    p.set_defaults(func=commands_captioner.train)

    p = sub.add_parser(
        "extract",
        help="cache the vision features of a caption folder",
        description="Run the frozen vision tower once over every image and cache the features.",
    )
    p.add_argument("--profile", default="auto", help="auto, seed, seed-plus or tiny (default: %(default)s)")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    p.set_defaults(func=commands_captioner.extract)

    p = sub.add_parser(
        "caption",
        help="caption image files with a trained run",
        description="Load a run's bridge onto fresh base models and caption the images.",
    )
    p.add_argument("images", type=Path, nargs="+", help="image files")
    p.add_argument("--run", type=Path, required=True, help="run folder (or its bridge/ folder)")
    _add_decoding(p)
    p.set_defaults(func=commands_captioner.caption)

    p = sub.add_parser(
        "evaluate",
        help="caption metrics of a trained run on a caption folder",
        description="BLEU-1..4, ROUGE-L, CIDEr-D and the end-of-text rate on one split.",
    )
    p.add_argument("--run", type=Path, required=True, help="run folder")
    p.add_argument("--data", required=True, help=DATA_HELP)
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="(default: %(default)s)")
    p.add_argument("--cache", type=Path, default=Path("runs/features"), help="feature cache (default: %(default)s)")
    _add_decoding(p)
    p.set_defaults(func=commands_captioner.evaluate)

    p = sub.add_parser(
        "bench",
        help="time the original recipe against cached features and a shared prefix",
        description="Training step per image: (a) vision tower per caption, (b) cached features, "
        "(c) cached + shared prefix; generation with and without batching and KV "
        "cache. All in one run, medians, ratios, and FLOP counts.",
    )
    p.add_argument(
        "--profile",
        default=None,
        choices=("seed", "tiny"),
        help="seed: full-size architectures, random weights (the default); tiny: the shipped models "
        "(the default with --under-load)",
    )
    p.add_argument("--images", type=int, default=1, help="images per training batch, 5 captions each (default: 1)")
    p.add_argument("--gen-images", type=int, default=4, help="images to caption (default: %(default)s)")
    p.add_argument("--new-tokens", type=int, default=30, help="tokens to generate (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant (default: %(default)s)")
    p.add_argument(
        "--extract-images",
        type=int,
        default=16,
        help="JPEG images for the feature extraction figure (default: %(default)s)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best here)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    p.add_argument(
        "--under-load",
        action="store_true",
        help="instead: CPU training steps with 1 thread, torch's default and vgpt's pick, alone and beside a busy "
        "process (--repeats rounds of --steps steps)",
    )
    p.add_argument("--steps", type=int, default=10, help="timed steps a round, --under-load (default: %(default)s)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="instead: the whole demo with the tiny profile's recipe and the demo's fast one, seed by seed: "
        "a table of seconds and test exact match, and the time ratio",
    )
    p.add_argument("--demo-scenes", type=int, default=20_000, help="training scenes, --demo (default: %(default)s)")
    p.add_argument("--demo-seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds, --demo (default: 0 1 2)")
    p.set_defaults(func=_bench)

    p = sub.add_parser(
        "classroom",
        help="hand the notebooks out to a class and grade them",
        description="Release the student version of the notebooks, or grade submissions.",
    )
    room = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = room.add_parser(
        "release",
        help="write the student version of the notebooks",
        description="Copy the notebooks folder into OUT with every exercise's solution (between "
        "### BEGIN SOLUTION and ### END SOLUTION) replaced by a stub that raises "
        "NotImplementedError, exercise and checker outputs cleared, and solutions/ "
        "left out. Refuses unbalanced solution markers, naming notebook and cell.",
    )
    q.add_argument("out", type=Path, metavar="OUT", help="new (or empty) folder for the student version")
    q.add_argument("--source", type=Path, default=None, help=SOURCE_HELP)
    q.set_defaults(func=commands_classroom.classroom_release)
    q = room.add_parser(
        "grade",
        help="run and grade students' notebooks (not a sandbox)",
        description=GRADE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument(
        "submissions",
        type=Path,
        nargs="+",
        metavar="SUBMISSION",
        help="a student's folder of notebooks (the folder's name is the student's) or one .ipynb",
    )
    q.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV file (default: %(default)s)")
    q.add_argument("--source", type=Path, default=None, help=SOURCE_HELP)
    q.add_argument(
        "--timeout",
        type=float,
        default=300,
        help="seconds each notebook may run, kernel start excluded (default: %(default)s)",
    )
    q.add_argument(
        "--startup-timeout", type=float, default=180, help="seconds a kernel may take to start (default: %(default)s)"
    )
    q.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default: %(default)s)")
    q.set_defaults(func=commands_classroom.classroom_grade)

    p = sub.add_parser(
        "profile",
        help="show which profile would be used, and why",
        description="Resolve a profile name (or VGPT_PROFILE, or auto) and print its values.",
    )
    p.add_argument(
        "name", nargs="?", default=None, help="auto, seed, seed-plus or tiny (default: VGPT_PROFILE or auto)"
    )
    p.set_defaults(func=commands_setup.show_profile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"vgpt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vgpt {args.command}: interrupted", file=sys.stderr)
        return 130
