"""Benchmark of stage 1 as a user waits for it: whole processes, from start to exit, and their fixed costs.

One run, one generated dataset per size (PETS-like sizes, 200–500 px, ``--resize 128``), every variant a fresh
``python`` process on the same files, rounds interleaved (A B C A B C ...) so that a slow spell of the machine hits
all alike; a row is the median of its rounds:

(a) ``float-list script``: the reference scripts' serial conversion (``baseline_floatlist`` of
    ``bench/tfrecord_gen.py``: PIL decode, ``tf.image.resize``, float lists), TensorFlow imported as it must be.
(b) ``tfrecord_gen``: ``python -m beam_seg.tfrecord_gen`` with its defaults (one in-memory Beam worker whose heavy
    step runs in a pool of one process per core).
(c) ``one in-memory worker``: the same job with ``--direct_running_mode=in_memory --direct_num_workers=1
    --prepare_processes 1``: everything on one core.
(d) ``multi_threading`` and ``multi_processing``: Beam's own local modes with a worker per core.

Fixed costs: the interpreter alone, importing Apache Beam, ``--help``, and the whole job on a 1-image input (imports,
pipeline construction, runner start, finalisation, exit); the marginal cost of an image follows from the big runs.
Targets (2-core machine): (b) >= 6x (a) at ~1,000 images; (b) >= 1.5x (c) at ~3,000 images. Usage::

    python bench/tfrecord_gen_process.py [--sizes 1000 3000] [--rounds 3] [--output_json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from beam_seg.data import sample as sample_data  # noqa: E402

PY = sys.executable
JOB = [PY, "-m", "beam_seg.tfrecord_gen"]


def _timed(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the process and everything it waited for) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{command} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _floatlist(data: str, out: str) -> list[str]:
    code = (
        "import sys; sys.path.insert(0, 'bench'); import tfrecord_gen as b; "
        f"b.baseline_floatlist({data!r}, {out!r}, 128)"
    )
    return [PY, "-c", code]


def _job(data: str, out: str, *flags: str) -> list[str]:
    return [*JOB, "--input", data, "--output_dir", out, "--resize", "128", "--overwrite", *flags]


def _median_row(name: str, runs: list[tuple[float, float]], images: int) -> dict:
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    return {
        "variant": name,
        "images": images,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "images_per_s": round(images / wall, 1),
        "runs_wall_s": [round(r[0], 2) for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000], help="Images per dataset.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of every variant (default: %(default)s).")
    parser.add_argument("--output_json", default="bench/results/tfrecord_gen_process.json")
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench_tfrecord_gen_process_")
    result: dict = {"cores": os.cpu_count(), "rounds": args.rounds, "date": time.strftime("%Y-%m-%d"), "sizes": {}}
    try:
        tiny = os.path.join(work, "tiny")
        sample_data.make_sample_data(tiny, num_images=1, min_size=200, max_size=500, seed=7, faults=False)
        fixed_commands = {
            "python -c pass": [PY, "-c", "pass"],
            "import apache_beam": [PY, "-c", "import apache_beam"],
            "tfrecord_gen --help": [*JOB, "--help"],
            "tfrecord_gen, 1 image": _job(tiny, os.path.join(work, "tiny_out")),
        }
        fixed_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in fixed_commands}
        for _ in range(max(args.rounds, 3)):
            for name, command in fixed_commands.items():
                fixed_runs[name].append(_timed(command))
        result["fixed"] = [_median_row(name, runs, 1) for name, runs in fixed_runs.items()]
        for size in args.sizes:
            data = os.path.join(work, f"pets{size}")
            sample_data.make_sample_data(data, num_images=size, min_size=200, max_size=500, seed=7, faults=False)
            out = lambda name, size=size: os.path.join(work, f"out{size}_{name}")  # noqa: E731
            variants = {
                "(b) tfrecord_gen (default)": _job(data, out("b")),
                "(c) one in-memory worker": _job(
                    data,
                    out("c"),
                    "--direct_running_mode=in_memory",
                    "--direct_num_workers=1",
                    "--prepare_processes",
                    "1",
                ),
                "(d) multi_threading": _job(data, out("dt"), "--direct_running_mode=multi_threading"),
                "(d) multi_processing": _job(data, out("dp"), "--direct_running_mode=multi_processing"),
            }
            if size <= 1000:
                variants = {"(a) float-list script": _floatlist(data, out("a")), **variants}
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, command in variants.items():
                    runs[name].append(_timed(command))
                    print(f"{size} {name}: {runs[name][-1][0]:.2f} s", file=sys.stderr)
            rows = [_median_row(name, r, size) for name, r in runs.items()]
            default = rows[[r["variant"] for r in rows].index("(b) tfrecord_gen (default)")]
            for row in rows:
                row["default_speedup"] = round(row["wall_s"] / default["wall_s"], 2)
            result["sizes"][str(size)] = rows
    finally:
        shutil.rmtree(work, ignore_errors=True)

    one_image = next(r["wall_s"] for r in result["fixed"] if r["variant"] == "tfrecord_gen, 1 image")
    print(f"fixed costs (median of {max(args.rounds, 3)} whole processes)")
    for row in result["fixed"]:
        print(f"  {row['variant']:28} {row['wall_s']:6.2f} s wall {row['cpu_s']:6.2f} s cpu")
    for size, rows in result["sizes"].items():
        default = next(r for r in rows if r["variant"].startswith("(b)"))
        per_image_ms = 1000 * (default["wall_s"] - one_image) / (int(size) - 1)
        print(f"\n{size} images, --resize 128 (median of {args.rounds}); default: {per_image_ms:.2f} ms/image beyond")
        print(f"the 1-image run ({one_image:.2f} s)")
        print(f"  {'variant':30} {'wall s':>7} {'cpu s':>7} {'img/s':>7} {'default is x faster':>20}")
        for row in rows:
            print(
                f"  {row['variant']:30} {row['wall_s']:7.2f} {row['cpu_s']:7.2f} {row['images_per_s']:7.1f} "
                f"{row['default_speedup']:20.2f}"
            )
    os.makedirs(os.path.dirname(os.path.abspath(args.output_json)), exist_ok=True)
    with open(args.output_json, "w") as f:
        json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
