"""The learner's parts of the captioner: which exercises they are, and how they reach notebook 10.

Eleven exercises of notebooks 01-08 are parts of a captioner; notebook 10 puts each in place of the
package's own and trains the whole (`capstone.py`):

    part                  notebook                 its place in the captioner
    clip_preprocess       01_feature_extraction    image -> pixels (3, H, W), the image processor's job
    rms_scale             02_projector             the projector's starting scale    (stage calibration)
    mlp_projector         02_projector             features (B, N, Dv) -> prefix (B, N, Dt)   (projector)
    prefix_inputs         03_prefix_concatenation  [prefix | caption] embeddings, labels  (prefix_inputs)
    attention_bias        04_joint_attention_mask  mask (B, L) -> bias (B, L, L)     (attention_bias)
    position_ids          04_joint_attention_mask  mask (B, L) -> positions (B, L)   (position_ids)
    lora_conv1d           05_lora_injection        the LoRA layer around each adapted Conv1D  (lora_layer)
    warmup_cosine         06_training              the learning-rate factor of each step  (schedule)
    train_step            06_training              one optimizer step                (train_step)
    greedy_with_kv_cache  07_generation            prefix -> caption token ids       (decode)
    cider_d               08_evaluation_and_demo   the captions' CIDEr-D

How they travel. On Colab each notebook runs on a machine of its own. When a part's checker says
Correct! in a notebook, it keeps the part's exercise cell, its source as the learner wrote it, in the
work folder: `parts/<name>.py` (`keep`). `keep_work(on_drive=True)` keeps that folder on Google Drive,
where notebook 10, on another machine, reads it back (`kept`). The file is Python source the learner
wrote; notebook 10 runs it in the learner's own kernel, as running the cell again would. Nothing is
pickled, and nothing of it runs anywhere else. Only a function defined in a notebook cell is kept (the
cell is also what a grader grades); a test that calls a checker keeps nothing.
"""

from __future__ import annotations

import inspect
import linecache
import re
from dataclasses import dataclass
from pathlib import Path

from ..files import write_text
from . import colab, notebook

FOLDER = "parts"  # below the work folder, beside the profiles' folders


@dataclass(frozen=True)
class Part:
    name: str  # the exercise's function, e.g. "mlp_projector"
    notebook: str  # the notebook whose exercise it is, e.g. "02_projector"
    stage: str | None  # the model's stage it stands in for (model.STAGES), or None: the capstone's own use
    does: str  # its place in the captioner, for the tables


PARTS = (  # in the order the data meets them
    Part("clip_preprocess", "01_feature_extraction", None, "image -> pixels (3, H, W)"),
    Part("rms_scale", "02_projector", "calibration", "the projector's starting scale"),
    Part("mlp_projector", "02_projector", "projector", "features -> prefix (B, N, Dt)"),
    Part("prefix_inputs", "03_prefix_concatenation", "prefix_inputs", "[prefix | caption], labels"),
    Part("attention_bias", "04_joint_attention_mask", "attention_bias", "mask -> bias (B, L, L)"),
    Part("position_ids", "04_joint_attention_mask", "position_ids", "mask -> positions (B, L)"),
    Part("lora_conv1d", "05_lora_injection", "lora_layer", "LoRA around each adapted layer"),
    Part("warmup_cosine", "06_training", "schedule", "the learning rate of each step"),
    Part("train_step", "06_training", "train_step", "one optimizer step"),
    Part("greedy_with_kv_cache", "07_generation", "decode", "prefix -> caption tokens"),
    Part("cider_d", "08_evaluation_and_demo", None, "the captions' CIDEr-D"),
)
BY_NAME = {p.name: p for p in PARTS}
_CELL_FILE = re.compile(r"^<ipython-input-\d+-[0-9a-f]+>$|ipykernel_\d+[/\\]\d+\.py$")
_warned: list[bool] = []


def folder() -> Path:
    """Where the parts are kept: `parts/` in this notebook's work folder (`notebook.RUNS`)."""
    return notebook.RUNS / FOLDER


def cell_source(fn) -> str | None:
    """The whole notebook cell that defined `fn` (IPython keeps every cell's source for tracebacks), or
    None where `fn` was not defined in a notebook cell."""
    try:
        fn = inspect.unwrap(fn)  # through decorators such as @torch.no_grad(), to the function the cell defined
    except ValueError:
        return None
    code = getattr(fn, "__code__", None)
    if code is None or not _CELL_FILE.search(code.co_filename):
        return None
    lines = linecache.getlines(code.co_filename)
    return "".join(lines) or None


def keep(name: str, fn) -> Path | None:
    """Keep the cell that defined part `name` (after its checker said Correct!) for notebook 10: its
    file, or None where `name` is no part or `fn` was not defined in a notebook cell. Says so only where
    the file could not be written, and, once, on Colab where the folder vanishes with the runtime."""
    part, source = BY_NAME.get(name), cell_source(fn)
    if part is None or source is None:
        return None
    path = folder() / f"{name}.py"
    header = (f"# {name}: your exercise cell of notebook {part.notebook}, kept when its checker said Correct!\n"
              f"# Notebook 10 runs it, in your kernel, as your part of the captioner.\n")  # fmt: skip
    try:
        write_text(path, header + source.rstrip() + "\n")
    except OSError as err:
        print(f"(could not keep {name} for notebook 10 in {notebook.where(path.parent)}: {err})")
        return None
    if colab.on_colab() and not _warned and not str(notebook.RUNS).startswith(str(colab.content() / "drive")):
        _warned.append(True)
        print(f"(kept {name} for notebook 10 in {path.parent}, which vanishes with this runtime: "
              f"keep_work(on_drive=True) keeps your parts on Google Drive)")  # fmt: skip
    return path


def kept(name: str) -> tuple[Path, str] | None:
    """The kept cell of part `name`: (its file, its source), or None if none is kept."""
    path = folder() / f"{name}.py"
    try:
        return path, path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
