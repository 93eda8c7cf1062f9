import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the Hub


@pytest.fixture(scope="session")
def seed_random():
    """The seed's full-size architectures with random weights (built once per run)."""
    from vgpt import loading

    return loading.build_seed_random()


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


def exercise_solution(stem: str, name: str):
    """The worked solution of exercise `name` in notebook `stem`: its exercise cell (tagged `exercise`,
    solution between the nbgrader markers) run in a namespace of its own. Exercise cells import what
    they use, so the function runs outside the notebook."""
    import json
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "notebooks" / f"{stem}.ipynb"
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        if "exercise" in cell.get("metadata", {}).get("tags", []) and re.search(rf"^def {name}\(", source, re.M):
            namespace = {"__name__": f"notebook_{stem}"}
            exec(compile(source, f"{path.name}:{name}", "exec"), namespace)
            return namespace[name]
    raise LookupError(f"{path.name}: no exercise cell defines {name}")
