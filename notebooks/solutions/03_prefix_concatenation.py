"""Solution to notebook 03's exercise."""

import torch


def caption_labels(ids, text_mask, n_prefix):
    text = ids.masked_fill(text_mask == 0, -100)  # by position: padding is wherever the mask is 0
    prefix = torch.full((ids.shape[0], n_prefix), -100, dtype=ids.dtype)
    return torch.cat([prefix, text], dim=1)
