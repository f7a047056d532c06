"""Export of a trained model as a self-contained SavedModel, and the ``model_config.json`` that describes it.

The SavedModel (``<model_dir>/saved_model``) carries the whole preprocessing: decoding, resizing
(bilinear with antialias, no aspect preservation) and normalisation (the model's first layer).
Its signatures:

==================  =====================================  ===================================================
signature           input                                  outputs
==================  =====================================  ===================================================
``serving_default``  ``image_bytes``: string ``[N]``          ``mask``: uint8 ``[N, S, S]`` class ids;
                    (encoded JPEG/PNG/BMP/GIF, any size)   ``probabilities``: float32 ``[N, S, S, C]``
``serving_images``   ``images``: uint8 ``[N, H, W, 3]`` RGB   same as ``serving_default``
==================  =====================================  ===================================================

``model_config.json`` beside it says what ``S`` and the classes are (see :func:`model_config`); the one loader
is :func:`beam_seg.loader.load_model`. :func:`keras_file` is the same float32 model as a ``.keras`` file, for Keras
users (``keras.saving.load_model`` alone loads it: every layer is a Keras built-in, normalisation included) and for
the Hub, which counts a ``keras`` model's downloads by its ``*.keras`` file.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from beam_seg.formats import (
    INPUT_BYTES,
    INPUT_IMAGES,
    KERAS_NAME,
    OUTPUT_MASK,
    OUTPUT_PROBABILITIES,
    SAVED_MODEL_DIR,
    SERVING_DEFAULT,
    SERVING_IMAGES,
)
from beam_seg.pets import MASK_CLASSES, PALETTE

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["export_saved_model", "keras_file", "model_config"]

CONFIG_FORMAT_VERSION = 1


def _outputs(model: keras.Model, pixels: tf.Tensor) -> dict[str, tf.Tensor]:
    import tensorflow as tf

    probabilities = tf.nn.softmax(tf.cast(model(pixels, training=False), tf.float32), axis=-1)
    return {
        OUTPUT_MASK: tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8),
        OUTPUT_PROBABILITIES: probabilities,
    }


def export_saved_model(model: keras.Model, export_dir: str, *, image_size: int) -> None:
    """Writes ``model`` with decode/resize built in as a SavedModel with the two signatures above.

    Args:
        model: A float32 model: float pixels ``[N, S, S, 3]`` in ``[0, 255]`` → logits.
        export_dir: Destination directory (local or ``gs://``); replaced if it exists.
        image_size: The model's input side ``S``.
    """
    import keras
    import tensorflow as tf

    size = (image_size, image_size)

    def resize(image: tf.Tensor) -> tf.Tensor:
        # Same op and options as input_pipeline.preprocess_eval, so served and evaluated inputs match.
        return tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)

    def from_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        pixels = tf.map_fn(
            lambda data: resize(tf.io.decode_image(data, channels=3, expand_animations=False)),
            image_bytes,
            fn_output_signature=tf.TensorSpec([*size, 3], tf.float32),
        )
        return _outputs(model, pixels)

    def from_images(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return _outputs(model, resize(images))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_DEFAULT, from_bytes, input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_BYTES)]
    )
    archive.add_endpoint(
        SERVING_IMAGES, from_images, input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=INPUT_IMAGES)]
    )
    if tf.io.gfile.exists(export_dir):
        tf.io.gfile.rmtree(export_dir)
    archive.write_out(export_dir, verbose=False)


def keras_file(model: keras.Model) -> bytes:
    """The bytes of ``model`` saved as a ``.keras`` file: its architecture and weights (it is not compiled).

    Saved to a local temporary file first, so the caller can write it anywhere (``gs://`` too) in one atomic write.
    """
    with tempfile.TemporaryDirectory(prefix="beam_seg-keras-") as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


def model_config(
    *,
    image_size: int,
    normalization: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    data: Mapping[str, Any],
    metrics: Mapping[str, Any],
    litert: Mapping[str, Any],
    class_names: Sequence[str] = MASK_CLASSES,
    palette: Sequence[Sequence[int]] = PALETTE,
) -> dict[str, Any]:
    """The JSON-ready ``model_config.json`` contents: everything a consumer needs besides the weights.

    It is published as it is, so it holds no local path and no run-only flag: ``training`` is the hyper-parameters
    and what the run did, ``data`` which data the model was trained on (from ``stats.json``) and how many records.

    Args:
        image_size: The model's input side ``S``.
        normalization: The per-channel mean and std inside the model, and where they came from.
        model: Architecture and size.
        training: Hyper-parameters and facts of the run (epochs completed, class weights used, ...).
        data: ``stats.json``'s ``dataset`` entry (``name``, ``synthetic``, ...) and the records per split.
        metrics: Where the metrics are, the headline numbers and what the reported loss is.
        litert: The LiteRT models' files, signature and client resize (:func:`beam_seg.train.litert.contract`).
        class_names: The classes, in id order.
        palette: One RGB colour per class.
    """
    import keras
    import tensorflow as tf

    return {
        "format_version": CONFIG_FORMAT_VERSION,
        "task": "image-segmentation",
        "framework": "tensorflow-saved-model",
        "saved_model_dir": SAVED_MODEL_DIR,
        "image_size": image_size,
        "num_classes": len(class_names),
        "classes": list(class_names),
        "id2label": {str(i): name for i, name in enumerate(class_names)},
        "label2id": {name: i for i, name in enumerate(class_names)},
        "palette": {name: list(rgb) for name, rgb in zip(class_names, palette, strict=True)},
        "preprocessing": {
            "color": "RGB",
            "resize": f"bilinear with antialias to {image_size}x{image_size}, aspect ratio not preserved",
            "normalization": dict(normalization),
            "inside_saved_model": True,
        },
        "signatures": {
            SERVING_DEFAULT: {
                "inputs": {INPUT_BYTES: {"dtype": "string", "shape": [None]}},
                "outputs": {
                    OUTPUT_MASK: {"dtype": "uint8", "shape": [None, image_size, image_size]},
                    OUTPUT_PROBABILITIES: {
                        "dtype": "float32",
                        "shape": [None, image_size, image_size, len(class_names)],
                    },
                },
            },
            SERVING_IMAGES: {
                "inputs": {INPUT_IMAGES: {"dtype": "uint8", "shape": [None, None, None, 3]}},
                "outputs": {
                    OUTPUT_MASK: {"dtype": "uint8", "shape": [None, image_size, image_size]},
                    OUTPUT_PROBABILITIES: {
                        "dtype": "float32",
                        "shape": [None, image_size, image_size, len(class_names)],
                    },
                },
            },
        },
        "keras": {
            "file": KERAS_NAME,
            "load": f"keras.saving.load_model({KERAS_NAME!r})",
            "input": f"float32 [N, {image_size}, {image_size}, 3] RGB pixels in [0, 255], resized as the SavedModel "
            "resizes (normalisation is the model's first layer)",
            "output": f"float32 logits [N, {image_size}, {image_size}, {len(class_names)}]",
        },
        "litert": dict(litert),
        "model": dict(model),
        "training": dict(training),
        "data": dict(data),
        "metrics": dict(metrics),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }
