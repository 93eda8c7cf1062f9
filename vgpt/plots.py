"""The pictures: loss curves, image grids with captions, attention over the patches (matplotlib)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib.pyplot, drawing inline in a notebook and to files (Agg) anywhere else."""
    import matplotlib

    if matplotlib.get_backend().lower() not in {"module://matplotlib_inline.backend_inline", "nbagg", "widget"}:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curve(history: dict, path: str | Path | None = None, smooth: int = 20, floor: float | None = None,
               title: str | None = None):  # fmt: skip
    """Training loss per step (raw and smoothed) and validation loss per epoch; `floor`, where given,
    is the blind floor (notebook 00): the loss of a captioner that ignores the image."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    losses = history["step_loss"]
    ax.plot(range(1, len(losses) + 1), losses, color="tab:blue", alpha=0.25, lw=0.8, label="train (step)")
    if len(losses) >= smooth:
        avg = [sum(losses[i - smooth : i]) / smooth for i in range(smooth, len(losses) + 1)]
        ax.plot(range(smooth, len(losses) + 1), avg, color="tab:blue", label=f"train ({smooth}-step mean)")
    epochs = [e for e in history["epochs"] if "val_loss" in e]
    if epochs:
        ax.plot(
            [e["step"] for e in epochs],
            [e["val_loss"] for e in epochs],
            "o-",
            color="tab:orange",
            label="validation (epoch)",
        )
    if floor is not None:
        ax.axhline(floor, color="gray", ls="--", lw=1, label=f"blind floor (no image): {floor:.3f}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats / caption token)")
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def caption_grid(images, predictions: list[str], references: list[str] | None = None,
                 path: str | Path | None = None, columns: int = 4, title: str | None = None):  # fmt: skip
    """Images with their predicted caption (green where it equals the reference, red where not, with
    a key to the colours under the grid), and `title`, where given, above the grid."""
    plt = pyplot()
    rows = -(-len(images) // columns)
    # constrained layout leaves room for titles of up to three lines above square images
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.8 * rows + 0.4), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image)
        right = references is None or predictions[i] == references[i]
        text = predictions[i] if references is None or right else f"{predictions[i]}\n(truth: {references[i]})"
        ax.set_title(_wrap(_printable(text)), fontsize=7.5, color="darkgreen" if right else "firebrick")
    if references is not None:  # the key to the colours, under the grid
        from matplotlib.patches import Patch

        key = [Patch(color="darkgreen", label="green: the caption equals the reference"),
               Patch(color="firebrick", label="red: it differs (the reference, 'truth', below it)")]  # fmt: skip
        fig.legend(handles=key, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    if path:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig


def attention_maps(image, words: list[str], maps, title: str | None = None, columns: int = 6, close: bool = False):
    """The image, then one panel per word with its attention over the patches, the scene outlined on top.

    Every panel shares one colour scale, from 0 to the largest share in any map, with a colour bar
    marking the uniform share 1 / patches: a flat map then looks flat, not as peaked as the rest.
    The heat is drawn opaque, so each colour reads off the bar whatever the scene's own colours
    (a heat laid over an orange shape would be read as heat); the scene is drawn as white outlines
    where its brightness rises above its commonest level (Shapes World's background). Only the
    centred square that the processor keeps, and the patches cover, is shown.
    """
    plt = pyplot()
    import numpy as np
    from matplotlib.lines import Line2D

    panels = len(words) + 1
    rows = -(-panels // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns + 0.6, 2.35 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    square = centre_square(image)
    side = square.size[0]
    gray = np.asarray(square.convert("L"), dtype=float) / 255  # (side, side) brightness in [0, 1]
    level = float(np.median(gray)) + 0.1  # just above the background (the commonest brightness)
    outline = gray.max() > level  # a blank image has nothing to outline
    heats = [np.asarray(h.detach().cpu().float() if hasattr(h, "detach") else h, dtype=float) for h in maps]
    top = max((float(h.max()) for h in heats), default=1.0) or 1.0
    axes.flat[0].imshow(square)
    axes.flat[0].set_title("image", fontsize=8)
    if outline:
        key = Line2D([], [], color="white", lw=1, label="outlined in\nthe word panels")
        axes.flat[0].legend(handles=[key], loc="lower center", fontsize=6, facecolor="0.35", labelcolor="white")
    shown = None
    pixels = (-0.5, side - 0.5, side - 0.5, -0.5)  # the heat covers the square pixel for pixel
    for ax, word, heat in zip(axes.flat[1:], words, heats, strict=False):  # more panels than words
        shown = ax.imshow(heat, cmap="viridis", vmin=0.0, vmax=top, extent=pixels, interpolation="nearest")
        if outline:
            ax.contour(gray, levels=[level], colors="white", linewidths=0.8)
        ax.set_title(repr(word.strip() or word), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    if shown is not None:
        bar = fig.colorbar(shown, cax=fig.add_axes((0.875, 0.12, 0.013, 0.72)))
        bar.set_label("share of the word's attention\nto the image's patches", fontsize=8)
        uniform = 1.0 / heats[0].size
        bar.ax.axhline(uniform, color="red", lw=2)
        bar.ax.set_yticks(sorted({*bar.get_ticks(), uniform}),
                          [f"{t:.3g}" if t != uniform else f"uniform 1/{heats[0].size}" for t in
                           sorted({*bar.get_ticks(), uniform})], fontsize=7)  # fmt: skip
        bar.ax.set_ylim(0, top)
    if close:  # for showing in a widget: the figure is drawn once, not again by the notebook
        plt.close(fig)
    return fig


def centre_square(image):
    """The centred square of a PIL image, side = its shorter side: the part CLIP's processor keeps
    (it resizes the shorter side, then crops the centre) and the patch maps cover."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def _printable(text: str) -> str:
    """Control characters (a sampled caption can hold a tab) shown as escapes: fonts have no glyph for them."""
    return "".join(ch if ch.isprintable() or ch == "\n" else ch.encode("unicode_escape").decode() for ch in text)


def _wrap(text: str, width: int = 34) -> str:
    lines, line = [], ""
    for word in text.replace("\n", " \n ").split(" "):
        if word == "\n":
            lines.append(line)
            line = ""
        elif len(line) + len(word) + 1 > width and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
