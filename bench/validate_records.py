"""Benchmark: what the record validation before the first training step costs.

Usage::

    python bench/validate_records.py [--data_dir DIR | --num_images 500] [--rounds 3] \
        [--output_json bench/results/validate_records.json]

On every split of one ``tfrecord_gen`` output (sample data at ``--resize 128`` unless ``--data_dir``) it times:

1. ``no_validation``: what ``--no_validate_records`` still does: read ``stats.json``, check the shard set;
2. ``parse_only``: the previous check, which parsed every record and decoded nothing (the baseline);
3. ``validate_records``: the shipped check: parse, decode image and mask, compare sizes and class ids, in one
   parallel tf.data pass with bad records skipped and the good ones counted against ``stats.json``;
4. ``eager_decode``: the same checks record by record in eager mode (the slow path that names a bad record; a
   validation written that way would always cost this).

Each variant runs ``--rounds`` times, interleaved, after one untimed warm-up round; its row is its fastest round.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beam_seg.data import job as tfrecord_gen
from beam_seg.data import sample as sample_data
from beam_seg.train import dataset as input_pipeline


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data_dir", default=None, help="tfrecord_gen output to read (default: make sample data).")
    p.add_argument("--num_images", type=int, default=500, help="Sample images to make (default: %(default)s).")
    p.add_argument("--resize", type=int, default=128, help="tfrecord_gen --resize (default: %(default)s).")
    p.add_argument("--rounds", type=int, default=3, help="Timed rounds per variant (default: %(default)s).")
    p.add_argument("--output_json", default="bench/results/validate_records.json", help="Results JSON path.")
    return p.parse_args(argv)


def _make_data(work: Path, args: argparse.Namespace) -> str:
    sample_data.make_sample_data(str(work / "raw"), num_images=args.num_images, seed=0)
    out = str(work / "tfrecords")
    argv = ["--input", str(work / "raw"), "--output_dir", out, "--resize", str(args.resize)]
    if tfrecord_gen.run([*argv, "--direct_running_mode=in_memory"]):
        raise RuntimeError("tfrecord_gen failed")
    return out


def _parse_only(files: Sequence[str]) -> int:
    """The previous check: every record parsed against the feature spec, in batches, nothing decoded."""
    import tensorflow as tf

    spec = input_pipeline.feature_spec()
    total = 0
    for path in files:
        for labels in tf.data.TFRecordDataset(path).batch(256).map(lambda s: tf.io.parse_example(s, spec)["label"]):
            total += int(labels.shape[0])
    return total


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and prints its table; returns 0."""
    args = _parse(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="validate_records-") as temp:
        data_dir = args.data_dir or _make_data(Path(temp), args)
        stats = input_pipeline.read_stats(data_dir)
        files = input_pipeline.data_shards(data_dir, stats)
        counts = {split: stats["splits"][split]["num_examples"] for split in files}

        def no_validation() -> None:
            input_pipeline.data_shards(data_dir, input_pipeline.read_stats(data_dir))

        def validate() -> None:
            input_pipeline.validate_records(files, num_examples=counts)

        variants: dict[str, Callable[[], object]] = {
            "no_validation": no_validation,
            "parse_only": lambda: [_parse_only(paths) for paths in files.values()],
            "validate_records": validate,
            "eager_decode": lambda: [input_pipeline._raise_first_bad_record(paths) for paths in files.values()],
        }
        best = {name: float("inf") for name in variants}
        for round_ in range(args.rounds + 1):
            for name, variant in variants.items():
                started = time.perf_counter()
                variant()
                if round_:  # Round 0 warms up (TensorFlow import, tracing, page cache).
                    best[name] = min(best[name], time.perf_counter() - started)
        record_bytes = sum(os.path.getsize(p) for paths in files.values() for p in paths)
    records = sum(counts.values())
    result = {
        "benchmark": "validate_records",
        "records": records,
        "record_mb": round(record_bytes / 1e6, 2),
        "resize": None if args.data_dir else args.resize,
        "seconds": {name: round(s, 3) for name, s in best.items()},
        "records_per_s": {name: round(records / s, 1) for name, s in best.items() if name != "no_validation"},
        "cpus": os.cpu_count(),
    }
    out = Path(args.output_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"{records} records, {result['record_mb']} MB, fastest of {args.rounds} rounds")  # Benchmark report.
    for name, seconds in result["seconds"].items():
        rate = result["records_per_s"].get(name)
        print(f"{name:18} {seconds:8.3f} s" + (f"  {rate:8.1f} records/s" if rate else ""))
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
