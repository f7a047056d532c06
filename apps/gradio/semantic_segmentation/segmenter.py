"""Model loading and prediction for the pet segmentation Space: LiteRT, PIL and NumPy; no Gradio, no TensorFlow.

Self-contained on purpose: a Space installs only ``requirements.txt``, never the ``beam_seg`` package.

* :class:`ModelSource` says where the model comes from: a local training output directory
  (``BEAM_SEG_MODEL_DIR``, which wins) or a Hub model repo at a revision, whose two inference files
  (``model.tflite``, ``model_config.json``) are fetched with ``huggingface_hub.hf_hub_download`` (token
  ``HF_TOKEN``, endpoint ``HF_ENDPOINT``). On the Space they were already fetched at build time
  (``preload_from_hub`` in README.md), so at the pinned commit the download is a cache hit that sends no request.
* :class:`LazyModel` loads it once, on first use, under a lock; a failed load raises :class:`ModelLoadError`
  with one human sentence (never a token) and is retried on the next request.
* :func:`segment` is the pure prediction: encoded image bytes + a loaded model -> overlay, colour mask and
  per-class pixel percentages.

The LiteRT model (``serving_default``: ``image`` uint8 ``[1, S, S, 3]`` -> ``mask`` uint8 ``[1, S, S]``,
``probabilities`` float32 ``[1, S, S, C]``) takes the photo already resized; normalisation is inside it. The
photo is decoded with PIL, converted to RGB and resized to S x S with PIL's bilinear filter, which matches the
SavedModel's antialiased bilinear resize (beam_seg/train/litert.py).

Orientation: the model sees the pixels in their stored order, ignoring any EXIF Orientation tag, like training
(TensorFlow's decoders ignore EXIF, and the records keep the orientation the trimaps were drawn in) and every
other beam_seg model consumer. The pictures shown (overlay and mask) are then turned the way the EXIF tag says,
the photo and its mask by the same transposition, so they look like the upload does in a browser and still line
up pixel for pixel.
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
from typing import Any, NamedTuple, Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "MODEL_DIR_ENV",
    "MODEL_FILES",
    "DecodedImage",
    "LazyModel",
    "ModelLoadError",
    "ModelSource",
    "NotAnImageError",
    "Prediction",
    "Segmentation",
    "SegmentationModel",
    "class_percentages",
    "colorize",
    "download_model",
    "load_model",
    "model_input",
    "not_an_image_message",
    "overlay",
    "read_image",
    "segment",
    "upsample_classes",
]

logger = logging.getLogger(__name__)

MODEL_DIR_ENV = "BEAM_SEG_MODEL_DIR"
TOKEN_ENV = "HF_TOKEN"
ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_ENDPOINT = "https://huggingface.co"
SIGNATURE = "serving_default"
INPUT_NAME = "image"
OUTPUT_MASK = "mask"
OUTPUT_PROBABILITIES = "probabilities"
CONFIG_NAME = "model_config.json"
LITERT_NAME = "model.tflite"
# Only what inference needs (the model repo also holds the SavedModel, pictures, metrics and the card); the Space
# README preloads the same files.
MODEL_FILES: tuple[str, ...] = (CONFIG_NAME, LITERT_NAME)
MAX_DISPLAY_SIDE = 1024
# Opacity of each class's colour over the photo in the overlay (others: DEFAULT_ALPHA). The thin border band is
# nearly opaque and the background only tinted, so pet and border stay apart; the pet also gets an opaque outline.
CLASS_ALPHA: Mapping[str, float] = {"background": 0.25, "border": 0.85}
DEFAULT_ALPHA = 0.5
OUTLINE_CLASS = "pet"
OUTLINE_WIDTH = 2
# Used when model_config.json has no palette entry for a class.
FALLBACK_PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 127, 14),
    (31, 119, 180),
    (255, 221, 0),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
)
_EXIF_ORIENTATION = 0x0112
# EXIF Orientation -> the transposition that shows the stored pixels upright (as PIL's ImageOps.exif_transpose).
_UPRIGHT: Mapping[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
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
        local_dir: A training output directory (``model.tflite`` + ``model_config.json``).
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


class Prediction(NamedTuple):
    """The LiteRT model's outputs for one image, on its S x S grid.

    Attributes:
        mask: uint8 ``[S, S]`` class ids.
        probabilities: float32 ``[S, S, C]`` class probabilities.
    """

    mask: np.ndarray
    probabilities: np.ndarray


class Model(Protocol):
    """What :func:`segment` needs of a model (:class:`SegmentationModel`, or a stand-in in tests)."""

    class_names: tuple[str, ...]
    palette: np.ndarray
    image_size: int

    def __call__(self, pixels: np.ndarray) -> Prediction:
        """Segments uint8 RGB ``[S, S, 3]`` pixels."""
        ...


class SegmentationModel:
    """The LiteRT model (``model.tflite``) and its ``model_config.json``: call it with S x S RGB pixels.

    Attributes:
        class_names: Class names in id order.
        palette: uint8 ``[C, 3]`` RGB colour per class, in id order.
        image_size: Side ``S`` of the model's input and of its masks.
        description: Where the model came from, for messages.
    """

    def __init__(
        self,
        runner: Callable[..., Mapping[str, np.ndarray]],
        *,
        class_names: Sequence[str],
        palette: np.ndarray,
        image_size: int,
        description: str = "",
        keepalive: Any = None,
    ) -> None:
        self._runner = runner
        self._keepalive = keepalive  # The Interpreter: its signature runner needs it alive.
        self._lock = threading.Lock()  # A LiteRT interpreter runs one inference at a time.
        self.class_names = tuple(class_names)
        self.palette = np.asarray(palette, dtype=np.uint8).reshape(len(self.class_names), 3)
        self.image_size = int(image_size)
        self.description = description

    def __call__(self, pixels: np.ndarray) -> Prediction:
        """Segments uint8 RGB ``[S, S, 3]`` pixels (see :func:`model_input`)."""
        batch = np.ascontiguousarray(pixels, dtype=np.uint8)[None]
        with self._lock:
            outputs = self._runner(**{INPUT_NAME: batch})
            probabilities = np.array(outputs[OUTPUT_PROBABILITIES][0], dtype=np.float32)
            mask = np.array(outputs[OUTPUT_MASK][0], dtype=np.uint8)
        return Prediction(mask, probabilities)

    @classmethod
    def from_dir(cls, model_dir: str, *, description: str | None = None) -> SegmentationModel:
        """Loads ``<model_dir>/model.tflite`` (``serving_default``) and ``<model_dir>/model_config.json``.

        Raises:
            ModelLoadError: if a file is missing, unreadable, or the signature is not the expected one.
        """
        description = description or model_dir
        config = _read_config(model_dir, description)
        class_names, palette = _classes_and_palette(config, description)
        path = os.path.join(model_dir, LITERT_NAME)
        if not os.path.isfile(path):
            raise ModelLoadError(
                f"The model {description} has no {LITERT_NAME}: it predates beam_seg's LiteRT export; "
                "train it again with python -m beam_seg.train, which writes it."
            )

        from ai_edge_litert.interpreter import Interpreter  # Only when the first request loads the model.

        try:
            interpreter = Interpreter(model_path=path)
            signatures = interpreter.get_signature_list()
        except Exception as e:
            logger.exception("Interpreter(%s) failed", path)
            raise ModelLoadError(
                f"The {LITERT_NAME} of {description} could not be loaded by ai-edge-litert ({type(e).__name__}): "
                "check that the file is complete and the versions in requirements.txt."
            ) from None
        if SIGNATURE not in signatures:
            raise ModelLoadError(
                f"The {LITERT_NAME} of {description} has no {SIGNATURE!r} signature "
                f"(it has {sorted(signatures)}): re-export it with python -m beam_seg.train."
            )
        runner = interpreter.get_signature_runner(SIGNATURE)
        inputs, outputs = runner.get_input_details(), runner.get_output_details()
        spec = inputs.get(INPUT_NAME)
        shape = [int(n) for n in spec["shape"]] if spec else []
        if len(inputs) != 1 or spec["dtype"] != np.uint8 or len(shape) != 4 or shape[::3] != [1, 3]:
            raise ModelLoadError(
                f"The {SIGNATURE!r} signature of {description}'s {LITERT_NAME} takes {sorted(inputs)}, not one "
                f"uint8 {INPUT_NAME!r} of shape [1, S, S, 3]: re-export it with python -m beam_seg.train."
            )
        if not {OUTPUT_MASK, OUTPUT_PROBABILITIES} <= set(outputs):
            raise ModelLoadError(
                f"The {SIGNATURE!r} signature of {description}'s {LITERT_NAME} returns {sorted(outputs)}, not "
                f"{OUTPUT_MASK!r} and {OUTPUT_PROBABILITIES!r}: re-export it with python -m beam_seg.train."
            )
        image_size = shape[1]
        if config.get("image_size") not in (None, image_size):
            raise ModelLoadError(
                f"The {CONFIG_NAME} of {description} says image_size {config['image_size']} but its "
                f"{LITERT_NAME} takes {image_size}x{image_size} pixels: the two files come from different runs."
            )
        logger.info("loaded %s: classes %s, input %dx%d", description, class_names, image_size, image_size)
        return cls(
            runner,
            class_names=class_names,
            palette=palette,
            image_size=image_size,
            description=description,
            keepalive=interpreter,
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


def _explain_hub_error(error: Exception, source: ModelSource, filename: str) -> str:
    """One human sentence for an ``hf_hub_download`` failure; never includes the token."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
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
    if isinstance(error, EntryNotFoundError) and not isinstance(error, LocalEntryNotFoundError):
        return (
            f"The model repository {repo!r} at {revision!r} has no {filename}: that version was published before "
            "beam_seg exported LiteRT models; publish a model trained by the current python -m beam_seg.train."
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
    """Fetches ``MODEL_FILES`` of ``source.repo_id`` at ``source.revision``; returns their local folder.

    ``hf_hub_download`` serves a file already in the cache at a commit sha without any request (the Space's
    build preloads them there); otherwise it downloads, resumes and retries.

    Raises:
        ModelLoadError: with one sentence for a missing repo, a bad revision, a missing file, a private or gated
            repo without access, a rejected token or an unreachable Hub.
    """
    from huggingface_hub import hf_hub_download

    paths = []
    for filename in MODEL_FILES:
        try:
            paths.append(
                hf_hub_download(
                    repo_id=source.repo_id,
                    filename=filename,
                    revision=source.revision,
                    token=source.token,
                    endpoint=source.endpoint,
                )
            )
        except Exception as e:
            message = _scrub(_explain_hub_error(e, source, filename), source.token)
            logger.warning(
                "hf_hub_download(%s, %s, revision=%s) failed: %s: %s",
                source.repo_id,
                filename,
                source.revision,
                type(e).__name__,
                _scrub(str(e), source.token),
            )
            raise ModelLoadError(message) from None
    return os.path.dirname(paths[0])


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

    def __init__(self, source: ModelSource, loader: Callable[[ModelSource], Model] = load_model) -> None:
        self.source = source
        self._loader = loader
        self._lock = threading.Lock()
        self._model: Model | None = None

    @property
    def loaded(self) -> bool:
        """Whether the model is already in memory."""
        return self._model is not None

    def get(self) -> Model:
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
    """An upload, decoded.

    Attributes:
        pixels: uint8 RGB ``[H, W, 3]`` in the stored order (EXIF Orientation not applied).
        orientation: The EXIF Orientation tag (1 = none; 2..8 = how to turn the pixels for display).
    """

    pixels: np.ndarray
    orientation: int = 1


@dataclasses.dataclass(frozen=True)
class Segmentation:
    """What the app shows for one image.

    Attributes:
        overlay: uint8 ``[H, W, 3]``: the photo with the classes drawn over it, turned as its EXIF tag says.
        mask: uint8 ``[H, W, 3]``: the class mask in palette colours, at the overlay's size and orientation.
        class_mask: uint8 ``[S, S]``: class ids as the model predicted them, on its grid (stored orientation).
        percentages: ``{class name: percent of the mask's pixels}`` in class order; sums to 100.
    """

    overlay: np.ndarray
    mask: np.ndarray
    class_mask: np.ndarray
    percentages: dict[str, float]


def _rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB; 16-bit greyscale keeps its top 8 bits, as TensorFlow's decoders do."""
    if image.mode == "I" or image.mode.startswith("I;16"):
        top = np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8
        return Image.fromarray(top.astype(np.uint8)).convert("RGB")
    return image.convert("RGB")


def read_image(data: bytes, *, name: str | None = None) -> DecodedImage:
    """Decodes an upload to RGB pixels in their stored order, and reads its EXIF Orientation.

    Any format PIL reads works (JPEG, PNG, WebP, GIF: first frame, BMP, TIFF; CMYK, palette, greyscale and
    alpha images are converted to RGB).

    Raises:
        NotAnImageError: if ``data`` is empty, not an image, truncated or absurdly large.
    """
    if not data:
        raise NotAnImageError(not_an_image_message(name))
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            pixels = np.asarray(_rgb(image))
    except Image.DecompressionBombError:
        what = f"The image {name!r}" if name else "The image"
        raise NotAnImageError(f"{what} has too many pixels to process: upload a smaller picture.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise NotAnImageError(not_an_image_message(name)) from None
    return DecodedImage(pixels, orientation if orientation in _UPRIGHT else 1)


def model_input(pixels: np.ndarray, image_size: int) -> np.ndarray:
    """The LiteRT model's input: the RGB photo resized to S x S with PIL's bilinear filter (antialiased)."""
    return np.asarray(Image.fromarray(pixels).resize((image_size, image_size), Image.Resampling.BILINEAR))


def upsample_classes(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids at ``size`` (width, height): each class's probability resized bilinearly, then the argmax.

    Smooth where nearest-neighbour scaling of the S x S mask would draw blocks; the class ids themselves are
    never interpolated. The grid is the one of :func:`model_input` (pixel centres), so the two line up.
    """
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(probabilities[..., c], dtype=np.float32)).resize(size))
        for c in range(probabilities.shape[-1])
    ]
    return np.argmax(np.stack(planes, axis=-1), axis=-1).astype(np.uint8)


def colorize(class_mask: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Class ids ``[H, W]`` -> uint8 RGB ``[H, W, 3]`` in palette colours (ids beyond it take the last colour)."""
    palette = np.asarray(palette, dtype=np.uint8)
    return palette[np.minimum(class_mask.astype(np.intp), len(palette) - 1)]


def _inner_edge(region: np.ndarray, width: int) -> np.ndarray:
    """The pixels of ``region`` within ``width`` pixels (4-neighbour steps) of its outside; the frame is not outside."""
    inner = region
    for _ in range(width):
        padded = np.pad(inner, 1, mode="edge")
        inner = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return region & ~inner


def overlay(pixels: np.ndarray, class_mask: np.ndarray, palette: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """Draws the classes over the photo (both ``[H, W]``-sized) so their colours stay the legend's.

    Each class's palette colour is blended in with its opacity from ``CLASS_ALPHA`` (``DEFAULT_ALPHA`` for the
    others): ``round((1 - alpha) * pixel + alpha * colour)``, looked up in a table of every pixel value per class
    and channel (twice as fast as the arithmetic on every pixel). The ``OUTLINE_CLASS`` region also gets an opaque
    outline ``OUTLINE_WIDTH`` pixels wide in its colour.
    """
    palette = np.asarray(palette, dtype=np.uint8)
    ids = np.minimum(class_mask.astype(np.intp), len(palette) - 1)
    alphas = np.array([CLASS_ALPHA.get(name, DEFAULT_ALPHA) for name in class_names[: len(palette)]])
    values = np.arange(256, dtype=np.float64)
    # [C, 3, 256]: the blended value of every channel value, per class and channel.
    tables = np.rint((1 - alphas)[:, None, None] * values + (alphas[:, None] * palette)[:, :, None]).astype(np.uint8)
    out = tables.reshape(-1)[(ids[..., None] * 3 + np.arange(3)) * 256 + pixels]
    if OUTLINE_CLASS in class_names:
        outlined = list(class_names).index(OUTLINE_CLASS)
        out[_inner_edge(ids == outlined, OUTLINE_WIDTH)] = palette[outlined]
    return out


def class_percentages(class_mask: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """``{class: percent of pixels}`` of a class-id mask, in class order (ids beyond the names are ignored)."""
    counts = np.bincount(class_mask.astype(np.intp).ravel(), minlength=len(class_names))[: len(class_names)]
    total = max(int(counts.sum()), 1)
    return {name: 100.0 * int(count) / total for name, count in zip(class_names, counts, strict=True)}


def _display_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    method = _UPRIGHT.get(orientation)
    return pixels if method is None else np.asarray(Image.fromarray(pixels).transpose(method))


def segment(data: bytes, model: Model, *, name: str | None = None, max_side: int = MAX_DISPLAY_SIDE) -> Segmentation:
    """Segments one encoded image: the pure function behind the app's ``predict`` endpoint.

    The model sees the stored pixels resized to S x S (:func:`model_input`); its probabilities are upsampled
    to the displayed size (:func:`upsample_classes`) and drawn there; overlay and mask are then turned upright
    together by the EXIF Orientation (see the module docstring).

    Args:
        data: The uploaded file's bytes (JPEG, PNG, ... any size).
        model: A :class:`SegmentationModel` (or anything with its call, ``class_names``, ``palette`` and
            ``image_size``).
        name: The upload's file name, for messages.
        max_side: Longest side of the returned pictures (larger uploads are shown scaled down).

    Raises:
        NotAnImageError: if ``data`` is not a readable image.
    """
    image = read_image(data, name=name)
    prediction = model(model_input(image.pixels, model.image_size))
    height, width = image.pixels.shape[:2]
    size = _display_size(width, height, max_side)
    pixels = image.pixels
    if size != (width, height):
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
    ids = upsample_classes(prediction.probabilities, size)
    return Segmentation(
        overlay=_upright(overlay(pixels, ids, model.palette, model.class_names), image.orientation),
        mask=_upright(colorize(ids, model.palette), image.orientation),
        class_mask=np.asarray(prediction.mask, dtype=np.uint8),
        percentages=class_percentages(ids, model.class_names),
    )
