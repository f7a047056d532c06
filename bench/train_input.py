"""Benchmark: is the tf.data input pipeline ever the bottleneck of ``beam_seg.train`` on this machine?

Usage::

    python bench/train_input.py [--data_dir DIR | --num_images 300] [--output_json bench/results/train_input.json]

In one process and with ``beam_seg.train``'s default flags (image size, batch size, model,
augmentation) it measures:

1. input pipeline alone: images/s of :func:`beam_seg.train.dataset.train_dataset` (shard reading,
   parsing, JPEG/PNG decoding, crop/flip/jitter, resize, batching), nothing else running;
2. train step alone: steps/s x batch of ``model.fit`` on one batch held in memory (pure compute);
3. end to end: images/s of ``model.fit`` on the real pipeline.

Target: (1) >= 5x (2), and (3) ~= (2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beam_seg.data import job as tfrecord_gen
from beam_seg.data import sample as sample_data
from beam_seg.pets import MASK_CLASSES
from beam_seg.train import dataset as input_pipeline
from beam_seg.train import trainer as train
from beam_seg.train.config import TrainConfig

logger = logging.getLogger("bench.train_input")

TARGET_RATIO = 5.0


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Flags of this benchmark."""

    data_dir: str | None = None
    num_images: int = 300
    resize: int = 128
    input_batches: int = 150
    train_steps: int = 40
    output_json: str = "bench/results/train_input.json"


def _parse(argv: Sequence[str] | None) -> BenchConfig:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    d = BenchConfig()
    p.add_argument(
        "--data_dir",
        default=None,
        help="Existing tfrecord_gen output to read (default: make --num_images sample images).",
    )
    p.add_argument("--num_images", type=int, default=d.num_images, help="Sample images to make (default: %(default)s).")
    p.add_argument("--resize", type=int, default=d.resize, help="tfrecord_gen --resize (default: %(default)s).")
    p.add_argument(
        "--input_batches",
        type=int,
        default=d.input_batches,
        help="Batches timed for the input pipeline (default: %(default)s).",
    )
    p.add_argument(
        "--train_steps",
        type=int,
        default=d.train_steps,
        help="Train steps timed per training measurement (default: %(default)s).",
    )
    p.add_argument("--output_json", default=d.output_json, help="Results JSON path (default: %(default)s).")
    return BenchConfig(**vars(p.parse_args(argv)))


def _make_data(work: Path, bench: BenchConfig) -> str:
    sample_data.make_sample_data(str(work / "raw"), num_images=bench.num_images, test_fraction=0.2, seed=0)
    out = str(work / "tfrecords")
    rc = tfrecord_gen.run(
        [
            "--input",
            str(work / "raw"),
            "--output_dir",
            out,
            "--resize",
            str(bench.resize),
            "--direct_running_mode=in_memory",
        ]
    )
    if rc:
        raise RuntimeError(f"tfrecord_gen failed with exit code {rc}")
    return out


def measure(data_dir: str, bench: BenchConfig) -> dict[str, object]:
    """Runs the three measurements on ``data_dir`` with train.py's default flags."""
    import keras
    import tensorflow as tf

    config = TrainConfig(data_dir=data_dir, output_dir="unused")
    stats = input_pipeline.read_stats(data_dir)
    files = input_pipeline.data_shards(data_dir, stats)["train"]
    count = stats["splits"]["train"]["num_examples"]
    input_pipeline.validate_records({"train": files}, num_examples={"train": count})
    norm = input_pipeline.load_normalization(stats)
    steps = input_pipeline.steps_for(count, config.batch_size)
    epochs = (bench.input_batches + 3 * bench.train_steps + 20) // steps + 2

    def pipeline() -> tf.data.Dataset:
        return input_pipeline.train_dataset(
            files,
            num_examples=count,
            image_size=config.image_size,
            batch_size=config.batch_size,
            steps_per_epoch=steps,
            first_epoch=0,
            epochs=epochs,
            seed=config.seed,
            shuffle_buffer=config.shuffle_buffer,
            augment=config.augment,
            min_crop=config.min_crop,
        )

    # 1. The input pipeline alone (after a short warm-up that fills buffers and autotunes).
    iterator = iter(pipeline())
    for _ in range(10):
        next(iterator)
    started = time.perf_counter()
    for _ in range(bench.input_batches):
        next(iterator)
    input_seconds = time.perf_counter() - started
    input_images_per_s = bench.input_batches * config.batch_size / input_seconds
    del iterator

    # 2. and 3. The train step, compiled exactly as train.py compiles it, timed in steady state (a callback
    # clocks batches after the first few, so tracing and pipeline start-up are not counted).
    keras.utils.set_random_seed(0)
    model = train.build_training_model(
        config, norm, steps_per_epoch=steps, class_weights=train.class_weights_for(config, stats)
    )
    x, y = next(iter(pipeline()))

    class Clock(keras.callbacks.Callback):
        skip = 5

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch == self.skip - 1:
                self.start = time.perf_counter()
            self.end = time.perf_counter()

    def seconds_per_step(dataset: tf.data.Dataset) -> float:
        clock = Clock()
        model.fit(
            dataset,
            steps_per_epoch=Clock.skip + bench.train_steps,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[clock],
        )
        return (clock.end - clock.start) / bench.train_steps

    step_seconds = seconds_per_step(tf.data.Dataset.from_tensors((x, y)).repeat())
    end_to_end_seconds = seconds_per_step(pipeline())

    step_images_per_s = config.batch_size / step_seconds
    return {
        "benchmark": "train_input",
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "model": {
            "name": config.model,
            "base_filters": config.base_filters,
            "depth": config.depth,
            "loss": config.loss,
            "parameters": int(model.count_params()),
        },
        "train_examples": count,
        "input_pipeline_images_per_s": round(input_images_per_s, 1),
        "train_steps_per_s": round(1.0 / step_seconds, 3),
        "train_step_images_per_s": round(step_images_per_s, 1),
        "end_to_end_images_per_s": round(config.batch_size / end_to_end_seconds, 1),
        "input_to_step_ratio": round(input_images_per_s / step_images_per_s, 2),
        "target_ratio": TARGET_RATIO,
        "met": input_images_per_s / step_images_per_s >= TARGET_RATIO,
        "cpus": os.cpu_count(),
        "classes": list(MASK_CLASSES),
    }


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns 0 when the ratio target is met, 1 otherwise."""
    bench = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="train_input-") as temp:
        data_dir = bench.data_dir or _make_data(Path(temp), bench)
        result = measure(data_dir, bench)
    out = Path(bench.output_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    rows = [
        ("input pipeline alone (images/s)", result["input_pipeline_images_per_s"]),
        ("train step alone (steps/s)", result["train_steps_per_s"]),
        ("train step alone (steps/s x batch = images/s)", result["train_step_images_per_s"]),
        ("fit on the real pipeline (images/s)", result["end_to_end_images_per_s"]),
        (f"input / step ratio (target >= {TARGET_RATIO:.0f})", result["input_to_step_ratio"]),
    ]
    print(f"{'measurement':48} {'value':>10}")  # Benchmark report.
    for name, value in rows:
        print(f"{name:48} {value:>10}")
    print(f"{'target met':48} {'yes' if result['met'] else 'NO':>10}\nresults written to {out}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(run())
