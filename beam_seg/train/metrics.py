"""Segmentation losses and metrics: the training loss, Keras metrics for training logs, exact evaluation.

IoU of class ``c`` is ``TP / (TP + FP + FN)`` over all pixels of a split; mean IoU averages the
classes that occur in the labels or predictions (as ``keras.metrics.MeanIoU`` does); pixel
accuracy is the share of pixels whose argmax equals the label. The numbers come from one confusion
matrix summarised by :func:`beam_seg.confusion.summarize_confusion`, which the evaluation job
shares without TensorFlow.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from beam_seg.confusion import summarize_confusion

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = [
    "EVAL_LOSS",
    "LOSSES",
    "describe_objective",
    "evaluate",
    "inverse_sqrt_class_weights",
    "keras_metrics",
    "make_loss",
    "summarize_confusion",
]

# --loss choices -> description.
LOSSES: dict[str, str] = {
    "ce_dice": "pixel cross-entropy + soft Dice (Dice lifts thin classes such as the border)",
    "ce": "pixel cross-entropy only",
}
# What the "loss" of :func:`evaluate` (metrics.json's per-split "loss") is: metrics.json's "loss_description".
EVAL_LOSS = (
    "mean per-pixel cross-entropy of the softmax over every pixel of the split, unweighted and without Dice: not the "
    "training objective, whose values are history.json's loss (train batches) and val_loss"
)
# Smallest class pixel fraction used for class weights, so that a class (nearly) absent from the
# training data does not get an unbounded weight.
_MIN_CLASS_FRACTION = 1e-3


def inverse_sqrt_class_weights(fractions: Sequence[float]) -> tuple[float, ...]:
    """Cross-entropy class weights ``w_c ∝ 1 / sqrt(f_c)`` for class pixel fractions ``f_c``.

    Scaled so that the pixel-average weight ``sum_c f_c * w_c`` is 1: the loss keeps the scale of
    the unweighted one (so the learning rate means the same), while a thin class such as the
    trimap border counts more. The square root keeps the weighting mild: on the sample data a
    stronger ``f_c ** -0.75`` was no better, and plain inverse frequency makes a model over-predict
    the rare class.

    Raises:
        ValueError: if a fraction is negative or all are zero.
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or (f < 0).any() or not f.sum() > 0:
        raise ValueError(f"class pixel fractions must be >= 0 and not all zero, got {list(fractions)}")
    f = f / f.sum()
    w = 1.0 / np.sqrt(np.maximum(f, _MIN_CLASS_FRACTION))
    return tuple(float(v) for v in w / float((f * w).sum()))


def describe_objective(name: str, class_names: Sequence[str], class_weights: Sequence[float] | None = None) -> str:
    """The training objective :func:`make_loss` builds, in words (for ``metrics.json`` and ``model_config.json``).

    Args:
        name: ``ce_dice`` or ``ce``.
        class_names: The classes, in id order.
        class_weights: The cross-entropy weights used, or ``None`` (unweighted).
    """
    if class_weights is None:
        ce = "pixel cross-entropy (unweighted)"
    else:
        weights = ", ".join(f"{c} {w:.3g}" for c, w in zip(class_names, class_weights, strict=True))
        ce = f"class-weighted pixel cross-entropy ({weights})"
    if name == "ce":
        return ce
    return f"{ce} + soft Dice loss (1 - mean soft Dice over the classes), per batch"


