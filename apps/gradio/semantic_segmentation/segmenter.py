"""Model loading and prediction for the pet segmentation Space, with no Gradio and no import-time work.

Self-contained on purpose: a Space installs only ``requirements.txt``, never the ``beam_seg`` package.

* :class:`ModelSource` says where the model comes from: a local training output directory
  (``BEAM_SEG_MODEL_DIR``, which wins) or a Hub model repo at a revision, downloaded with
  ``huggingface_hub.snapshot_download`` (token ``HF_TOKEN``, endpoint ``HF_ENDPOINT``).
* :class:`LazyModel` loads it once, on first use, under a lock; a failed load raises :class:`ModelLoadError`
  with one human sentence (never a token) and is retried on the next request.
* :func:`segment` is the pure prediction: encoded image bytes + a loaded model -> overlay, colour mask and
  per-class pixel percentages. Decoding, resizing and normalisation happen inside the SavedModel
  (its ``serving_default`` signature takes encoded images); this module only draws the result.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "MODEL_DIR_ENV",
    "DecodedImage",
    "LazyModel",
    "ModelLoadError",
    "ModelSource",
    "NotAnImageError",
    "Segmentation",
    "SegmentationModel",
    "class_percentages",
    "colorize",
    "download_model",
    "load_model",
    "not_an_image_message",
    "overlay",
    "read_image",
    "segment",
]

logger = logging.getLogger(__name__)

MODEL_DIR_ENV = "BEAM_SEG_MODEL_DIR"
TOKEN_ENV = "HF_TOKEN"
ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_ENDPOINT = "https://huggingface.co"
SIGNATURE = "serving_default"
CONFIG_NAME = "model_config.json"
SAVED_MODEL_DIR = "saved_model"
# Only what inference needs; the model repo also holds pictures, metrics and the card.
DOWNLOAD_PATTERNS: tuple[str, ...] = (CONFIG_NAME, f"{SAVED_MODEL_DIR}/*")
OVERLAY_ALPHA = 0.5
MAX_DISPLAY_SIDE = 1024
# Used when model_config.json has no palette entry for a class.
FALLBACK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 127, 14),
    (31, 119, 180),
    (255, 221, 0),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
)
# Encodings the SavedModel decodes itself (tf.io.decode_image), by PIL format -> modes passed as they are.
_PASS_THROUGH: Mapping[str, frozenset[str]] = {
    "JPEG": frozenset({"RGB", "L"}),
    "PNG": frozenset({"RGB", "RGBA", "L", "LA", "P"}),
}
_SHA = re.compile(r"[0-9a-f]{40}")
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9_]{4,}")


class ModelLoadError(RuntimeError):
    """The model cannot be loaded; the message is one sentence meant for the app's user."""


class NotAnImageError(ValueError):
    """The upload is not an image the app can read; the message is meant for the app's user."""


def not_an_image_message(name: str | None = None) -> str:
    """The user-facing sentence for an upload that is not a readable image."""
    what = f"The file {name!r}" if name else "The uploaded file"
    return f"{what} is not an image this app can read: upload a JPEG or PNG picture (GIF, BMP and WebP work too)."


