"""Benchmark: the quantized LiteRT model to ship beside ``model.tflite``; the client input matching the SavedModel.

Usage::

    python bench/litert.py [--model_dir DIR --data_dir DIR] [--work_dir DIR] [--num_images 600] [--epochs 20] \
        [--runs 50] [--output_json bench/results/litert.json]

Without ``--model_dir`` it makes sample data (``--num_images``, 128 px records), trains a model with
``beam_seg.train``'s defaults for ``--epochs`` and uses that; with it, the trained model directory (its ``model.keras``
and ``metrics.json``) and the TFRecord directory it was trained on. Then:

1. **Variants.** It converts ``model.keras`` with TensorFlow's converter three ways
   (:func:`beam_seg.train.litert.convert`): float32, float16 weights (``Optimize.DEFAULT`` +
   ``supported_types=[float16]``) and dynamic-range int8 (``Optimize.DEFAULT`` alone). Per variant: the file's
   bytes; the time to load it and answer a first call; the median latency of one ``serving_default`` call (uint8
   ``[1, S, S, 3]``; ``ai_edge_litert`` ``Interpreter`` with ``num_threads`` = the cores, and with 1 thread) over
   ``--runs`` calls, the variants interleaved call by call after a warm-up; the val and test mean IoU from
   training's LiteRT evaluation (:mod:`beam_seg.train.litert_eval`) and its difference to the SavedModel's in
   ``metrics.json``.
2. **Client input.** On TFRecords of the same val and test images at their source size (a second ``tfrecord_gen`` run
   without ``--resize``, so that the resize really runs), the float32 model's mean IoU and its mask agreement with the
   SavedModel's for three ways a client can make the uint8 input: TensorFlow decode + PIL bilinear, PIL decode + PIL
   bilinear, TensorFlow decode + ``tf.image.resize`` bilinear with antialias rounded to uint8. The SavedModel's
   own numbers (TensorFlow decode and float resize) are the reference.

It prints both tables and writes them as JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beam_seg import cli
from beam_seg.data import codec
from beam_seg.data import job as tfrecord_gen
from beam_seg.data import sample as sample_data
from beam_seg.formats import EVAL_SPLITS, LITERT_INPUT, OUTPUT_MASK, SERVING_DEFAULT
from beam_seg.pets import MASK_CLASSES

logger = logging.getLogger("bench.litert")

VARIANTS: dict[str, str | None] = {"float32": None, "float16": "float16", "dynamic_int8": "dynamic_int8"}
WARMUP_CALLS = 5
FRESH_LOADS = 5


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--model_dir", default=None, help="A training output directory (default: train one).")
    p.add_argument("--data_dir", default=None, help="The TFRecord directory --model_dir was trained on.")
    p.add_argument("--work_dir", default=None, help="Where data and model go (default: a temporary directory).")
    p.add_argument("--num_images", type=int, default=600, help="Sample images to make (default: %(default)s).")
    p.add_argument("--epochs", type=int, default=20, help="Training epochs when training (default: %(default)s).")
    p.add_argument("--runs", type=int, default=50, help="Timed calls per variant (default: %(default)s).")
    p.add_argument("--output_json", default="bench/results/litert.json", help="Results JSON path.")
    args = p.parse_args(argv)
    if (args.model_dir is None) != (args.data_dir is None):
        p.error("give --model_dir and --data_dir together, or neither")
    return args


def _make_raw(work: Path, num_images: int) -> Path:
    raw = work / "raw"
    if not (raw / "annotations" / "list.txt").exists():
        sample_data.make_sample_data(str(raw), num_images=num_images, test_fraction=0.2, seed=0)
    return raw


def _records(raw: Path, out: Path, *resize: str) -> str:
    if not (out / "stats.json").exists():
        argv = ["--input", str(raw), "--output_dir", str(out), *resize, "--direct_running_mode=in_memory"]
        if tfrecord_gen.run([*argv, "--overwrite"]):
            raise RuntimeError(f"tfrecord_gen into {out} failed")
    return str(out)


def _train(data_dir: str, model_dir: Path, epochs: int) -> str:
    from beam_seg.train import job as train

    argv = ["--data_dir", data_dir, "--output_dir", str(model_dir), "--epochs", str(epochs), "--overwrite"]
    if not (model_dir / "model_config.json").exists() and train.run(argv):
        raise RuntimeError("training failed")
    return str(model_dir)


def _eval_files(data_dir: str) -> dict[str, list[str]]:
    from beam_seg.train import dataset as input_pipeline

    files = input_pipeline.data_shards(data_dir, input_pipeline.read_stats(data_dir))
    return {split: files[split] for split in EVAL_SPLITS if split in files}


def _latency(models: dict[str, bytes], pixels: np.ndarray, runs: int, threads: int) -> dict[str, dict[str, float]]:
    """Per model: load + first call (what a server's first request waits for), and the median of ``runs`` calls.

    Load + first call is the median of :data:`FRESH_LOADS` fresh interpreters per model, taken in turns after one
    untimed load (the process's one-time start-up is nobody's); the calls are interleaved, one call per model in
    turn, so that the host's load spells hit the models alike.
    """
    from ai_edge_litert.interpreter import Interpreter

    def load(model: bytes) -> Callable[..., dict[str, np.ndarray]]:
        return Interpreter(model_content=model, num_threads=threads).get_signature_runner(SERVING_DEFAULT)

    load(next(iter(models.values())))(**{LITERT_INPUT: pixels})
    first: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(FRESH_LOADS):
        for name, model in models.items():
            started = time.perf_counter()
            load(model)(**{LITERT_INPUT: pixels})
            first[name].append((time.perf_counter() - started) * 1e3)
    runners = {name: load(model) for name, model in models.items()}
    for run in runners.values():
        for _ in range(WARMUP_CALLS):
            run(**{LITERT_INPUT: pixels})
    calls: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(runs):
        for name, run in runners.items():
            started = time.perf_counter()
            run(**{LITERT_INPUT: pixels})
            calls[name].append((time.perf_counter() - started) * 1e3)
    return {
        name: {"first_call_ms": statistics.median(first[name]), "median_ms": statistics.median(calls[name])}
        for name in models
    }


# --- Client inputs: (pixels uint8 [1, S, S, 3], label uint8 [S, S]) per record, three ways.


def _labelled(files: Sequence[str], size: int) -> Iterator[tuple[bytes, np.ndarray]]:
    """(image bytes, label as training's evaluation makes it) per record."""
    import tensorflow as tf

    from beam_seg.train import dataset as input_pipeline

    for serialized in tf.data.TFRecordDataset(list(files)).as_numpy_iterator():
        record = codec.decode_example(serialized)
        mask = tf.io.decode_png(record.mask, channels=1)
        _, label = input_pipeline.preprocess_eval(tf.zeros([*mask.shape[:2], 3], tf.uint8), mask, size)
        yield record.image, label.numpy()[..., 0]


def _tf_decode(data: bytes) -> np.ndarray:
    import tensorflow as tf

    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def _pil_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _tf_resize(image: np.ndarray, size: int) -> np.ndarray:
    import tensorflow as tf

    resized = tf.image.resize(tf.cast(image, tf.float32), (size, size), "bilinear", antialias=True)
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)[None]


CLIENT_INPUTS: dict[str, tuple[Callable[[bytes], np.ndarray], str]] = {
    "TF decode + PIL bilinear (training's LiteRT evaluation)": (_tf_decode, "pil"),
    "PIL decode + PIL bilinear (the Gradio app)": (_pil_decode, "pil"),
    "TF decode + tf.image.resize antialias, rounded": (_tf_decode, "tf"),
}


def _client_agreement(
    files: dict[str, list[str]], size: int, float32: bytes, saved_model_dir: str
) -> dict[str, dict[str, float]]:
    """Per client input: the float32 LiteRT model's mean IoU per split, and its mask agreement with the SavedModel."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    from beam_seg.train.litert_eval import client_pixels, interpreter_threads
    from beam_seg.train.metrics import summarize_confusion

    serve = tf.saved_model.load(saved_model_dir).signatures[SERVING_DEFAULT]
    run = Interpreter(model_content=float32, num_threads=interpreter_threads()).get_signature_runner(SERVING_DEFAULT)
    n = len(MASK_CLASSES)
    results: dict[str, dict[str, float]] = {"SavedModel (TF decode, float resize; the reference)": {}}
    results.update({name: {} for name in CLIENT_INPUTS})
    agree = dict.fromkeys(CLIENT_INPUTS, 0)
    total = 0
    for split, split_files in files.items():
        confusion = {name: np.zeros(n * n, np.int64) for name in results}
        for data, label in _labelled(split_files, size):
            truth = label.astype(np.int64).ravel() * n
            reference = serve(image_bytes=tf.constant([data]))[OUTPUT_MASK].numpy()[0]
            confusion["SavedModel (TF decode, float resize; the reference)"] += np.bincount(
                truth + reference.ravel(), minlength=n * n
            )
            for name, (decode, resize) in CLIENT_INPUTS.items():
                image = decode(data)
                pixels = client_pixels(image, size) if resize == "pil" else _tf_resize(image, size)
                mask = run(**{LITERT_INPUT: pixels})[OUTPUT_MASK][0]
                confusion[name] += np.bincount(truth + mask.ravel(), minlength=n * n)
                agree[name] += int((mask == reference).sum())
            total += reference.size
        for name in results:
            results[name][f"{split}_mean_iou"] = summarize_confusion(confusion[name].reshape(n, n), MASK_CLASSES)[
                "mean_iou"
            ]
    for name in CLIENT_INPUTS:
        results[name]["mask_agreement"] = agree[name] / total
    return results


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark, prints its tables and writes the JSON; returns 0."""
    args = _parse(argv)
    cli.configure_logging()
    logger.setLevel(logging.INFO)
    import keras

    from beam_seg.train import litert, litert_eval

    with tempfile.TemporaryDirectory(prefix="bench-litert-") as temp:
        work = Path(args.work_dir or temp)
        raw = _make_raw(work, args.num_images)
        data_dir = args.data_dir or _records(raw, work / "tfrecords", "--resize", "128")
        model_dir = args.model_dir or _train(data_dir, work / "model", args.epochs)
        source_records = _records(raw, work / "tfrecords_source_size")
        config = json.loads(Path(model_dir, "model_config.json").read_text())
        stats = json.loads(Path(data_dir, "stats.json").read_text())
        metrics = json.loads(Path(model_dir, "metrics.json").read_text())
        size = int(config["image_size"])
        model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
        logger.info("converting %s three ways", model_dir)
        flatbuffers = dict(
            zip(
                VARIANTS, litert.convert_all(model, image_size=size, quantizations=list(VARIANTS.values())), strict=True
            )
        )
        files = _eval_files(data_dir)
        logger.info("LiteRT evaluation of %s on %s", ", ".join(flatbuffers), data_dir)
        evaluated = litert_eval.evaluate_models(flatbuffers, files, image_size=size, class_names=MASK_CLASSES)
        sample = litert_eval.client_pixels(_tf_decode(next(_labelled(files["val"], size))[0]), size)
        threads = litert_eval.interpreter_threads()
        latency = {t: _latency(flatbuffers, sample, args.runs, t) for t in sorted({threads, 1}, reverse=True)}
        logger.info("client inputs on %s", source_records)
        clients = _client_agreement(
            _eval_files(source_records), size, flatbuffers["float32"], os.path.join(model_dir, "saved_model")
        )

    variants = {}
    for name in VARIANTS:
        row = {"bytes": len(flatbuffers[name])}
        for t, measured in latency.items():
            row[f"first_call_ms_{t}_threads"] = round(measured[name]["first_call_ms"], 1)
            row[f"median_ms_{t}_threads"] = round(measured[name]["median_ms"], 2)
        for split in files:
            row[f"{split}_mean_iou"] = evaluated[name][split]["mean_iou"]
            row[f"{split}_delta"] = evaluated[name][split]["mean_iou"] - metrics[split]["mean_iou"]
        variants[name] = row
    result = {
        "benchmark": "litert",
        "image_size": size,
        "runs": args.runs,
        "saved_model": {f"{s}_mean_iou": metrics[s]["mean_iou"] for s in files},
        "variants": variants,
        "client_inputs": clients,
        "data": {
            "num_examples": {split: stats["splits"][split]["num_examples"] for split in stats["splits"]},
            "dataset": stats.get("dataset", {}).get("name", "unknown (stats.json has no dataset entry)"),
        },
        "model_parameters": config["model"]["parameters"],
        "epochs": config["training"]["epochs_completed"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), **config["versions"]},
    }
    out = Path(args.output_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    # Benchmark report.
    cores = max(latency)
    print(f"SavedModel: val mean IoU {metrics['val']['mean_iou']:.4f}, test {metrics['test']['mean_iou']:.4f}")
    print(
        f"{'variant':14} {'bytes':>9} {'1st call':>8} {f'ms ({cores} thr)':>11} {'ms (1 thr)':>10} "
        f"{'val IoU':>8} {'Δ val':>8} {'test IoU':>8} {'Δ test':>8}"
    )
    for name, row in variants.items():
        print(
            f"{name:14} {row['bytes']:>9} {row[f'first_call_ms_{cores}_threads']:>8.1f} "
            f"{row[f'median_ms_{cores}_threads']:>11.2f} {row['median_ms_1_threads']:>10.2f} "
            f"{row['val_mean_iou']:>8.4f} {row['val_delta']:>+8.4f} {row['test_mean_iou']:>8.4f} "
            f"{row['test_delta']:>+8.4f}"
        )
    print(f"\n{'client input (float32 LiteRT, source-size records)':60} {'val IoU':>8} {'test IoU':>8} {'agree':>7}")
    for name, row in clients.items():
        agree = f"{row['mask_agreement']:.4f}" if "mask_agreement" in row else ""
        print(f"{name:60} {row['val_mean_iou']:>8.4f} {row['test_mean_iou']:>8.4f} {agree:>7}")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
