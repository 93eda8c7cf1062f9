"""Where to run and in which precision: CUDA (bf16 from compute capability 8.0, else fp16
with a gradient scaler), Apple MPS, or the CPU in plain fp32."""

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
    """bf16 on GPUs of compute capability 8.0 and newer (A100, RTX 30xx and later, H100), fp16 on
    older ones (T4 is 7.5, V100 7.0), none on CPU or MPS.

    Decided by compute capability, not by `torch.cuda.is_bf16_supported()`: in torch 2.13 that
    counts emulated bf16 by default (`including_emulation=True`) and says yes on a T4, whose
    tensor cores have no bf16 (it came with Ampere, 8.0): there fp16 with loss scaling is the fast
    path.
    """
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None):
    """A mixed-precision context, or a do-nothing one where dtype is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None):
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
