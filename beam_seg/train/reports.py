"""Training reports as PNG bytes: loss/metric curves and a grid of predictions (matplotlib Agg).

Pure numpy + matplotlib (imported on first use, with the non-interactive Agg backend), no TensorFlow; masks are
drawn as every picture of a mask here is (:func:`beam_seg.drawing.overlay`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np

from beam_seg.drawing import overlay

__all__ = ["plot_predictions", "plot_training_curves"]

# (history key, title) pairs of the curve panels; each also draws its val_ counterpart when logged.
_CURVES: tuple[tuple[str, str], ...] = (
    ("loss", "training loss"),
    ("mean_iou", "mean IoU"),
    ("pixel_accuracy", "pixel accuracy"),
)


def _pyplot():  # noqa: ANN202 - returns the matplotlib.pyplot module.
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def plot_training_curves(history: Sequence[Mapping[str, float]]) -> bytes:
    """Loss, mean IoU and pixel accuracy per epoch (train and val) as PNG bytes.

    Args:
        history: One dict per epoch with an ``epoch`` key and the logged metrics.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(_CURVES), figsize=(5 * len(_CURVES), 3.6))
    epochs = [int(h["epoch"]) for h in history]
    for ax, (key, title) in zip(axes, _CURVES, strict=True):
        for prefix, style in (("", "-o"), ("val_", "-s")):
            values = [h.get(prefix + key) for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style, ms=3, label=prefix + key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def plot_predictions(
    images: Sequence[np.ndarray],
    true_masks: Sequence[np.ndarray],
    predicted_masks: Sequence[np.ndarray],
    *,
    class_names: Sequence[str],
    palette: np.ndarray | Sequence[Sequence[int]],
    titles: Sequence[str] | None = None,
) -> bytes:
    """A grid with one row per example: image, true mask overlay, predicted mask overlay (PNG bytes)."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    rows = max(len(images), 1)
    figure, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
    for row, (image, truth, predicted) in enumerate(zip(images, true_masks, predicted_masks, strict=True)):
        panels = (
            (image, "image" if titles is None else titles[row]),
            (overlay(image, truth, palette, class_names), "true mask"),
            (overlay(image, predicted, palette, class_names), "predicted mask"),
        )
        for ax, (pixels, title) in zip(axes[row], panels, strict=True):
            ax.imshow(pixels)
            ax.set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    colours = np.asarray(palette, np.float32) / 255.0
    handles = [Patch(color=colours[c], label=name) for c, name in enumerate(class_names)]
    figure.legend(handles=handles, loc="lower center", ncol=len(class_names), frameon=False)
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    return _png(figure)
