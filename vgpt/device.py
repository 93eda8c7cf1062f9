"""Where to run and in which precision: CUDA (bf16 where supported, else fp16 with a
gradient scaler), Apple MPS, or the CPU in plain fp32."""

from __future__ import annotations

import contextlib

import torch


def pick_device(name: str | None = None) -> torch.device:
    """`name` if given, else cuda, then mps, then cpu."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on GPUs that have it (Ampere and newer), fp16 on older ones (T4), none on CPU/MPS."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A mixed-precision context, or a do-nothing one where dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None):
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
