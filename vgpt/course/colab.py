"""Where the notebooks keep their work, so that a notebook on a fresh machine finds what earlier ones made.

On Colab every notebook runs on a machine of its own, and whatever is under
/content vanishes when the runtime is recycled: the data a notebook wrote, the
feature cache, the bridge notebook 06 trained. Each notebook's second cell,

    notebook.keep_work(on_drive=False)     # True: keep it on your Google Drive

chooses one folder for all of that (`notebook.RUNS`, with one folder per
profile below it) and prints it:

    where it runs    on_drive=False           on_drive=True
    Colab            /content/vgpt-work       MyDrive/vgpt on Google Drive, mounted at /content/drive,
                     (gone with the runtime)  with the Hugging Face downloads (HF_HOME) in it too
    anywhere else    runs/notebooks           runs/notebooks (Drive exists only on Colab)

A learner on `seed` needs Drive: notebook 06 trains the bridge that notebooks 07-09 read
(three epochs, the course's longest run), and without Drive it is gone with the runtime. Where
`load_profile()` will pick a seed profile (VGPT_PROFILE names one, or `auto` finds a CUDA GPU)
and the work is not on Drive, `keep_work` says so on Colab, in the cell where the learner
makes the choice.

`VGPT_RUNS`, when set, wins everywhere (the grader points it into each run's
own folder). The seed's Flickr8k is a folder `flickr8k/` in the work folder if
one is there (any layout `data.load_captions` reads), else `VGPT_DATA`, else
the Hugging Face dataset `ariG23498/flickr8k`.

`VGPT_CONTENT` stands for Colab's /content (the Colab simulation in
`tests/test_colab.py` points it at a folder of its own), like the bootstrap
cell's `VGPT_CONTENT` and `VGPT_REPO`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from ..files import repo_relative

DRIVE_FOLDER = "vgpt"  # below MyDrive
LOCAL_FOLDER = "vgpt-work"  # below /content, when Drive is not used
HF_FOLDER = "huggingface"  # HF_HOME below the work folder, on Drive only


def on_colab() -> bool:
    """Colab's kernel has imported `google.colab` before the first cell runs."""
    return "google.colab" in sys.modules


def content() -> Path:
    """Colab's working folder, where the bootstrap cell cloned vgpt."""
    return Path(os.environ.get("VGPT_CONTENT") or "/content")


def default_work(repo_runs: Path) -> Path:
    """The work folder before `keep_work` is called: VGPT_RUNS, else /content/vgpt-work on Colab, else
    `repo_runs` (runs/notebooks in the repository)."""
    if os.environ.get("VGPT_RUNS"):
        return Path(os.environ["VGPT_RUNS"])
    return content() / LOCAL_FOLDER if on_colab() else repo_runs


def seed_expected() -> bool:
    """Whether `load_profile()` will pick a seed profile here: VGPT_PROFILE names one, or it is `auto`
    (the default) on a machine with a CUDA GPU, where auto picks seed if the Hub answers (as on Colab)."""
    name = (os.environ.get("VGPT_PROFILE") or "auto").lower()
    return name.startswith("seed") if name != "auto" else torch.cuda.is_available()


def mount_drive() -> Path:
    """Mount Google Drive (Colab asks for permission the first time) and return MyDrive/vgpt."""
    from google.colab import drive

    mountpoint = content() / "drive"
    drive.mount(str(mountpoint))  # mounting again when mounted only says so
    return mountpoint / "MyDrive" / DRIVE_FOLDER


def hugging_face_home(folder: Path) -> str | None:
    """Point HF_HOME at `folder` unless the Hugging Face libraries have read it already; None if so
    (they read it once, on import)."""
    if os.environ.get("HF_HOME") == str(folder):
        return str(folder)
    if any(name in sys.modules for name in ("huggingface_hub", "transformers", "datasets")):
        return None
    os.environ["HF_HOME"] = str(folder)
    return str(folder)


def choose_work(on_drive: bool, repo_runs: Path) -> tuple[Path, list[str]]:
    """The work folder and the lines that say where it is and what that means."""
    if os.environ.get("VGPT_RUNS"):
        folder = Path(os.environ["VGPT_RUNS"])
        return folder, [f"work is kept in {repo_relative(folder)} (the VGPT_RUNS variable)"]
    if on_drive and on_colab():
        folder = mount_drive()
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"work is kept on Google Drive: {folder} (data, feature cache, bridges)"]
        home = hugging_face_home(folder / HF_FOLDER)
        if home:
            lines.append(f"Hugging Face downloads (the seed's models and Flickr8k) go to {home}")
        else:
            lines.append(
                "the Hugging Face libraries are loaded already, so their downloads stay off Drive: "
                "restart the session and run this cell before any other to keep them there too"
            )
        return folder, lines
    if on_colab():
        folder = content() / LOCAL_FOLDER
        lines = [
            f"work is kept in {folder}: it vanishes when the runtime is recycled; "
            "keep_work(on_drive=True) keeps it on your Google Drive for the next notebooks"
        ]
        if seed_expected():
            lines.append(
                "this runtime will run the seed profile, whose bridge (notebook 06's three epochs, the course's "
                "longest run) notebooks 07-09 read from the work folder: set on_drive=True in this cell of every "
                "notebook"
            )
        return folder, lines
    lines = [f"work is kept in {repo_relative(repo_runs)}"]
    if on_drive:
        lines.append("(Google Drive is there only on Colab: on this machine the work stays on its disk)")
    return repo_runs, lines
