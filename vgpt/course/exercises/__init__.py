"""The exercises' checkers, one module per notebook; `from vgpt.course.exercises import check_...`.

Each checker is cases, a call and a judge (`grading`): the cases and the
judging stay with the checker, the student's function is only called
(`calls`), and what it returns comes back as data (`wire`). `check_my_work`
runs every checker of one notebook and prints a table. `projects` holds the
project checks: a part inside the package's own captioner, and the capstone's,
the learner's parts trained together (notebook 10).
"""

from . import (
    evaluation,
    feature_extraction,
    generation,
    joint_attention_mask,
    lora_injection,
    prefix_concatenation,
    projector,
    projects,
    training,
    two_alien_models,
)
from .evaluation import check_cider_d, check_clipped_precision
from .feature_extraction import check_clip_preprocess, check_patchify
from .generation import check_greedy_with_kv_cache, check_top_k_filter
from .grading import Checker
from .grading import check_my_work as _check_my_work
from .joint_attention_mask import check_attention_bias, check_position_ids
from .lora_injection import check_lora_conv1d, check_lora_forward
from .prefix_concatenation import check_caption_labels, check_prefix_inputs
from .projector import check_mlp_projector, check_rms_scale
from .training import check_train_step, check_warmup_cosine
from .two_alien_models import check_count_parameters, check_next_token_loss

NOTEBOOKS: dict[str, tuple[Checker, ...]] = {  # notebook -> its exercises' checkers, in the notebook's order
    "00_two_alien_models": two_alien_models.EXERCISES,
    "01_feature_extraction": feature_extraction.EXERCISES,
    "02_projector": projector.EXERCISES,
    "03_prefix_concatenation": prefix_concatenation.EXERCISES,
    "04_joint_attention_mask": joint_attention_mask.EXERCISES,
    "05_lora_injection": lora_injection.EXERCISES,
    "06_training": training.EXERCISES,
    "07_generation": generation.EXERCISES,
    "08_evaluation_and_demo": evaluation.EXERCISES,
    "10_your_captioner": (projects.check_my_captioner,),  # the capstone: your parts of 01-08, as one captioner
}


def check_my_work(notebook: str, namespace: dict) -> None:
    """The "check my work" cell: every checker of `notebook` (its file name without .ipynb) on the
    functions in `namespace` (pass `globals()`), as a table of exercise, passed, message."""
    if notebook not in NOTEBOOKS:
        raise ValueError(f"{notebook!r}: no exercises here; the notebooks with exercises are {', '.join(NOTEBOOKS)}")
    _check_my_work(list(NOTEBOOKS[notebook]), namespace)


__all__ = [
    "check_my_work",
    "check_count_parameters",
    "check_next_token_loss",
    "check_patchify",
    "check_clip_preprocess",
    "check_rms_scale",
    "check_mlp_projector",
    "check_caption_labels",
    "check_prefix_inputs",
    "check_attention_bias",
    "check_position_ids",
    "check_lora_forward",
    "check_lora_conv1d",
    "check_warmup_cosine",
    "check_train_step",
    "check_greedy_with_kv_cache",
    "check_top_k_filter",
    "check_clipped_precision",
    "check_cider_d",
]
