"""Confusion matrices of class-id masks and what they say: IoU per class, mean IoU, pixel accuracy.

The definitions of training's ``metrics.json``, which ``beam_seg.train.metrics`` summarises with this module: IoU
of class ``c`` is ``TP / (TP + FP + FN)`` over all pixels of a split; mean IoU averages the classes that occur in the
labels or the predictions (as ``keras.metrics.MeanIoU`` does); pixel accuracy is the share of pixels predicted right.
Pure NumPy, so an evaluation can run where TensorFlow is not imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["confusion_matrix", "summarize_confusion"]


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """The int64 ``[true, predicted]`` matrix of two class-id masks of the same shape.

    Raises:
        ValueError: if the shapes differ or an id is outside ``[0, num_classes)``.
    """
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    if labels.shape != predicted.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} differ in shape")
    flat_labels, flat_predicted = labels.astype(np.int64).ravel(), predicted.astype(np.int64).ravel()
    for name, ids in (("label", flat_labels), ("predicted", flat_predicted)):
        if ids.size and (ids.min() < 0 or ids.max() >= num_classes):
            found = sorted(int(v) for v in np.unique(ids[(ids < 0) | (ids >= num_classes)]))
            raise ValueError(f"{name} ids {found} are outside 0..{num_classes - 1}")
    counts = np.bincount(flat_labels * num_classes + flat_predicted, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def summarize_confusion(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """IoU, per-class IoU and pixel accuracy of a ``[true, predicted]`` confusion matrix.

    Args:
        confusion: Integer matrix, rows = true class, columns = predicted class.
        class_names: Names of the classes, in id order.

    Returns:
        ``mean_iou``, ``per_class_iou`` (name → IoU, ``None`` for a class absent from both labels and predictions),
        ``pixel_accuracy``, ``num_pixels`` and the ``confusion_matrix`` itself (nested lists).
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - tp
    present = union > 0
    iou = np.divide(tp, union, out=np.zeros_like(tp), where=present)
    total = int(confusion.sum())
    return {
        "mean_iou": float(iou[present].mean()) if present.any() else 0.0,
        "per_class_iou": {name: (float(iou[c]) if present[c] else None) for c, name in enumerate(class_names)},
        "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
        "num_pixels": total,
        "confusion_matrix": confusion.tolist(),
    }
