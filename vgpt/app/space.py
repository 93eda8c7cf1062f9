"""`python -m vgpt app --write-space DIR --run FOLDER`: the app of `gradio_app.py` as a Hugging Face Space.

The folder it writes is a whole Space: `README.md` (the Space's settings in its YAML header: Gradio,
`app.py`), `requirements.txt` (vgpt with its [app] extra), `app.py` (three lines that start the
package's own app) and `bridge/`, the run's trained bridge. On `tiny` the frozen models travel too
(`tiny/`, 7 MB): an installed vgpt has no `data/` folder. On `seed` the Space loads CLIP and GPT-2 from
the Hub. Upload the folder to a new Space (sdk gradio) and it serves the same page as `app --run`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..bridge import BRIDGE_CONFIG
from ..config import REPOSITORY, TINY_DIR, UserError

TESTED_GRADIO = "6.31.0"  # the Space's sdk_version when Gradio is not installed here

APP_PY = '''"""A Hugging Face Space: vgpt's captioner demo, written by `python -m vgpt app --write-space`.

The page is the package's own (vgpt/app/gradio_app.py) on the bridge in bridge/. Try it locally
with `python app.py` where vgpt[app] is installed; on a Space, requirements.txt installs it.
"""

import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
if (HERE / "tiny").is_dir():  # the tiny profile's frozen models, shipped beside the bridge
    os.environ.setdefault("VGPT_TINY_DIR", str(HERE / "tiny"))  # read when vgpt is imported

from vgpt.app.gradio_app import serve  # noqa: E402
from vgpt.config import UserError  # noqa: E402

if __name__ == "__main__":
    try:
        serve(HERE / "bridge")  # on a Space, Gradio serves where the Space says (GRADIO_SERVER_NAME / _PORT)
    except UserError as err:  # a missing model, a bridge for other base models: one line in the Space's log
        raise SystemExit(f"vgpt app: error: {err}") from None
'''

README = """---
title: vgpt captioner
emoji: 🖼️
colorFrom: indigo
colorTo: yellow
sdk: gradio
sdk_version: {gradio}
python_version: "3.11"
app_file: app.py
pinned: false
license: mit
short_description: A frozen GPT-2 that learned to caption images, with its attention
---

# vgpt captioner ({profile})

A frozen CLIP vision tower and a frozen, text-only GPT-2 joined by a trained projector and LoRA
adapters: [vgpt]({repository}), a course in how a vision-language model is wired. Upload an image or
pick an example, choose greedy, beam search or sampling, and see the caption with each word's
attention over the image's patches.

- the bridge: `bridge/` ({files}), trained on the `{profile}` profile
- the frozen models: {frozen}
- written by `python -m vgpt app --write-space` from `{run}`

{limits}
"""

LIMITS = {
    "tiny": "Trained on Shapes World, generated scenes of one or two coloured shapes on 64 x 64 pixels: "
    "it describes every picture as such a scene, a photograph too.",
}
DEFAULT_LIMITS = "A small captioner trained in a course: short captions, often wrong on unusual images."


def bridge_folder(run: Path) -> Path:
    """A run folder or its bridge/ folder -> the bridge folder; a `UserError` if there is none."""
    for folder in (run / "bridge", run):
        if (folder / BRIDGE_CONFIG).is_file():
            return folder
    raise UserError(f"{run}: no trained bridge here (bridge/{BRIDGE_CONFIG} missing)")


def _gradio_version() -> str:
    try:
        from importlib.metadata import version

        return version("gradio")
    except Exception:  # not installed here: the version the app was tested with
        return TESTED_GRADIO


def write_space(out: str | Path, run: str | Path, requirement: str) -> Path:
    """Write a Space folder for the run's bridge into `out` (new, or empty); returns it."""
    out, bridge = Path(out), bridge_folder(Path(run))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out}: exists and is not an empty folder; give a new one for the Space")
    try:
        profile = json.loads((bridge / BRIDGE_CONFIG).read_text())["profile"]
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{bridge / BRIDGE_CONFIG}: not a bridge config ({err})") from err
    files = sorted(p for p in bridge.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "bridge").mkdir()
    for path in files:
        shutil.copyfile(path, out / "bridge" / path.name)
    if profile == "tiny":
        for part in ("gpt2", "clip-vision"):
            shutil.copytree(TINY_DIR / part, out / "tiny" / part)
        frozen = "the tiny profile's CLIP vision tower and GPT-2 (`tiny/`, pretrained on Shapes World)"
    else:
        spec = json.loads((bridge / BRIDGE_CONFIG).read_text()).get("model", {})
        frozen = f"`{spec.get('vision_model')}` and `{spec.get('language_model')}`, from the Hub"
    (out / "app.py").write_text(APP_PY)
    (out / "requirements.txt").write_text(
        "# the CPU build of PyTorch (a Space on CPU hardware); leave this line out on GPU hardware\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\n"
        f"{requirement}\n"
    )
    (out / "README.md").write_text(
        README.format(
            gradio=_gradio_version(),
            profile=profile,
            repository=REPOSITORY,
            files=", ".join(p.name for p in files),
            frozen=frozen,
            run=Path(run).as_posix(),
            limits=LIMITS.get(profile, DEFAULT_LIMITS),
        )
    )
    return out
