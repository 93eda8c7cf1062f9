import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the Hub

# notebooks under fixtures/ are inputs (a student's download, for grading), not chapters nbval runs
collect_ignore_glob = ["fixtures/*"]


@pytest.fixture(scope="session")
def seed_random():
    """The seed's full-size architectures with random weights (built once per run)."""
    from vgpt.scale.standins import seed_architectures

    return seed_architectures()


@pytest.fixture(scope="session")
def randomize_lora():
    """A function that makes every LoRA B of a model non-zero (in place; B starts at zero, so an
    untrained adapter changes nothing): then the adapters change the output, and every trainable
    tensor gets a gradient."""
    import torch

    def randomize(model, seed: int = 0, scale: float = 0.05):
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_B" in name:
                    p.copy_(torch.randn(p.shape, generator=g) * scale)
        return model

    return randomize
