"""Download side: a published model (or a local training output) as a callable segmenter.

``load_model("user/name", revision="v...")`` downloads only ``saved_model/`` and ``model_config.json`` with
``snapshot_download`` (cached, resumable, retried by ``huggingface_hub``) and wraps the SavedModel's
``serving_default`` signature. The signature's string input is found from its ``structured_input_signature``,
not assumed, so any export with one string input works.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from beam_seg import hub
from beam_seg.export import CONFIG_NAME, SAVED_MODEL_DIR
from beam_seg.export import SERVING_DEFAULT as SIGNATURE

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["DOWNLOAD_PATTERNS", "ModelLoadError", "SegmentationModel", "load_model", "load_model_dir"]

# What load_model downloads: the SavedModel and its config, not the pictures or metrics.
DOWNLOAD_PATTERNS: tuple[str, ...] = (f"{SAVED_MODEL_DIR}/*", CONFIG_NAME)


class ModelLoadError(ValueError):
    """The directory or repository does not hold a usable SavedModel."""


class SegmentationModel:
    """A loaded segmenter: ``model(image_bytes or [image_bytes, ...]) -> {"mask": ..., "probabilities": ...}``.

    Attributes:
        path: The model directory (local, e.g. in the Hugging Face cache).
        config: ``model_config.json`` contents, or ``{}`` when the directory has none.
        input_key: Name of the signature's string input.
        output_keys: Names of the signature's outputs.
    """

    def __init__(self, path: str, signature: Any, config: dict[str, Any]) -> None:
        self.path = path
        self.config = config
        self._signature = signature
        self.input_key = _string_input(signature, path)
        self.output_keys = tuple(sorted(signature.structured_outputs))

    def __call__(self, images: bytes | Sequence[bytes]) -> dict[str, np.ndarray]:
        """Segments encoded images (JPEG, PNG, ... any size).

        Args:
            images: One encoded image, or a sequence of them.

        Returns:
            Every output of the signature as numpy: ``mask`` uint8 ``[N, S, S]`` class ids and ``probabilities``
            float32 ``[N, S, S, C]`` for a beam_seg export.
        """
        import tensorflow as tf

        batch = [bytes(images)] if isinstance(images, (bytes, bytearray)) else [bytes(b) for b in images]
        if not batch:
            raise ValueError("no images given")
        outputs = self._signature(**{self.input_key: tf.constant(batch, dtype=tf.string)})
        return {name: value.numpy() for name, value in outputs.items()}

    def __repr__(self) -> str:
        return f"SegmentationModel({self.path!r}, input={self.input_key!r}, outputs={list(self.output_keys)})"


def _string_input(signature: tf.types.experimental.ConcreteFunction, path: str) -> str:
    import tensorflow as tf

    _, kwargs = signature.structured_input_signature
    names = [name for name, spec in kwargs.items() if getattr(spec, "dtype", None) == tf.string]
    if len(names) != 1:
        found = {name: getattr(getattr(spec, "dtype", None), "name", type(spec).__name__) for name, spec in kwargs.items()}
        raise ModelLoadError(
            f"{SIGNATURE} of {path} must take exactly one string input (encoded images), found {found or 'none'}"
        )
    return names[0]


def load_model_dir(path: str) -> SegmentationModel:
    """Loads a local model directory: a training output, or a downloaded snapshot of a published repo.

    Raises:
        ModelLoadError: if ``<path>/saved_model`` is missing or lacks a ``serving_default`` signature.
    """
    import tensorflow as tf

    saved_model = os.path.join(path, SAVED_MODEL_DIR)
    if not tf.io.gfile.exists(os.path.join(saved_model, "saved_model.pb")):
        raise ModelLoadError(f"{saved_model} holds no saved_model.pb; is {path!r} a beam_seg model directory?")
    loaded = tf.saved_model.load(saved_model)
    if SIGNATURE not in loaded.signatures:
        raise ModelLoadError(f"{saved_model} has no {SIGNATURE!r} signature (found {sorted(loaded.signatures)})")
    config: dict[str, Any] = {}
    config_path = os.path.join(path, CONFIG_NAME)
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path, "r") as f:
            config = json.load(f)
    model = SegmentationModel(path, loaded.signatures[SIGNATURE], config)
    model._loaded = loaded  # Keeps the SavedModel's resources alive as long as the signature is used.
    return model


def load_model(
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    endpoint: str | None = None,
) -> SegmentationModel:
    """Downloads a published model (only ``saved_model/`` and ``model_config.json``) and loads it.

    Args:
        repo_id: Model repository, ``user/name``.
        revision: Version tag, branch or commit sha (default ``main``, the latest published version).
        token: Token for private repos (default: ``HF_TOKEN`` / the stored login).
        cache_dir: Hugging Face cache directory (default: the standard one).
        endpoint: Hub URL (default: ``HF_ENDPOINT`` read now, else https://huggingface.co).

    Raises:
        beam_seg.hub.HubError: one line for 401/403/404 or an unreachable Hub.
        ModelLoadError: if the snapshot holds no usable SavedModel.
    """
    from huggingface_hub import snapshot_download

    endpoint = endpoint or hub.resolve_endpoint()
    with hub.hub_call("downloading", repo_id=repo_id, endpoint=endpoint):
        path = snapshot_download(
            repo_id,
            revision=revision,
            token=token,
            cache_dir=cache_dir,
            endpoint=endpoint,
            allow_patterns=list(DOWNLOAD_PATTERNS),
        )
    return load_model_dir(path)
