"""The one model loader: a training output directory (local or ``gs://``) or a published Hub repo at a revision.

``load_model("outputs/model")``, ``load_model("gs://b/run/model")``, ``load_model("hf://user/name@v3")`` (or
``load_model("user/name", revision="v3")``) all return a :class:`SegmentationModel`, and every failure is a
:class:`ModelLoadError` whose message is one line. From the Hub only ``saved_model/`` and ``model_config.json`` are
downloaded (``snapshot_download``: cached, resumable, retried by ``huggingface_hub``). TensorFlow is imported when a
model is loaded, not before.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from beam_seg import fs
from beam_seg.formats import (
    CONFIG_NAME,
    OUTPUT_MASK,
    OUTPUT_PROBABILITIES,
    SAVED_MODEL_DIR,
    SERVING_DEFAULT,
    SERVING_IMAGES,
)

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DOWNLOAD_PATTERNS",
    "ImageDecodeError",
    "ModelLoadError",
    "Prediction",
    "SegmentationModel",
    "check_location",
    "load_model",
    "parse_location",
]

# What is downloaded from the Hub: the SavedModel and its config, not the pictures or metrics.
DOWNLOAD_PATTERNS: tuple[str, ...] = (f"{SAVED_MODEL_DIR}/*", CONFIG_NAME)
HUB_SCHEME = "hf://"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class ModelLoadError(ValueError):
    """The location holds no usable model (missing files, a bad revision, no access); the message is one line."""


class ImageDecodeError(ValueError):
    """An image given to the model does not decode (not an image, truncated, corrupt); the message is one line.

    The model decodes a whole batch in one call, so the error names no image: call it again one image at a time to
    find which (:mod:`beam_seg.inference` does).
    """


class Prediction(NamedTuple):
    """What the model returns for a batch of images.

    Attributes:
        mask: uint8 ``[N, S, S]`` class ids.
        probabilities: float32 ``[N, S, S, C]``.
    """

    mask: np.ndarray
    probabilities: np.ndarray


class SegmentationModel:
    """A loaded model: call it with encoded images, or :meth:`predict_images` with pixel arrays.

    Attributes:
        path: The local (or ``gs://``) model directory, e.g. in the Hugging Face cache.
        config: The ``model_config.json`` contents.
        image_size: Side ``S`` of the masks and probabilities.
        class_names: Class names in id order.
        palette: RGB colour per class, in id order (uint8 ``[C, 3]``).
    """

    def __init__(self, path: str, loaded: Any, config: dict[str, Any]) -> None:
        self.path = path
        self.config = config
        self._loaded = loaded  # Keeps the SavedModel's resources alive as long as its signatures are used.
        self._from_bytes = loaded.signatures[SERVING_DEFAULT]
        self._from_images = loaded.signatures.get(SERVING_IMAGES)
        self._input_key = _string_input(self._from_bytes, path)
        try:
            self.image_size = int(config["image_size"])
            self.class_names = tuple(str(c) for c in config["classes"])
            self.palette = np.array([config["palette"][name] for name in self.class_names], np.uint8)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelLoadError(f"{fs.join(path, CONFIG_NAME)} lacks {e}; re-export the model") from None

    def __call__(self, images: bytes | Sequence[bytes]) -> Prediction:
        """Segments encoded images (JPEG, PNG, BMP, GIF; any size).

        Args:
            images: One encoded image, or a sequence of them.

        Raises:
            ImageDecodeError: if an image of the batch does not decode.
        """
        import tensorflow as tf

        batch = [bytes(images)] if isinstance(images, (bytes, bytearray)) else [bytes(b) for b in images]
        if not batch:
            raise ValueError("no images given")
        try:
            outputs = self._from_bytes(**{self._input_key: tf.constant(batch, dtype=tf.string)})
        except tf.errors.InvalidArgumentError as e:  # The signature's decode ops: its only data-dependent ones.
            raise ImageDecodeError(_tf_message(e)) from None
        return _prediction(outputs)

    def predict_images(self, images: np.ndarray) -> Prediction:
        """Segments uint8 RGB arrays ``[H, W, 3]`` or ``[N, H, W, 3]`` (resized inside the model)."""
        import tensorflow as tf

        if self._from_images is None:
            raise ModelLoadError(f"{self.path} has no {SERVING_IMAGES!r} signature; re-export the model")
        array = np.asarray(images, dtype=np.uint8)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4 or array.shape[-1] != 3:
            raise ValueError(f"expected uint8 RGB images [H, W, 3] or [N, H, W, 3], got shape {array.shape}")
        (input_key,) = self._from_images.structured_input_signature[1]
        return _prediction(self._from_images(**{input_key: tf.constant(array)}))

    def __repr__(self) -> str:
        return f"SegmentationModel({self.path!r}, image_size={self.image_size}, classes={list(self.class_names)})"


def _prediction(outputs: dict[str, tf.Tensor]) -> Prediction:
    return Prediction(outputs[OUTPUT_MASK].numpy(), outputs[OUTPUT_PROBABILITIES].numpy())


# Lines of a TensorFlow graph error that say where, not what: its header, the node, the missing stack, the node list.
_TF_WHERE = re.compile(r"^(Graph execution error:?|Detected at node .*|<stack traces unavailable>|\s*\[\[.*\]\].*)$")
_TF_SUFFIX = re.compile(r"\s*\[Op:\w+\](\s*name:.*)?$")


def _tf_message(error: Exception) -> str:
    """What a TensorFlow error says in one line (e.g. ``jpeg::Uncompress failed. Invalid JPEG data ...``)."""
    lines = [line.strip() for line in (getattr(error, "message", None) or str(error)).splitlines()]
    what = [line for line in lines if line and not _TF_WHERE.match(line)]
    return _TF_SUFFIX.sub("", what[0] if what else "").strip() or type(error).__name__


def _string_input(signature: Any, path: str) -> str:
    """The name of the signature's one string input (encoded images), found from its input signature."""
    import tensorflow as tf

    _, kwargs = signature.structured_input_signature
    names = [name for name, spec in kwargs.items() if getattr(spec, "dtype", None) == tf.string]
    if len(names) != 1:
        found = {
            name: getattr(getattr(spec, "dtype", None), "name", type(spec).__name__) for name, spec in kwargs.items()
        }
        raise ModelLoadError(
            f"{SERVING_DEFAULT} of {path} must take exactly one string input (encoded images), found {found or 'none'}"
        )
    return names[0]


def parse_location(location: str, revision: str | None = None) -> tuple[str, str | None]:
    """Splits a model location into ``(kind, revision)``, ``kind`` being ``"dir"`` or ``"hub"``.

    ``hf://owner/name[@revision]`` is a Hub repo; an existing local path or a URI (``gs://``) is a directory;
    another ``owner/name`` is a Hub repo too.

    Raises:
        ModelLoadError: when the location is none of these, or gives a revision twice.
    """
    if location.startswith(HUB_SCHEME):
        repo_id, _, at = location[len(HUB_SCHEME) :].partition("@")
        if at and revision and at != revision:
            raise ModelLoadError(f"{location!r} names revision {at!r} but revision={revision!r} was given too")
        if not _REPO_ID.fullmatch(repo_id):
            raise ModelLoadError(f"{location!r} is not hf://<owner>/<name>[@<revision>]")
        return "hub", at or revision
    if fs.is_remote(location) or os.path.exists(location):
        return "dir", None
    if _REPO_ID.fullmatch(location):
        return "hub", revision
    raise ModelLoadError(
        f"model {location!r} is neither a directory nor a Hub repo (use a training output directory, gs://..., or "
        "hf://<owner>/<name>[@<revision>])"
    )


def check_location(location: str) -> None:
    """Refuses a location that cannot hold a model, cheaply: no download, no TensorFlow (for a job's driver).

    A directory (local or ``gs://``) must hold ``model_config.json``, which training writes last; a Hub location
    must be well formed (whether it exists is found when it is loaded).

    Raises:
        ModelLoadError: one line.
    """
    kind, _ = parse_location(location)
    config_path = fs.join(location, CONFIG_NAME)
    if kind == "dir" and not fs.exists(config_path):
        raise ModelLoadError(
            f"{config_path} does not exist: {location!r} is not a complete training output (model_config.json is "
            "written last by python -m beam_seg.train)"
        )


def _load_dir(path: str) -> SegmentationModel:
    import tensorflow as tf

    config_path = fs.join(path, CONFIG_NAME)
    if not fs.exists(config_path):
        raise ModelLoadError(
            f"{config_path} does not exist: {path!r} is not a complete training output (model_config.json is written "
            "last by python -m beam_seg.train)"
        )
    try:
        config = fs.read_json(config_path)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    saved_model = fs.join(path, str(config.get("saved_model_dir", SAVED_MODEL_DIR)))
    if not fs.exists(fs.join(saved_model, "saved_model.pb")):
        raise ModelLoadError(f"{saved_model} holds no saved_model.pb; the model directory is incomplete")
    loaded = tf.saved_model.load(saved_model)
    if SERVING_DEFAULT not in loaded.signatures:
        raise ModelLoadError(f"{saved_model} has no {SERVING_DEFAULT!r} signature (found {sorted(loaded.signatures)})")
    return SegmentationModel(path, loaded, config)


def load_model(
    location: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    cache_dir: str | None = None,
    endpoint: str | None = None,
) -> SegmentationModel:
    """Loads a model for inference: ``model(image_bytes) -> Prediction(mask, probabilities)``.

    Args:
        location: A training output directory (local or ``gs://``), ``hf://owner/name[@revision]`` or
            ``owner/name``.
        revision: Hub version tag, branch or commit sha (default: ``main``, the latest published version).
        token: Hub token for private repos (default: ``HF_TOKEN`` or the saved login).
        cache_dir: Hugging Face cache directory (default: the standard one).
        endpoint: Hub URL (default: ``HF_ENDPOINT``, else https://huggingface.co).

    Raises:
        ModelLoadError: one line: missing files, unknown repo or revision, no access, Hub unreachable.
    """
    kind, revision = parse_location(location, revision)
    if kind == "dir":
        return _load_dir(location)
    from huggingface_hub import snapshot_download

    from beam_seg.hub import auth, errors

    repo_id = location.removeprefix(HUB_SCHEME).partition("@")[0]
    endpoint = endpoint or auth.resolve_endpoint()
    try:
        with errors.hub_call("downloading", repo_id=repo_id, endpoint=endpoint):
            path = snapshot_download(
                repo_id,
                revision=revision,
                token=token,
                cache_dir=cache_dir,
                endpoint=endpoint,
                allow_patterns=list(DOWNLOAD_PATTERNS),
            )
    except errors.HubError as e:
        raise ModelLoadError(str(e)) from e
    return _load_dir(path)
