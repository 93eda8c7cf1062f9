"""The exercises' checkers, one module per notebook; `from vgpt.course.exercises import check_...`."""

from .evaluation import check_cider_d, check_clipped_precision
from .feature_extraction import check_clip_preprocess, check_patchify
from .generation import check_greedy_with_kv_cache, check_top_k_filter
from .joint_attention_mask import check_attention_bias, check_position_ids
from .lora_injection import check_lora_conv1d, check_lora_forward
from .prefix_concatenation import check_caption_labels, check_prefix_inputs
from .projector import check_mlp_projector, check_rms_scale
from .training import check_train_step, check_warmup_cosine
from .two_alien_models import check_count_parameters, check_next_token_loss

__all__ = [
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