def _rendered(value: str | None) -> str | None:
    """``value`` unless it is empty or a placeholder the publisher left unrendered (it then starts with '$')."""
    value = (value or "").strip()
    return None if not value or value.startswith("$") else value


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """Where the model comes from: ``local_dir`` if set, else ``repo_id`` at ``revision`` on ``endpoint``.

    Attributes:
        repo_id: Hub model repository ``user/name``.
        version: The published version (a tag), for display.
        revision: What to download: the exact commit if known, else the version, else ``main``.
        local_dir: A training output directory (``saved_model/`` + ``model_config.json``).
        endpoint: Hub endpoint (``None``: huggingface.co).
        repo_url: The model repo's web page, for display.
        token: Hub token for private repos (never shown, never in ``repr``).
    """

    repo_id: str | None = None
    version: str | None = None
    revision: str | None = None
    local_dir: str | None = None
    endpoint: str | None = None
    repo_url: str | None = None
    token: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        repo_id: str | None,
        version: str | None,
        revision: str | None = None,
        repo_url: str | None = None,
    ) -> ModelSource:
        """Builds the source from the rendered template values and the environment.

        ``BEAM_SEG_MODEL_DIR`` wins over the repo; ``HF_TOKEN`` and ``HF_ENDPOINT`` are read here, once,
        because ``huggingface_hub`` binds its endpoint constant at import.
        """
        version = _rendered(version)
        repo_id = _rendered(repo_id)
        endpoint = (environ.get(ENDPOINT_ENV) or "").strip().rstrip("/") or None
        return cls(
            repo_id=repo_id,
            version=version,
            revision=_rendered(revision) or version,
            local_dir=_rendered(environ.get(MODEL_DIR_ENV)),
            endpoint=endpoint,
            repo_url=_rendered(repo_url) or (f"{endpoint or DEFAULT_ENDPOINT}/{repo_id}" if repo_id else None),
            token=environ.get(TOKEN_ENV) or None,
        )

    def describe(self) -> str:
        """A short Markdown description of the model, for the page header."""
        if self.local_dir:
            return f"the local model in `{self.local_dir}`"
        if not self.repo_id:
            return "no model yet (this is the unrendered Space template)"
        text = f"[`{self.repo_id}`]({self.repo_url}) version `{self.version or 'main'}`"
        if self.revision and _SHA.fullmatch(self.revision):
            text += f" (commit `{self.revision[:7]}`)"
        return text


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


class SegmentationModel:
    """A loaded SavedModel and its ``model_config.json``: call it with encoded image bytes.

    Attributes:
        class_names: Class names in id order.
        palette: uint8 ``[C, 3]`` RGB colour per class, in id order.
        image_size: Side ``S`` of the predicted masks.
        input_key: Name of the ``serving_default`` string input (read from the signature).
        description: Where the model came from, for messages.
    """

    def __init__(
        self,
        predict: Callable[[bytes], np.ndarray],
        *,
        class_names: Sequence[str],
        palette: np.ndarray,
        image_size: int,
        input_key: str = "",
        description: str = "",
        keepalive: Any = None,
    ) -> None:
        self._predict = predict
        self._keepalive = keepalive  # The loaded SavedModel: its signature needs it alive.
        self.class_names = tuple(class_names)
        self.palette = np.asarray(palette, dtype=np.uint8).reshape(len(self.class_names), 3)
        self.image_size = int(image_size)
        self.input_key = input_key
        self.description = description

    def __call__(self, image_bytes: bytes) -> np.ndarray:
        """Segments one encoded image; returns uint8 class ids ``[S, S]``."""
        return self._predict(image_bytes)

    @classmethod
    def from_dir(cls, model_dir: str, *, description: str | None = None) -> SegmentationModel:
        """Loads ``<model_dir>/saved_model`` (``serving_default``) and ``<model_dir>/model_config.json``.

        Raises:
            ModelLoadError: if a file is missing, unreadable, or the signature is not the expected one.
        """
        description = description or model_dir
        config = _read_config(model_dir, description)
        class_names, palette = _classes_and_palette(config, description)
        saved_model = os.path.join(model_dir, str(config.get("saved_model_dir") or SAVED_MODEL_DIR))
        if not os.path.isfile(os.path.join(saved_model, "saved_model.pb")):
            raise ModelLoadError(f"The model {description} has no SavedModel in {SAVED_MODEL_DIR}/: re-export it.")

        import tensorflow as tf  # Heavy: only when the first request loads the model.

        try:
            loaded = tf.saved_model.load(saved_model)
        except Exception as e:
            logger.exception("tf.saved_model.load(%s) failed", saved_model)
            raise ModelLoadError(
                f"The SavedModel of {description} could not be loaded by TensorFlow {tf.__version__} "
                f"({type(e).__name__}): check the versions in requirements.txt."
            ) from None
        if SIGNATURE not in loaded.signatures:
            raise ModelLoadError(
                f"The SavedModel of {description} has no {SIGNATURE!r} signature "
                f"(it has {sorted(loaded.signatures)}): re-export it with python -m beam_seg.train."
            )
        signature = loaded.signatures[SIGNATURE]
        _, inputs = signature.structured_input_signature
        string_inputs = [key for key, spec in inputs.items() if spec.dtype == tf.string]
        if len(string_inputs) != 1:
            raise ModelLoadError(
                f"The {SIGNATURE!r} signature of {description} takes {sorted(inputs)}, "
                "not one string input of encoded images: re-export it with python -m beam_seg.train."
            )
        input_key = string_inputs[0]

        def predict(image_bytes: bytes) -> np.ndarray:
            outputs = signature(**{input_key: tf.constant([image_bytes], dtype=tf.string)})
            if "mask" in outputs:
                mask = outputs["mask"].numpy()[0]
            else:
                mask = np.argmax(outputs["probabilities"].numpy()[0], axis=-1)
            return np.asarray(mask, dtype=np.uint8)

        image_size = int(config.get("image_size") or 0)
        logger.info(
            "loaded %s: classes %s, input %r, %dx%d", description, class_names, input_key, image_size, image_size
        )
        return cls(
            predict,
            class_names=class_names,
            palette=palette,
            image_size=image_size,
            input_key=input_key,
            description=description,
            keepalive=loaded,
        )


