"""The exercises' checkers, one module per notebook; `from vgpt.course.exercises import check_...`."""

from .two_alien_models import check_count_parameters
from .feature_extraction import check_patchify
from .projector import check_rms_scale
from .prefix_concatenation import check_caption_labels
from .joint_attention_mask import check_position_ids
from .lora_injection import check_lora_forward
from .training import check_train_step, check_warmup_cosine
from .generation import check_greedy_with_kv_cache, check_top_k_filter
from .evaluation import check_clipped_precision

__all__ = [
    "check_count_parameters",
    "check_patchify",
    "check_rms_scale",
    "check_caption_labels",
    "check_position_ids",
    "check_lora_forward",
    "check_warmup_cosine",
    "check_train_step",
    "check_greedy_with_kv_cache",
    "check_top_k_filter",
    "check_clipped_precision",
]
