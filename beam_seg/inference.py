"""The project's models in Apache Beam's ``RunInference``: one model handler, shared by predict and evaluate.

:class:`SegmentationModelHandler` loads a model with :func:`beam_seg.loader.load_model` (a training output directory,
local or ``gs://``, or ``hf://owner/name@revision``) once per worker process, when ``RunInference`` sets up its DoFn,
and segments batches of encoded images through the model's ``serving_default`` signature, which decodes and resizes
inside the graph. Batch sizes come from ``min_batch_size``/``max_batch_size`` (``beam.BatchElements``).

An image that does not decode never fails the batch it is in: the batch is segmented again one image at a time, and
that image's :class:`Segmentation` carries the decoder's message instead of a mask, for the caller's dead letters.
A model that does not load (:class:`~beam_seg.loader.ModelLoadError`: missing files, an unknown repo or revision) does
not fail the worker either, which would print tracebacks and be retried for a problem a retry cannot mend: every image
then gets a :data:`MODEL_NOT_LOADED` segmentation with the loader's message, and the job's driver reports it.
No TensorFlow import here: the loader imports it on the worker, when the model is loaded.
"""

from __future__ import annotations

import resource
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from apache_beam.ml.inference import base as _beam_inference
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from beam_seg import cli
from beam_seg.loader import ImageDecodeError, ModelLoadError, SegmentationModel, load_model
from beam_seg.pets import MASK_CLASSES

__all__ = [
    "MODEL_NOT_LOADED",
    "UNDECODABLE_IMAGE",
    "Segmentation",
    "SegmentationModelHandler",
    "segment_batch",
]

METRICS_NAMESPACE = "beam_seg"
# Why a segmentation has no mask.
UNDECODABLE_IMAGE = "undecodable_image"
MODEL_NOT_LOADED = "model_not_loaded"
MODEL_NOT_LOADED_PREFIX = "the model did not load: "

# Hack around Apache Beam 2.77's inference/base.py, which imports the standard `resource` module in the same try block
# as its ModelManager, which needs PyTorch: without PyTorch `resource` ends up None, and every model load logs
# "Resource module is not available for current platform" twice (and measures no memory). Put the module back.
if getattr(_beam_inference, "resource", resource) is None:
    _beam_inference.resource = resource


class Segmentation(NamedTuple):
    """What the model made of one encoded image.

    Attributes:
        mask: uint8 ``[S, S]`` class ids at the model's size ``S``, or ``None``.
        error: Why there is no mask, in one line (the decoder's or the loader's message).
        reason: :data:`UNDECODABLE_IMAGE` or :data:`MODEL_NOT_LOADED` when there is no mask.
    """

    mask: np.ndarray | None
    error: str | None = None
    reason: str | None = None


def segment_batch(model: SegmentationModel, images: Sequence[bytes]) -> list[Segmentation]:
    """Segments encoded images in one call; if one does not decode, each image alone, so only it fails.

    Args:
        model: A loaded model (anything called with a list of encoded images that returns a ``mask`` batch).
        images: Encoded images.
    """
    try:
        return [Segmentation(mask) for mask in model(list(images)).mask]
    except ImageDecodeError as e:
        if len(images) == 1:
            return [Segmentation(None, str(e), UNDECODABLE_IMAGE)]
    results = []
    for image in images:
        try:
            results.append(Segmentation(model([image]).mask[0]))
        except ImageDecodeError as e:
            results.append(Segmentation(None, str(e), UNDECODABLE_IMAGE))
    return results


class _NotLoaded:
    """What :meth:`SegmentationModelHandler.load_model` returns for a model that does not load: the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class SegmentationModelHandler(ModelHandler[bytes, Segmentation, SegmentationModel | _NotLoaded]):
    """Encoded images → :class:`Segmentation`, through a model loaded once per worker process.

    Wrap it in ``KeyedModelHandler`` to carry a key (the image's name and metadata) past the model.
    """

    def __init__(
        self,
        location: str,
        *,
        min_batch_size: int | None = None,
        max_batch_size: int | None = None,
        quiet_native_stderr: bool = False,
    ) -> None:
        """Configures the handler; nothing is loaded until a worker calls :meth:`load_model`.

        Args:
            location: What :func:`beam_seg.loader.load_model` accepts: a training output directory (local or
                ``gs://``), ``hf://owner/name[@revision]`` or ``owner/name``.
            min_batch_size: Smallest batch ``RunInference`` forms (``beam.BatchElements``).
            max_batch_size: Largest batch.
            quiet_native_stderr: Hold back what TensorFlow's native code writes to stderr while the model loads
                (its CUDA probe on a machine without a GPU), as the console's default does.
        """
        env = {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}  # The SDK processes of a GPU worker then share its GPU.
        if quiet_native_stderr:
            env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size, env_vars=env)
        self._location = location
        self._quiet = quiet_native_stderr

    @property
    def location(self) -> str:
        """The model's location, as given."""
        return self._location

    def load_model(self) -> SegmentationModel | _NotLoaded:
        """Loads the model (called by ``RunInference`` once per worker process).

        A location that holds no usable model (or one of other classes than the PETS ones) gives a placeholder that
        answers every batch with :data:`MODEL_NOT_LOADED` segmentations carrying the loader's one-line message.
        """
        with cli.native_stderr_quieted(self._quiet):
            try:
                model = load_model(self._location)
            except ModelLoadError as e:
                return _NotLoaded(str(e))
        if tuple(model.class_names) != MASK_CLASSES:
            return _NotLoaded(
                f"model {self._location!r} predicts classes {list(model.class_names)}, not {list(MASK_CLASSES)}"
            )
        return model

    def run_inference(
        self,
        batch: Sequence[bytes],
        model: SegmentationModel | _NotLoaded,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        """Segments one batch; an image that does not decode gets a :class:`Segmentation` with its error."""
        if isinstance(model, _NotLoaded):
            failed = Segmentation(None, f"{MODEL_NOT_LOADED_PREFIX}{model.reason}", MODEL_NOT_LOADED)
            segmentations = [failed] * len(batch)
        else:
            segmentations = segment_batch(model, batch)
        return [
            PredictionResult(image, segmentation, model_id=self._location)
            for image, segmentation in zip(batch, segmentations, strict=True)
        ]

    def get_num_bytes(self, batch: Sequence[bytes]) -> int:
        """The encoded bytes of a batch (Beam's default pickles the batch to measure it)."""
        return sum(len(image) for image in batch)

    def get_metrics_namespace(self) -> str:
        """``beam_seg``: RunInference's counters and latencies sit beside the job's own."""
        return METRICS_NAMESPACE

    def __repr__(self) -> str:
        return f"SegmentationModelHandler({self._location!r}, batching={dict(self.batch_elements_kwargs())})"
