"""Export of a trained model as a self-contained SavedModel, and the loader the app and publisher share.

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

``model_config.json`` beside it says what ``S`` and the classes are (see :func:`model_config`).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from beam_seg.pets import MASK_CLASSES

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = [
    "CONFIG_NAME",
    "INPUT_BYTES",
    "INPUT_IMAGES",
    "PALETTE",
    "SAVED_MODEL_DIR",
    "SERVING_DEFAULT",
    "SERVING_IMAGES",
    "ModelDirError",
    "ServingModel",
    "export_saved_model",
    "load_serving_model",
    "model_config",
    "read_model_config",
]

SAVED_MODEL_DIR = "saved_model"
CONFIG_NAME = "model_config.json"
SERVING_DEFAULT = "serving_default"
SERVING_IMAGES = "serving_images"
INPUT_BYTES = "image_bytes"
INPUT_IMAGES = "images"
OUTPUT_MASK = "mask"
OUTPUT_PROBABILITIES = "probabilities"
CONFIG_FORMAT_VERSION = 1
# RGB colours of the classes in MASK_CLASSES order: pet orange, background blue, border yellow.
PALETTE: tuple[tuple[int, int, int], ...] = ((255, 127, 14), (31, 119, 180), (255, 221, 0))


class ModelDirError(FileNotFoundError):
    """A model directory without a loadable ``saved_model/`` or ``model_config.json``."""


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


def model_config(
    *,
    image_size: int,
    normalization: Mapping[str, Any],
    model: Mapping[str, Any],
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
    class_names: Sequence[str] = MASK_CLASSES,
    palette: Sequence[Sequence[int]] = PALETTE,
) -> dict[str, Any]:
    """The JSON-ready ``model_config.json`` contents: everything a consumer needs besides the weights."""
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
        "palette": {name: list(rgb) for name, rgb in zip(class_names, palette)},
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
                    OUTPUT_PROBABILITIES: {"dtype": "float32", "shape": [None, image_size, image_size, len(class_names)]},
                },
            },
            SERVING_IMAGES: {
                "inputs": {INPUT_IMAGES: {"dtype": "uint8", "shape": [None, None, None, 3]}},
                "outputs": {
                    OUTPUT_MASK: {"dtype": "uint8", "shape": [None, image_size, image_size]},
                    OUTPUT_PROBABILITIES: {"dtype": "float32", "shape": [None, image_size, image_size, len(class_names)]},
                },
            },
        },
        "model": dict(model),
        "training": dict(training),
        "metrics": dict(metrics),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
    }


def _join(model_dir: str, name: str) -> str:
    return f"{model_dir.rstrip('/')}/{name}"


def read_model_config(model_dir: str) -> dict[str, Any]:
    """Reads ``<model_dir>/model_config.json``.

    Raises:
        ModelDirError: if the file is missing or not JSON.
    """
    import tensorflow as tf

    path = _join(model_dir, CONFIG_NAME)
    if not tf.io.gfile.exists(path):
        raise ModelDirError(f"{path} does not exist; is {model_dir!r} an output_dir of python -m beam_seg.train?")
    with tf.io.gfile.GFile(path, "r") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ModelDirError(f"{path} is not valid JSON: {e}") from None


class ServingModel:
    """A loaded model directory: call it with encoded images, or :meth:`predict_images` with arrays.

    Attributes:
        config: The ``model_config.json`` contents.
        image_size: Output side ``S`` of masks and probabilities.
        class_names: Class names in id order.
        palette: RGB colour per class, in id order (uint8 ``[C, 3]``).
    """

    def __init__(self, model_dir: str) -> None:
        """Loads ``<model_dir>/saved_model`` with ``tf.saved_model.load`` and its ``model_config.json``.

        Raises:
            ModelDirError: if either is missing or the SavedModel lacks the expected signatures.
        """
        import tensorflow as tf

        self.config = read_model_config(model_dir)
        path = _join(model_dir, self.config.get("saved_model_dir", SAVED_MODEL_DIR))
        if not tf.io.gfile.exists(path):
            raise ModelDirError(f"{path} does not exist; the model directory is incomplete")
        self._loaded = tf.saved_model.load(path)
        missing = {SERVING_DEFAULT, SERVING_IMAGES} - set(self._loaded.signatures)
        if missing:
            raise ModelDirError(f"SavedModel {path} lacks signatures {sorted(missing)}; re-export it")
        self._from_bytes = self._loaded.signatures[SERVING_DEFAULT]
        self._from_images = self._loaded.signatures[SERVING_IMAGES]
        self.image_size = int(self.config["image_size"])
        self.class_names = tuple(self.config["classes"])
        self.palette = np.array([self.config["palette"][name] for name in self.class_names], np.uint8)

    def __call__(self, images: bytes | Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Segments encoded images (JPEG, PNG, …, any size).

        Args:
            images: One encoded image, or a sequence of them.

        Returns:
            ``(mask, probabilities)``: uint8 ``[N, S, S]`` class ids and float32 ``[N, S, S, C]``.
        """
        import tensorflow as tf

        batch = [images] if isinstance(images, (bytes, bytearray)) else list(images)
        out = self._from_bytes(**{INPUT_BYTES: tf.constant(batch, dtype=tf.string)})
        return out[OUTPUT_MASK].numpy(), out[OUTPUT_PROBABILITIES].numpy()

    def predict_images(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segments uint8 RGB arrays ``[H, W, 3]`` or ``[N, H, W, 3]`` (resized inside the model)."""
        import tensorflow as tf

        array = np.asarray(images, dtype=np.uint8)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB images [H, W, 3] or [N, H, W, 3], got shape {array.shape}")
        out = self._from_images(**{INPUT_IMAGES: tf.constant(array)})
        return out[OUTPUT_MASK].numpy(), out[OUTPUT_PROBABILITIES].numpy()


def load_serving_model(model_dir: str) -> ServingModel:
    """Loads a training output directory (local or ``gs://``) for inference: ``model(bytes) → (mask, probs)``.

    Raises:
        ModelDirError: if the directory has no SavedModel or ``model_config.json``.
    """
    return ServingModel(model_dir)
