"""`python -m vgpt app`: a run's captioner on a web page (Gradio), or written out as a Hugging Face Space.
The handler imports the app when it runs, so that --help does not wait for torch or Gradio (see
`world/commands.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import REPOSITORY, UserError

DEFAULT_REQUIREMENT = f"vgpt[app] @ git+{REPOSITORY}"  # how a Space installs vgpt


def add_commands(sub) -> None:
    p = sub.add_parser("app", help="a trained run's captioner on a web page (Gradio), or written out as a Space",
                       description="Serve a page where one uploads an image or picks an example, chooses greedy, "
                       "beam search or sampling, and sees the caption with each word's attention over the image. "
                       'Needs pip install "vgpt[app]". With --write-space, write the same app as a Hugging Face '
                       "Space folder instead.")  # fmt: skip
    p.add_argument("--run", type=Path, required=True, help="run folder (or its bridge/ folder)")
    p.add_argument("--host", default=None, help="address to serve on (default: Gradio's, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: Gradio's, 7860 or the next free one)")
    p.add_argument("--write-space", type=Path, default=None, metavar="DIR",
                   help="do not serve: write a Hugging Face Space to DIR (new or empty): app.py, requirements.txt, "
                   "README.md with the Space's settings, the bridge (and on tiny its frozen models)")  # fmt: skip
    p.add_argument(
        "--requirement",
        default=DEFAULT_REQUIREMENT,
        help="how the Space installs vgpt: a line of its requirements.txt (default: %(default)s)",
    )
    p.set_defaults(func=app)


def app(args: argparse.Namespace) -> int:
    if not args.run.exists():
        raise UserError(f"run folder {args.run} does not exist")
    if args.write_space:
        from .space import write_space

        out = write_space(args.write_space, args.run, requirement=args.requirement)
        folders = ", ".join(f"{p.name}/" for p in sorted(out.iterdir()) if p.is_dir())
        print(f"wrote the Space to {out}/: app.py, requirements.txt, README.md, {folders}")
        print(f"try it here: python {out / 'app.py'}")
        print("publish it: hf repos create USER/NAME --repo-type space --space-sdk gradio")
        print(f"            hf upload USER/NAME {out} . --repo-type space")
        return 0
    from .gradio_app import serve

    serve(args.run, host=args.host, port=args.port)
    return 0
