"""LiteRT (TFLite) export of a trained model, for runtimes without TensorFlow: ``ai-edge-litert`` and LiteRT.js.

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
from collections.abc import Callable
from typing import TYPE_CHECKING

from beam_seg.formats import LITERT_INPUT, OUTPUT_MASK, OUTPUT_PROBABILITIES, SERVING_DEFAULT

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["convert"]


def _serving_fn(model: keras.Model) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """The LiteRT endpoint: uint8 pixels → class ids and probabilities."""
    import tensorflow as tf

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        logits = model(tf.cast(image, tf.float32), training=False)
        probabilities = tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1)
        return {OUTPUT_MASK: tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8), OUTPUT_PROBABILITIES: probabilities}

    return serve


def convert(model: keras.Model, *, image_size: int) -> bytes:
    """The float32 LiteRT flatbuffer of ``model`` with the signature in the module docstring.

    Args:
        model: A float32 model: float pixels ``[N, S, S, 3]`` in ``[0, 255]`` → logits.
        image_size: The model's input side ``S``.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        SERVING_DEFAULT,
        _serving_fn(model),
        input_signature=[tf.TensorSpec([1, image_size, image_size, 3], tf.uint8, name=LITERT_INPUT)],
    )
    with tempfile.TemporaryDirectory(prefix="beam_seg-litert-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SERVING_DEFAULT])
        return converter.convert()
