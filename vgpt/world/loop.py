"""The one training loop of the tiny-model build: AdamW, warmup + cosine, clipping, a progress bar."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..runtime import progress
from ..train import warmup_cosine


def fit(
    model, loss_at: Callable[[int], torch.Tensor], steps: int, lr: float, weight_decay: float, warmup: int, desc: str
):
    """Train `model` for `steps` steps on the loss `loss_at(step)` returns; leaves it in eval mode.

    Gradients are clipped to norm 1; the learning rate warms up over `warmup`
    steps, then decays along a cosine to 0.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps, warmup))
    model.train()
    for step in (bar := progress(range(steps), desc=desc, leave=False)):
        loss = loss_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    return model
