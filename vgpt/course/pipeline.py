"""The pipeline as a list of stages: what each notebook builds, and which parts are frozen or trained.

`viz.pipeline_diagram(highlight=...)` draws it at the top of every notebook,
so the picture is made from this list and cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Block:
    label: str  # what the box says
    kind: str  # "data" (a tensor or text), "frozen" (a pretrained model, never updated), "trained", "rule"
    notebooks: tuple[int, ...]  # the notebooks that build or use it most


# left to right, as the data flows
PIPELINE = (
    Block("image", "data", (0, 1)),
    Block("vision tower\n(CLIP ViT)", "frozen", (0, 1)),
    Block("features\n(N, Dv)", "data", (1, 2)),
    Block("projector", "trained", (2, 6)),
    Block("[prefix | caption]\n(N + T, Dt)", "data", (3,)),
    Block("joint attention\nmask (N + T)", "rule", (4,)),
    Block("GPT-2\n+ LoRA", "frozen+trained", (0, 5, 6)),
    Block("loss (training)\nor caption\n(generation)", "data", (3, 6, 7, 8)),
)

NOTEBOOKS = {
    0: "two alien models",
    1: "feature extraction",
    2: "projector",
    3: "prefix concatenation",
    4: "joint attention mask",
    5: "LoRA injection",
    6: "training",
    7: "generation",
    8: "evaluation and demo",
    9: "experiments",
}
