"""LiteRT (TFLite) export of a trained model, for runtimes without TensorFlow: ``ai-edge-litert`` and LiteRT.js.

Training writes two LiteRT models with the same signature (:data:`MODELS`): ``model.tflite`` with float32 weights,
and ``model_int8.tflite``, quantized by the converter's dynamic range quantization: int8 weights (a quarter of the
bytes), activations quantized on the fly by the ops that have int8 kernels. ``bench/litert.py`` chose it over float16
weights: half their bytes, the same mean IoU within 0.0002, the same latency within the noise of the 2-core host
(``bench/README.md`` has the numbers).

TFLite's built-in ops decode no images and have no antialiased resize, so the LiteRT model starts after both:

==================  ==============================================  ============================================
signature           input                                           outputs
==================  ==============================================  ============================================
``serving_default``  ``image``: uint8 ``[1, S, S, 3]`` RGB, the      ``mask``: uint8 ``[1, S, S]`` class ids;
                    photo already resized to S x S (see below)      ``probabilities``: float32 ``[1, S, S, C]``
==================  ==============================================  ============================================

Normalisation is inside (the model's first layer), as in the SavedModel. A client matches the SavedModel's
``serving_default`` by resizing the decoded RGB photo to S x S with a bilinear (triangle) filter that is widened
by the scale factor when shrinking (antialias), sampling at pixel centres, and rounding to uint8: PIL's
``Image.resize((S, S), Image.Resampling.BILINEAR)``, or ``tf.image.resize(..., "bilinear", antialias=True)``.

The model is converted by TensorFlow's own converter from a SavedModel of one fixed-shape endpoint (converting a
Keras 3 model's concrete function directly loses its weights).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from beam_seg.formats import (
    LITERT_FLOAT32_NAME,
    LITERT_INPUT,
    LITERT_INT8_NAME,
    OUTPUT_MASK,
    OUTPUT_PROBABILITIES,
    SERVING_DEFAULT,
)

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["CLIENT_RESIZE", "MODELS", "QUANTIZATIONS", "contract", "convert", "convert_all"]

# What each quantization asks TensorFlow's converter for (None: float32, no optimisation).
# ``float16``: weights stored as float16, dequantized to float32 once at load; every op runs in float32.
# ``dynamic_int8``: weights stored as int8; ops with int8 kernels quantize their activations on the fly per call.
QUANTIZATIONS: tuple[str, ...] = ("float16", "dynamic_int8")
# The LiteRT models a training run writes: name -> (file, quantization).
MODELS: dict[str, tuple[str, str | None]] = {
    "float32": (LITERT_FLOAT32_NAME, None),
    "dynamic_int8": (LITERT_INT8_NAME, "dynamic_int8"),
}
# How a client resizes a photo for the LiteRT models (the module docstring says why), for model_config.json.
CLIENT_RESIZE = (
    "decode to RGB, then resize to SxS (aspect ratio not preserved) with a bilinear filter widened by the scale "
    "factor when shrinking (antialias), sampling at pixel centres, rounded to uint8: PIL's Image.resize((S, S), "
    "Image.Resampling.BILINEAR), or tf.image.resize(image, (S, S), 'bilinear', antialias=True) rounded to uint8"
)


def _serving_fn(model: keras.Model) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """The LiteRT endpoint: uint8 pixels → class ids and probabilities."""
    import tensorflow as tf

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(tf.cast(image, tf.float32), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {OUTPUT_MASK: tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8), OUTPUT_PROBABILITIES: probabilities}

    return serve


def contract(*, image_size: int, num_classes: int) -> dict[str, Any]:
    """The JSON-ready description of the LiteRT models for ``model_config.json``: files, signature, resize rule.

    Each model's ``quantization`` is ``None`` for float32 weights, else one of :data:`QUANTIZATIONS`.
    """
    return {
        "models": {name: {"file": file, "quantization": quantization} for name, (file, quantization) in MODELS.items()},
        "signature": SERVING_DEFAULT,
        "inputs": {LITERT_INPUT: {"dtype": "uint8", "shape": [1, image_size, image_size, 3]}},
        "outputs": {
            OUTPUT_MASK: {"dtype": "uint8", "shape": [1, image_size, image_size]},
            OUTPUT_PROBABILITIES: {"dtype": "float32", "shape": [1, image_size, image_size, num_classes]},
        },
        "resize": CLIENT_RESIZE,
        "normalization": "inside the model (its first layer), as in the SavedModel",
        "runtimes": "ai-edge-litert (Python), LiteRT.js (browser), any TFLite interpreter",
    }


def convert(model: keras.Model, *, image_size: int, quantization: str | None = None) -> bytes:
    """The LiteRT flatbuffer of ``model`` with the signature in the module docstring.

    Args:
        model: A float32 model: float pixels ``[N, S, S, 3]`` in ``[0, 255]`` → logits.
        image_size: The model's input side ``S``.
        quantization: ``None`` for float32 weights, or one of :data:`QUANTIZATIONS`; inputs and outputs keep their
            dtypes either way.

    Raises:
        ValueError: on a quantization that is not one of :data:`QUANTIZATIONS`.
    """
    (flatbuffer,) = convert_all(model, image_size=image_size, quantizations=[quantization])
    return flatbuffer


def convert_all(model: keras.Model, *, image_size: int, quantizations: Sequence[str | None]) -> list[bytes]:
    """:func:`convert` for each of ``quantizations``, from one intermediate SavedModel (half of a conversion's time).

    Raises:
        ValueError: on a quantization that is not ``None`` or one of :data:`QUANTIZATIONS`.
    """
    import keras
    import tensorflow as tf

    for quantization in quantizations:
        if quantization is not None and quantization not in QUANTIZATIONS:
            raise ValueError(f"unknown LiteRT quantization {quantization!r}; choose None or one of {QUANTIZATIONS}")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_DEFAULT,
        _serving_fn(model),
        input_signature=[tf.TensorSpec([1, image_size, image_size, 3], tf.uint8, name=LITERT_INPUT)],
    )
    flatbuffers = []
    with tempfile.TemporaryDirectory(prefix="beam_seg-litert-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        archive.write_out(saved, verbose=False)
        for quantization in quantizations:
            converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SERVING_DEFAULT])
            if quantization is not None:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantization == "float16":
                converter.target_spec.supported_types = [tf.float16]
            flatbuffers.append(converter.convert())
    return flatbuffers
