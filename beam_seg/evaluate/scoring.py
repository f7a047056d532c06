"""One record scored against one model's mask, as training scores it: pure functions, no Beam, no TensorFlow.

Training evaluates at the model's size ``S`` (``beam_seg.train.dataset.preprocess_eval``): the image is resized
inside the model, the label mask with ``tf.image.resize(..., method="nearest")``. :func:`resize_labels` is that resize
in NumPy (half-pixel centres, float32 index arithmetic, as TensorFlow's kernel computes it), so the confusion
matrices, and every number derived from them, are training's.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from beam_seg.confusion import confusion_matrix

__all__ = ["decode_labels", "resize_labels", "score_record"]


def decode_labels(png: bytes) -> np.ndarray:
    """A record's mask PNG → uint8 class ids ``[H, W]``.

    Raises:
        ValueError: if the bytes are not a one-channel 8-bit PNG.
    """
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.mode != "L":
                raise ValueError(f"the mask is a {image.mode} image, not a one-channel 8-bit PNG")
            return np.asarray(image, dtype=np.uint8)
    except (OSError, SyntaxError) as e:
        raise ValueError(f"the mask does not decode ({e})") from None


def _nearest_indices(out_size: int, in_size: int) -> np.ndarray:
    # TensorFlow's ResizeNearestNeighbor with half_pixel_centers: floor((x + 0.5) * in/out) in float32, clamped.
    scale = np.float32(in_size) / np.float32(out_size)
    centres = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
    return np.clip(np.floor(centres).astype(np.int64), 0, in_size - 1)


def resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Class ids ``[H, W]`` at ``height x width``, exactly as ``tf.image.resize(method="nearest")`` resizes them."""
    labels = np.asarray(labels)
    if labels.shape[:2] == (height, width):
        return labels
    return labels[_nearest_indices(height, labels.shape[0])][:, _nearest_indices(width, labels.shape[1])]


def score_record(label_png: bytes, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """The int64 ``[true, predicted]`` confusion matrix of one record at the model's size (``predicted``'s shape).

    Raises:
        ValueError: if the label mask does not decode or holds an id outside ``[0, num_classes)``.
    """
    predicted = np.asarray(predicted)
    labels = resize_labels(decode_labels(label_png), *predicted.shape[:2])
    return confusion_matrix(labels, predicted, num_classes)
