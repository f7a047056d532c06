"""Benchmark: does ``beam_seg.train`` with its default flags reach val mean IoU >= 0.90 on CPU in <= 10 minutes?

Usage::

    python bench/train_quality.py [--num_images 600] [--output_json bench/results/train_quality.json]
                                  [--work_dir DIR] [-- extra beam_seg.train flags]

Makes a synthetic PETS dataset (:func:`beam_seg.data.sample.make_sample_data`), turns it into
128x128 TFRecords with the real Beam job, trains with ``beam_seg.train``'s defaults (plus any
flags after ``--``), and prints a table and writes JSON with val/test mean IoU, per-class IoU and
wall times.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beam_seg import cli
from beam_seg.data import imaging
from beam_seg.data import job as tfrecord_gen
from beam_seg.data import sample as sample_data
from beam_seg.train import job as train
from beam_seg.train.config import parse_args as parse_train_args

logger = logging.getLogger("bench.train_quality")

TARGET_MEAN_IOU = 0.90
TARGET_TRAIN_SECONDS = 600.0


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """Flags of this benchmark."""

    num_images: int = 600
    test_fraction: float = 0.2
    min_size: int = 200
    max_size: int = 500
    resize: int = 128
    seed: int = 0
    chroma: str = "444"
    work_dir: str | None = None
    output_json: str = "bench/results/train_quality.json"
    train_flags: tuple[str, ...] = ()


def _parse(argv: Sequence[str] | None) -> BenchConfig:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    d = BenchConfig()
    p.add_argument("--num_images", type=int, default=d.num_images, help="Sample images (>= 500; default: %(default)s).")
    p.add_argument(
        "--test_fraction",
        type=float,
        default=d.test_fraction,
        help="Share of sample images listed as test (default: %(default)s).",
    )
    p.add_argument("--min_size", type=int, default=d.min_size, help="Smallest source side, px (default: %(default)s).")
    p.add_argument("--max_size", type=int, default=d.max_size, help="Largest source side, px (default: %(default)s).")
    p.add_argument("--resize", type=int, default=d.resize, help="tfrecord_gen --resize (default: %(default)s).")
    p.add_argument("--seed", type=int, default=d.seed, help="Sample data seed (default: %(default)s).")
    p.add_argument(
        "--chroma",
        choices=("444", "420"),
        default=d.chroma,
        help="Chroma subsampling of the re-encoded JPEGs: the job's 4:4:4, or PIL's default 4:2:0 for comparison "
        "(default: %(default)s).",
    )
    p.add_argument("--work_dir", default=None, help="Where data and model go (default: a temporary directory).")
    p.add_argument("--output_json", default=d.output_json, help="Results JSON path (default: %(default)s).")
    args = p.parse_args(argv)
    if args.num_images < 500:
        p.error(f"--num_images {args.num_images} is below the benchmark's minimum of 500")
    return BenchConfig(**vars(args), train_flags=tuple(extra))


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark; returns 0 when both targets are met, 1 otherwise."""
    config = _parse(argv)
    # The stages' console (their progress lines), which tfrecord_gen.run and train.run also set up; the
    # benchmark's own lines go through it too.
    cli.configure_logging()
    logger.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="train_quality-") as temp:
        work = Path(config.work_dir or temp)
        raw, records, model_dir = work / "raw", work / "tfrecords", work / "model"
        started = time.monotonic()
        sample_data.make_sample_data(
            str(raw),
            num_images=config.num_images,
            test_fraction=config.test_fraction,
            min_size=config.min_size,
            max_size=config.max_size,
            seed=config.seed,
        )
        sample_seconds = time.monotonic() - started
        # The pool's processes are forked from this one, so they see this setting too.
        imaging.JPEG_SUBSAMPLING = {"444": 0, "420": 2}[config.chroma]
        started = time.monotonic()
        rc = tfrecord_gen.run(
            [
                "--input",
                str(raw),
                "--output_dir",
                str(records),
                "--resize",
                str(config.resize),
                "--direct_running_mode=in_memory",
                "--overwrite",
            ]
        )
        if rc:
            logger.error("tfrecord_gen failed with exit code %d", rc)
            return rc
        tfrecord_seconds = time.monotonic() - started
        train_argv = ["--data_dir", str(records), "--output_dir", str(model_dir), "--overwrite", *config.train_flags]
        train_config = parse_train_args(train_argv)
        started = time.monotonic()
        rc = train.run(train_argv)
        train_seconds = time.monotonic() - started
        if rc:
            logger.error("train failed with exit code %d", rc)
            return rc
        metrics = json.loads((model_dir / "metrics.json").read_text())
        model_config = json.loads((model_dir / "model_config.json").read_text())
        history = json.loads((model_dir / "history.json").read_text())

    val, test = metrics["val"], metrics.get("test", {})
    result = {
        "benchmark": "train_quality",
        "targets": {"val_mean_iou": TARGET_MEAN_IOU, "train_seconds": TARGET_TRAIN_SECONDS},
        "met": {
            "val_mean_iou": val["mean_iou"] >= TARGET_MEAN_IOU,
            "train_seconds": train_seconds <= TARGET_TRAIN_SECONDS,
        },
        "val_mean_iou": val["mean_iou"],
        "val_per_class_iou": val["per_class_iou"],
        "val_pixel_accuracy": val["pixel_accuracy"],
        "test_mean_iou": test.get("mean_iou"),
        "test_per_class_iou": test.get("per_class_iou"),
        "best_epoch": metrics.get("best_epoch"),
        "val_mean_iou_per_epoch": [round(h["val_mean_iou"], 4) for h in history if "val_mean_iou" in h],
        "seconds": {
            "sample_data": round(sample_seconds, 1),
            "tfrecord_gen": round(tfrecord_seconds, 1),
            "train_total": round(train_seconds, 1),
        },
        "num_examples": model_config["data"]["num_examples"],
        "data": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("work_dir", "output_json")},
        "train_config": {k: v for k, v in train_config.to_dict().items() if k not in ("data_dir", "output_dir")},
        "class_weights_used": model_config["training"].get("class_weights_used"),
        "model_parameters": model_config["model"]["parameters"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), **model_config["versions"]},
    }
    out = Path(config.output_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    rows = [
        ("val mean IoU", f"{val['mean_iou']:.4f}", f">= {TARGET_MEAN_IOU}", result["met"]["val_mean_iou"]),
        *[(f"val IoU {k}", f"{v:.4f}", "", None) for k, v in val["per_class_iou"].items()],
        ("val pixel accuracy", f"{val['pixel_accuracy']:.4f}", "", None),
        ("test mean IoU", f"{test.get('mean_iou', float('nan')):.4f}", "", None),
        (
            "train wall time (s)",
            f"{train_seconds:.0f}",
            f"<= {TARGET_TRAIN_SECONDS:.0f}",
            result["met"]["train_seconds"],
        ),
        ("sample data + tfrecord_gen (s)", f"{sample_seconds + tfrecord_seconds:.0f}", "", None),
    ]
    print(f"{'metric':32} {'value':>10} {'target':>10}  met")  # Benchmark report.
    for name, value, target, met in rows:
        print(f"{name:32} {value:>10} {target:>10}  {'' if met is None else ('yes' if met else 'NO')}")
    print(f"results written to {out}")
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(run())