def make_loss(name: str, num_classes: int, *, class_weights: Sequence[float] | None = None):  # noqa: ANN201
    """The training loss ``name`` (a key of :data:`LOSSES`): ``(uint8 mask [B,H,W,1], logits) → scalar``.

    Args:
        name: ``ce_dice`` or ``ce``.
        num_classes: Number of classes (logit channels).
        class_weights: Per-class cross-entropy weights (the mean is taken over the weights, so the
            loss stays a weighted average per pixel); ``None`` weighs every pixel alike.
    """
    import tensorflow as tf

    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    if class_weights is not None and len(class_weights) != num_classes:
        raise ValueError(f"need {num_classes} class weights, got {list(class_weights)}")
    weights = None if class_weights is None else tf.constant(list(class_weights), tf.float32)

    def loss(y_true: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(tf.squeeze(y_true, axis=-1), tf.int32)
        logits = tf.cast(logits, tf.float32)
        pixel_ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        if weights is None:
            ce = tf.reduce_mean(pixel_ce)
        else:
            pixel_weights = tf.gather(weights, labels)
            ce = tf.reduce_sum(pixel_ce * pixel_weights) / tf.reduce_sum(pixel_weights)
        if name == "ce":
            return ce
        probabilities = tf.nn.softmax(logits, axis=-1)
        onehot = tf.one_hot(labels, num_classes, dtype=tf.float32)
        intersection = tf.reduce_sum(probabilities * onehot, axis=[0, 1, 2])
        sizes = tf.reduce_sum(probabilities + onehot, axis=[0, 1, 2])
        dice = (2.0 * intersection + 1.0) / (sizes + 1.0)
        return ce + 1.0 - tf.reduce_mean(dice)

    loss.__name__ = name
    return loss


@functools.cache
def _segmentation_metric_class() -> type:
    """Defines the fused Keras metric on first use (Keras is imported lazily)."""
    import keras
    import tensorflow as tf

    class SegmentationMetrics(keras.metrics.Metric):
        """Pixel accuracy, mean IoU and per-class IoU from one confusion matrix per step.

        One argmax and one confusion matrix per batch instead of one per metric, which on CPU is a visible share
        of a small U-Net's train step (``bench/train_input.py``). ``result()`` is a dict, which
        Keras flattens into the logs (``mean_iou``, ``iou_pet``, …, and ``val_``-prefixed).
        """

        def __init__(self, class_names: Sequence[str], name: str = "segmentation", **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self._class_names = tuple(class_names)
            n = len(self._class_names)
            self.confusion = self.add_variable(
                shape=(n, n), initializer="zeros", dtype="float32", name="confusion", aggregation="sum"
            )

        def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
            n = len(self._class_names)
            labels = tf.reshape(tf.cast(y_true, tf.int32), [-1])
            predicted = tf.argmax(tf.reshape(y_pred, [-1, n]), axis=-1, output_type=tf.int32)
            self.confusion.assign_add(tf.math.confusion_matrix(labels, predicted, num_classes=n, dtype=tf.float32))

        def result(self) -> dict[str, tf.Tensor]:
            confusion = tf.convert_to_tensor(self.confusion)
            tp = tf.linalg.diag_part(confusion)
            union = tf.reduce_sum(confusion, axis=0) + tf.reduce_sum(confusion, axis=1) - tp
            iou = tf.math.divide_no_nan(tp, union)
            present = tf.cast(union > 0, tf.float32)
            results = {
                "pixel_accuracy": tf.math.divide_no_nan(tf.reduce_sum(tp), tf.reduce_sum(confusion)),
                "mean_iou": tf.math.divide_no_nan(tf.reduce_sum(iou * present), tf.reduce_sum(present)),
            }
            results.update({f"iou_{name}": iou[c] for c, name in enumerate(self._class_names)})
            return results

        def reset_state(self) -> None:
            self.confusion.assign(tf.zeros_like(self.confusion))

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "class_names": list(self._class_names)}

    return SegmentationMetrics


def keras_metrics(class_names: Sequence[str]) -> list[keras.metrics.Metric]:
    """Metrics logged per epoch by ``fit`` (on logits): ``pixel_accuracy``, ``mean_iou``, ``iou_<class>``."""
    return [_segmentation_metric_class()(class_names)]


def evaluate(model: keras.Model, dataset: tf.data.Dataset, class_names: Sequence[str]) -> dict[str, object]:
    """Evaluates ``model`` (logits) on ``(pixels, mask)`` batches exactly, over every pixel.

    Returns:
        :func:`summarize_confusion`'s dict plus ``loss`` (mean per-pixel cross-entropy) and
        ``num_examples``.
    """
    import tensorflow as tf

    num_classes = len(class_names)

    @tf.function(reduce_retracing=True)
    def batch_stats(pixels: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        logits = tf.cast(model(pixels, training=False), tf.float32)
        labels = tf.reshape(tf.cast(mask, tf.int32), [-1])
        flat = tf.reshape(logits, [-1, num_classes])
        loss = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=flat))
        predicted = tf.argmax(flat, axis=-1, output_type=tf.int32)
        confusion = tf.math.confusion_matrix(labels, predicted, num_classes=num_classes, dtype=tf.int64)
        return confusion, tf.cast(loss, tf.float64)

    confusion = np.zeros((num_classes, num_classes), np.int64)
    loss_sum, examples = 0.0, 0
    for pixels, mask in dataset:
        batch_confusion, batch_loss = batch_stats(pixels, mask)
        confusion += batch_confusion.numpy()
        loss_sum += float(batch_loss)
        examples += int(pixels.shape[0])
    summary = summarize_confusion(confusion, class_names)
    pixels_total = summary["num_pixels"]
    return {"loss": loss_sum / pixels_total if pixels_total else float("nan"), "num_examples": examples, **summary}
