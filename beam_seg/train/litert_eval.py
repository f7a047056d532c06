"""Exact metrics of the LiteRT models, run by the LiteRT interpreter as a client runs them, on the eval records.

Each val and test record is read once and fed to every model the way the LiteRT contract says
(:mod:`beam_seg.train.litert`): its decoded RGB image resized to S x S with PIL's bilinear filter (the documented
client resize) as uint8 ``[1, S, S, 3]``, one image per call. The label is the mask as training's evaluation makes it
(:func:`beam_seg.train.dataset.preprocess_eval`: nearest neighbour), and the metrics come from the same
``[true, predicted]`` confusion matrix over every pixel (:func:`beam_seg.confusion.summarize_confusion`).

The image is decoded by TensorFlow, as for the SavedModel's evaluation, so that the LiteRT mean IoU and the
SavedModel's in ``metrics.json`` differ only by what the conversion, the client resize and the uint8 input change,
not by the JPEG decoder (TensorFlow's default IDCT is not PIL's; ``bench/litert.py`` measures that separately).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from beam_seg import cli
from beam_seg.confusion import summarize_confusion
from beam_seg.formats import LITERT_INPUT, OUTPUT_MASK, SERVING_DEFAULT
from beam_seg.train import dataset as input_pipeline

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MAX_ABS_DELTA", "client_pixels", "evaluate_models", "interpreter_threads", "litert_metrics"]

logger = logging.getLogger(__name__)

# Largest |LiteRT mean IoU - SavedModel mean IoU| expected of a model without and with quantization; a model past it
# is logged as a warning (metrics.json has the numbers either way).
MAX_ABS_DELTA: dict[bool, float] = {False: 0.005, True: 0.01}


def interpreter_threads() -> int:
    """The cores this process may run on: the interpreter's ``num_threads`` (one image per call is the contract)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # Not on Linux.
        return max(1, os.cpu_count() or 1)


def client_pixels(image: np.ndarray, image_size: int) -> np.ndarray:
    """A decoded uint8 RGB image ``[H, W, 3]`` as a LiteRT client feeds it: PIL bilinear to S x S, ``[1, S, S, 3]``."""
    resized = Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)[None]


def _records(files: Sequence[str], image_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(client pixels uint8 [1, S, S, 3], label uint8 [S, S])`` per record of ``files``, in file order."""
    import tensorflow as tf

    def decode(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = input_pipeline.decode_tensors(input_pipeline.parse_example(serialized))
        _, label = input_pipeline.preprocess_eval(image, mask, image_size)  # The label training's evaluation uses.
        return image, label[..., 0]

    dataset = (
        tf.data.TFRecordDataset(list(files))
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    for image, label in dataset.as_numpy_iterator():
        yield client_pixels(image, image_size), label


def _runner(model: bytes, num_threads: int) -> Callable[..., dict[str, np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=num_threads)
    runner = interpreter.get_signature_runner(SERVING_DEFAULT)
    # The runtime announces its CPU delegate on stderr from native code at the first call ("INFO: Created
    # TensorFlow Lite XNNPACK delegate"): that call is made here on zeros, the line held back on the default console
    # (root logger above INFO) and shown with -v.
    (detail,) = interpreter.get_input_details()
    with cli.native_stderr_quieted(logging.getLogger().getEffectiveLevel() > logging.INFO):
        runner(**{LITERT_INPUT: np.zeros(detail["shape"], detail["dtype"])})
    return runner


def evaluate_models(
    models: Mapping[str, bytes],
    files: Mapping[str, Sequence[str]],
    *,
    image_size: int,
    class_names: Sequence[str],
    num_threads: int | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Runs every LiteRT model on every record of each split; one pass over the records for all the models.

    Args:
        models: Name (e.g. ``float32``) -> LiteRT flatbuffer with the signature of :mod:`beam_seg.train.litert`.
        files: Split -> its shard paths (e.g. ``val`` and ``test``).
        image_size: The models' input side ``S``.
        class_names: The classes, in id order.
        num_threads: The interpreter's threads (default: :func:`interpreter_threads`).

    Returns:
        ``{model: {split: metrics}}``, each as :func:`~beam_seg.confusion.summarize_confusion` returns them plus
        ``num_examples``.
    """
    threads = num_threads or interpreter_threads()
    runners = {name: _runner(model, threads) for name, model in models.items()}
    num_classes = len(class_names)
    results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in models}
    for split, split_files in files.items():
        started = time.monotonic()
        confusion = {name: np.zeros(num_classes * num_classes, np.int64) for name in models}
        examples = 0
        for pixels, label in _records(split_files, image_size):
            truth = label.astype(np.int64).ravel() * num_classes
            for name, run in runners.items():
                predicted = run(**{LITERT_INPUT: pixels})[OUTPUT_MASK][0]
                confusion[name] += np.bincount(truth + predicted.ravel(), minlength=num_classes * num_classes)
            examples += 1
        for name in models:
            summary = summarize_confusion(confusion[name].reshape(num_classes, num_classes), class_names)
            results[name][split] = {"num_examples": examples, **summary}
        logger.info(
            "LiteRT %s: %d %s records in %.1fs (%d threads): %s",
            "/".join(models),
            examples,
            split,
            time.monotonic() - started,
            threads,
            ", ".join(f"{name} mean IoU {results[name][split]['mean_iou']:.4f}" for name in models),
        )
    return results


def litert_metrics(
    models: Mapping[str, tuple[str, str | None, bytes]],
    files: Mapping[str, Sequence[str]],
    *,
    reference: Mapping[str, Mapping[str, Any]],
    image_size: int,
    class_names: Sequence[str],
) -> dict[str, dict[str, Any]]:
    """The ``litert`` section of ``metrics.json``: each model's file, size, metrics and mean IoU minus the SavedModel's.

    Args:
        models: Name -> (file name, quantization or ``None``, flatbuffer).
        files: Split -> its shard paths.
        reference: The SavedModel's metrics per split (``metrics.json``'s ``val`` and ``test``).
        image_size: The models' input side ``S``.
        class_names: The classes, in id order.

    Returns:
        ``{name: {"file", "bytes", "quantization", <split>: metrics, "delta_mean_iou": {split: LiteRT - SavedModel}}}``.
    """
    evaluated = evaluate_models(
        {name: model for name, (_, _, model) in models.items()}, files, image_size=image_size, class_names=class_names
    )
    section: dict[str, dict[str, Any]] = {}
    for name, (file, quantization, model) in models.items():
        delta = {split: evaluated[name][split]["mean_iou"] - reference[split]["mean_iou"] for split in files}
        section[name] = {"file": file, "bytes": len(model), "quantization": quantization, **evaluated[name]}
        section[name]["delta_mean_iou"] = delta
        limit = MAX_ABS_DELTA[quantization is not None]
        missed = {split: d for split, d in delta.items() if abs(d) > limit}
        if missed:
            logger.warning(
                "LiteRT %s (%s) differs from the SavedModel by more than %g mean IoU: %s",
                name,
                file,
                limit,
                ", ".join(f"{split} {d:+.4f}" for split, d in missed.items()),
            )
    return section
