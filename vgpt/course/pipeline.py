"""The pipeline as a list of stages: what each notebook builds, and which parts are frozen or trained.

`pipeline_diagram(highlight=...)` draws it at the top of every notebook, so the picture is made
from this list and cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.patches import FancyBboxPatch, Patch

from ..plots import pyplot


@dataclass(frozen=True)
class Block:
    label: str  # what the box says
    kind: str  # "data" (a tensor or text), "frozen" (a pretrained model, never updated), "trained", "rule"
    notebooks: tuple[int, ...]  # the notebooks that build or use it most


# left to right, as the data flows
PIPELINE = (
    Block("image", "data", (0, 1, 10)),
    Block("vision tower\n(CLIP ViT)", "frozen", (0, 1)),
    Block("features\n(N, Dv)", "data", (1, 2)),
    Block("projector", "trained", (2, 6, 10)),
    Block("[prefix | caption]\n(N + T, Dt)", "data", (3, 10)),
    Block("joint attention\nmask (N + T)", "rule", (4, 10)),
    Block("GPT-2\n+ LoRA", "frozen+trained", (0, 5, 6, 10)),
    Block("loss (training)\nor caption\n(generation)", "data", (3, 6, 7, 8, 10)),
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
    10: "your captioner",
}


_KIND_COLORS = {"data": "#ffffff", "frozen": "#c9d6e8", "trained": "#f6c28b", "rule": "#e4e4e4"}


def pipeline_diagram(highlight: int | None = None, title: str | None = None):
    """The whole pipeline, left to right, frozen and trained parts coloured apart; the blocks of
    notebook `highlight` get a thick red outline."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(13, 2.6))
    width, gap = 1.25, 0.35
    for i, block in enumerate(PIPELINE):
        x = i * (width + gap)
        lit = highlight is not None and highlight in block.notebooks
        style = dict(boxstyle="round,pad=0.05", linewidth=3 if lit else 1, edgecolor="red" if lit else "black")
        if block.kind == "frozen+trained":  # GPT-2 frozen, LoRA inside it trained: two colours
            ax.add_patch(FancyBboxPatch((x, 0.0), width, 0.55, facecolor=_KIND_COLORS["frozen"], **style))
            ax.add_patch(FancyBboxPatch((x, 0.55), width, 0.45, facecolor=_KIND_COLORS["trained"], **style))
            label, y, size = block.label.replace("\n+ ", " + "), 0.0, 8.5
            for text, y in (("LoRA", 0.77), (label.split(" + ")[0], 0.27)):
                ax.text(x + width / 2, y, text, ha="center", va="center", fontsize=size,
                        fontweight="bold" if lit else "normal")  # fmt: skip
        else:
            ax.add_patch(FancyBboxPatch((x, 0.0), width, 1.0, facecolor=_KIND_COLORS[block.kind], **style))
            ax.text(x + width / 2, 0.5, block.label, ha="center", va="center", fontsize=8.5,
                    fontweight="bold" if lit else "normal")  # fmt: skip
        if i < len(PIPELINE) - 1:
            ax.annotate("", xy=(x + width + gap, 0.5), xytext=(x + width, 0.5),
                        arrowprops=dict(arrowstyle="->", lw=1.2))  # fmt: skip
    legend = [
        Patch(facecolor=_KIND_COLORS["frozen"], edgecolor="black", label="frozen (pretrained, never updated)"),
        Patch(facecolor=_KIND_COLORS["trained"], edgecolor="black", label="trained (the bridge)"),
        Patch(facecolor=_KIND_COLORS["data"], edgecolor="black", label="data / tensors"),
        Patch(facecolor=_KIND_COLORS["rule"], edgecolor="black", label="a rule (no weights)"),
    ]
    if highlight is not None:
        legend.append(Patch(facecolor="none", edgecolor="red", linewidth=3, label=f"notebook {highlight:02d}"))
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(legend), fontsize=8,
              frameon=False)  # fmt: skip
    ax.set_xlim(-0.1, len(PIPELINE) * (width + gap) - gap + 0.1)
    ax.set_ylim(-0.45, 1.1)
    ax.axis("off")
    name = NOTEBOOKS.get(highlight, "") if highlight is not None else ""
    ax.set_title(title or (f"The pipeline; this notebook ({highlight:02d}, {name}) in red" if name else "The pipeline"))
    fig.tight_layout()
    return fig
