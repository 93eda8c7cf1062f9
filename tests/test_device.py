"""Precision by compute capability (see vgpt/device.py)."""

import pytest
import torch

from vgpt import device


@pytest.mark.parametrize(
    ("card", "capability", "dtype"),
    [("T4", (7, 5), torch.float16), ("V100", (7, 0), torch.float16), ("A100", (8, 0), torch.bfloat16),
     ("H100", (9, 0), torch.bfloat16)],
)  # fmt: skip
def test_autocast_dtype_follows_compute_capability(monkeypatch, card, capability, dtype):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    # torch 2.13 counts emulated bf16 and says yes even on a T4: the choice must not rest on it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    chosen = device.autocast_dtype(torch.device("cuda"))
    assert chosen == dtype, card
    assert device.grad_scaler(torch.device("cpu"), chosen).is_enabled() == (dtype == torch.float16)


def test_no_autocast_on_cpu_or_mps():
    assert device.autocast_dtype(torch.device("cpu")) is None
    assert device.autocast_dtype(torch.device("mps")) is None