def _read_config(model_dir: str, description: str) -> dict[str, Any]:
    path = os.path.join(model_dir, CONFIG_NAME)
    if not os.path.isdir(model_dir):
        raise ModelLoadError(
            f"The model directory {model_dir!r} does not exist: point {MODEL_DIR_ENV} at the "
            "output directory of python -m beam_seg.train."
        )
    if not os.path.isfile(path):
        raise ModelLoadError(
            f"The model {description} has no {CONFIG_NAME}: is it the output directory of python -m beam_seg.train?"
        )
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"The {CONFIG_NAME} of {description} is not readable JSON ({e}).") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"The {CONFIG_NAME} of {description} is not a JSON object.")
    return config


def _classes_and_palette(config: Mapping[str, Any], description: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Class names in id order (``classes``, else ``id2label``) and their colours (``palette``)."""
    names = config.get("classes")
    if not names and isinstance(config.get("id2label"), Mapping):
        id2label = config["id2label"]
        names = [id2label[k] for k in sorted(id2label, key=int)]
    if not names:
        raise ModelLoadError(f"The {CONFIG_NAME} of {description} names no classes ('classes' or 'id2label').")
    palette_map = config.get("palette") or {}
    colours = []
    for i, name in enumerate(names):
        rgb = palette_map.get(name) if isinstance(palette_map, Mapping) else None
        colours.append(rgb if rgb is not None and len(rgb) == 3 else FALLBACK_PALETTE[i % len(FALLBACK_PALETTE)])
    return tuple(str(n) for n in names), np.clip(np.asarray(colours, dtype=np.int64), 0, 255).astype(np.uint8)


def _scrub(text: str, token: str | None) -> str:
    """Removes anything that looks like a token from ``text`` (defence in depth for messages)."""
    if token:
        text = text.replace(token, "***")
    return _TOKEN_LIKE.sub("hf_***", text)


def _explain_hub_error(error: Exception, source: ModelSource) -> str:
    """One human sentence for a ``snapshot_download`` failure; never includes the token."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo, revision, hub = source.repo_id, source.revision or "main", source.endpoint or DEFAULT_ENDPOINT
    secret = f"the Space secret {TOKEN_ENV}"
    if isinstance(error, GatedRepoError):
        return (
            f"The model repository {repo!r} is gated: accept its access conditions on {hub} with the account "
            f"whose read token is in {secret}."
        )
    if isinstance(error, RepositoryNotFoundError):
        if source.token:
            return (
                f"The model repository {repo!r} was not found on {hub}, or the token in {secret} cannot read it: "
                "check the repository name and that the token has read access."
            )
        return (
            f"The model repository {repo!r} was not found on {hub}: check its name, or if it is private add a "
            f"read token as {secret}."
        )
    if isinstance(error, RevisionNotFoundError):
        return (
            f"The model repository {repo!r} has no revision {revision!r} (tag, branch or commit): publish that "
            "version again or render the Space for an existing one."
        )
    if isinstance(error, HFValidationError):
        return f"{repo!r} is not a valid model repository id: it must look like 'user/name'."
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status == 401:
            return (
                f"The Hub at {hub} rejected the token in {secret} (401 Unauthorized): replace it with a valid "
                "read token."
            )
        if status == 403:
            return (
                f"The token in {secret} is not allowed to read {repo!r} (403 Forbidden): use a token with read "
                "access to it."
            )
        return (
            f"The Hub at {hub} answered HTTP {status} while downloading {repo!r} at {revision!r}: try again in "
            "a minute."
        )
    if isinstance(error, (LocalEntryNotFoundError, OSError)):
        return (
            f"Could not download {repo!r} at {revision!r} from {hub} and no copy is cached: check the network, "
            f"or set {MODEL_DIR_ENV} to a local model directory."
        )
    return f"Downloading {repo!r} at {revision!r} from {hub} failed ({type(error).__name__})."


def download_model(source: ModelSource) -> str:
    """Downloads the inference files of ``source.repo_id`` at ``source.revision``; returns the local folder.

    Raises:
        ModelLoadError: with one sentence for a missing repo, a bad revision, a private or gated repo without
            access, a rejected token or an unreachable Hub.
    """
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(
            repo_id=source.repo_id,
            revision=source.revision,
            allow_patterns=list(DOWNLOAD_PATTERNS),
            token=source.token,
            endpoint=source.endpoint,
        )
    except Exception as e:
        message = _scrub(_explain_hub_error(e, source), source.token)
        logger.warning(
            "snapshot_download(%s, revision=%s) failed: %s: %s",
            source.repo_id,
            source.revision,
            type(e).__name__,
            _scrub(str(e), source.token),
        )
        raise ModelLoadError(message) from None


def load_model(source: ModelSource) -> SegmentationModel:
    """Loads the model ``source`` names (local directory first, else the Hub).

    Raises:
        ModelLoadError: if there is no model configured or it cannot be downloaded or loaded.
    """
    if source.local_dir:
        return SegmentationModel.from_dir(source.local_dir, description=f"in {MODEL_DIR_ENV}={source.local_dir}")
    if not source.repo_id:
        raise ModelLoadError(
            "No model is configured: this is the unrendered Space template; render it with python -m "
            f"beam_seg.publish, or set {MODEL_DIR_ENV} to the output directory of python -m beam_seg.train."
        )
    local = download_model(source)
    return SegmentationModel.from_dir(local, description=f"{source.repo_id!r} at {source.revision or 'main'!r}")


class LazyModel:
    """Loads the model on the first :meth:`get`, once, thread-safely; failures are retried on the next call."""

    def __init__(self, source: ModelSource, loader: Callable[[ModelSource], SegmentationModel] = load_model) -> None:
        self.source = source
        self._loader = loader
        self._lock = threading.Lock()
        self._model: SegmentationModel | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model is already in memory."""
        return self._model is not None

    def get(self) -> SegmentationModel:
        """The loaded model.

        Raises:
            ModelLoadError: if it cannot be loaded (the next call tries again).
        """
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._loader(self.source)
                model = self._model
        return model


# --------------------------------------------------------------------------------------------------
# Prediction (pure)
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DecodedImage:
    """An upload, checked: RGB pixels for display and the encoded bytes to give the model."""

    pixels: np.ndarray
    model_bytes: bytes


@dataclasses.dataclass(frozen=True)
class Segmentation:
    """What the app shows for one image.

    Attributes:
        overlay: uint8 ``[H, W, 3]``: the image with the colour mask blended in.
        mask: uint8 ``[H, W, 3]``: the class mask in palette colours, at the overlay's size.
        class_mask: uint8 ``[S, S]``: class ids as the model predicted them.
        percentages: ``{class name: percent of mask pixels}`` in class order; sums to 100.
    """

    overlay: np.ndarray
    mask: np.ndarray
    class_mask: np.ndarray
    percentages: dict[str, float]


def read_image(data: bytes, *, name: str | None = None) -> DecodedImage:
    """Checks that ``data`` is a readable image and picks the bytes to send to the SavedModel.

    JPEG and 8-bit PNG go to the model untouched (it decodes them itself); other formats (WebP, GIF,
    BMP, TIFF, 16-bit PNG, CMYK JPEG ...) and photos with an EXIF rotation are re-encoded losslessly as
    PNG of what is displayed, so the mask always lines up with the picture.

    Raises:
        NotAnImageError: if ``data`` is empty, not an image, truncated or absurdly large.
    """
    if not data:
        raise NotAnImageError(not_an_image_message(name))
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            fmt, mode = image.format, image.mode
            rotated = image.getexif().get(0x0112, 1) not in (0, 1)
            rgb = (ImageOps.exif_transpose(image) if rotated else image).convert("RGB")
    except Image.DecompressionBombError:
        what = f"The image {name!r}" if name else "The image"
        raise NotAnImageError(f"{what} has too many pixels to process: upload a smaller picture.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise NotAnImageError(not_an_image_message(name)) from None
    if not rotated and mode in _PASS_THROUGH.get(fmt or "", ()):
        return DecodedImage(np.asarray(rgb), data)
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return DecodedImage(np.asarray(rgb), buffer.getvalue())


def colorize(class_mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class ids ``[H, W]`` -> uint8 RGB ``[H, W, 3]`` in palette colours (ids beyond it take the last colour)."""
    palette = np.asarray(palette, dtype=np.uint8)
    return palette[np.minimum(class_mask.astype(np.intp), len(palette) - 1)]


def overlay(pixels: np.ndarray, colours: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """Blends ``colours`` over ``pixels`` (both uint8 ``[H, W, 3]``): ``(1 - alpha) * pixels + alpha * colours``."""
    blended = (1.0 - alpha) * pixels.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def class_percentages(class_mask: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """``{class: percent of pixels}`` of a class-id mask, in class order (ids beyond the names are ignored)."""
    counts = np.bincount(class_mask.astype(np.intp).ravel(), minlength=len(class_names))[: len(class_names)]
    total = max(int(counts.sum()), 1)
    return {name: 100.0 * int(count) / total for name, count in zip(class_names, counts, strict=True)}


def _display_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def segment(
    data: bytes,
    model: SegmentationModel,
    *,
    name: str | None = None,
    alpha: float = OVERLAY_ALPHA,
    max_side: int = MAX_DISPLAY_SIDE,
) -> Segmentation:
    """Segments one encoded image: the pure function behind the app's ``predict`` endpoint.

    Args:
        data: The uploaded file's bytes (JPEG, PNG, ... any size).
        model: A :class:`SegmentationModel` (or any callable ``bytes -> uint8 [S, S]`` with ``class_names``
            and ``palette``).
        name: The upload's file name, for messages.
        alpha: Opacity of the mask in the overlay.
        max_side: Longest side of the returned pictures (larger uploads are shown scaled down).

    Raises:
        NotAnImageError: if ``data`` is not a readable image.
    """
    image = read_image(data, name=name)
    class_mask = np.asarray(model(image.model_bytes), dtype=np.uint8)
    height, width = image.pixels.shape[:2]
    size = _display_size(width, height, max_side)
    pixels = image.pixels
    if size != (width, height):
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
    # Class ids are resized with nearest neighbour, never interpolated.
    ids = np.asarray(Image.fromarray(class_mask).resize(size, Image.Resampling.NEAREST))
    colours = colorize(ids, model.palette)
    return Segmentation(
        overlay=overlay(pixels, colours, alpha),
        mask=colours,
        class_mask=class_mask,
        percentages=class_percentages(class_mask, model.class_names),
    )
