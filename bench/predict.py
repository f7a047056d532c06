"""Benchmark of batch prediction: ``python -m beam_seg.predict`` against serial loops calling ``serving_default``.

Usage::

    python bench/predict.py [--num_images 300] [--model DIR] [--rounds 1] [--workdir DIR] \
        [--output_json bench/results/predict.json]

One set of sample images (``python -m beam_seg.sample_data``: 200–500 px JPEGs, no faults, seed 7) and one model:
``--model``, or one trained here with the defaults' architecture (128 px, U-Net 8 filters x 4 levels, one short
epoch: its speed is what matters, not its quality). Every variant does the same work and writes the same files: read
each image, segment it, upsample the mask to the image's size (nearest), write ``masks/<name>.png`` and, at the end,
``predictions.jsonl``. Each runs in a fresh process that has imported TensorFlow (not timed) and started nothing:

(a) ``loop_single``: a serial Python loop calling ``serving_default`` (``beam_seg.loader``) one image at a time;
(b) ``loop_batch16``: the same loop, 16 images per call;
(c) ``job_pipeline``: the predict job's pipeline (``build_pipeline`` + run, its model load included), local
    defaults: ``FnApiRunner`` with one in-memory worker, ``RunInference`` batches of 8–32;
(d) ``job_process``: ``python -m beam_seg.predict`` as a whole process, from start to exit (imports of Beam and
    TensorFlow, model load, the job, the summary);

and what other choices would bring (ablations, pipeline time as (c)): ``job_threads`` (a worker thread per core,
sharing one model: ``--direct_running_mode=multi_threading``);
``job_onednn`` and ``loop_batch16_onednn`` (``TF_ENABLE_ONEDNN_OPTS=1``: TensorFlow's oneDNN kernels, which it leaves
off on this CPU). ``model_only`` times (b)'s model calls alone (images read beforehand, nothing written): its CPU
seconds spread over every core give the ceiling, the most any pipeline can reach with these model calls.

The loops' rows exclude their model load and first call (timed apart: ``loop_setup_s``); the job's include its
own. Every variant's masks are compared with (b)'s, byte for byte. Target: (c) >= 1.5x (b)'s images/s on this 2-core
machine. With ``--rounds N`` the variants run N times, interleaved, and a row is its median. Also measured: the mask
PNG's encode time and size at zlib level 1 (the job's) and 6 (PIL's default). Run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import benchlib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET = 1.5
BATCH = 16
ONEDNN = {"TF_ENABLE_ONEDNN_OPTS": "1"}
THREADS = ("--direct_running_mode=multi_threading", f"--direct_num_workers={os.cpu_count() or 1}")
# name -> (kind, extra job flags or loop batch, extra environment)
VARIANTS: dict[str, tuple[str, Any, dict[str, str]]] = {
    "loop_single": ("loop", 1, {}),
    "loop_batch16": ("loop", BATCH, {}),
    "job_pipeline": ("job", (), {}),
    "job_process": ("process", (), {}),
    "job_threads": ("job", THREADS, {}),
    "job_onednn": ("job", (), ONEDNN),
    "loop_batch16_onednn": ("loop", BATCH, ONEDNN),
    "model_only": ("model", BATCH, {}),
}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--num_images", type=int, default=300, help="Sample images (default: %(default)s).")
    p.add_argument("--model", default=None, help="Training output directory (default: train a small one).")
    p.add_argument("--rounds", type=int, default=1, help="Runs of every variant, interleaved (default: %(default)s).")
    p.add_argument("--workdir", default=None, help="Keep the data, model and outputs here (default: a temp dir).")
    p.add_argument("--output_json", default="bench/results/predict.json", help="Results JSON path.")
    p.add_argument("--child", nargs=5, metavar=("KIND", "ARG", "IMAGES", "MODEL", "OUT"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _make_images(work: Path, num_images: int) -> Path:
    from beam_seg.data import sample as sample_data

    images = work / "sample" / "images"
    if not images.is_dir() or len(list(images.glob("*.jpg"))) != num_images:
        shutil.rmtree(work / "sample", ignore_errors=True)
        sample_data.make_sample_data(str(work / "sample"), num_images=num_images, seed=7, faults=False)
    return images


# ---------------------------------------------------------------------------------------------- in the child


def _loop(model: Any, paths: list[Path], out: Path, batch: int) -> None:
    """The serial baseline: read, segment ``batch`` images per call, write masks and predictions.jsonl."""
    from PIL import Image

    from beam_seg.pets import MASK_CLASSES
    from beam_seg.predict import outputs

    (out / "masks").mkdir(parents=True)
    lines = []
    for start in range(0, len(paths), batch):
        chunk = paths[start : start + batch]
        data = [p.read_bytes() for p in chunk]
        sizes = []
        for d in data:
            with Image.open(io.BytesIO(d)) as image:
                sizes.append(image.size)
        for path, mask, (width, height) in zip(chunk, model(data).mask, sizes, strict=True):
            full = outputs.upsample_mask(mask, width, height)
            (out / "masks" / f"{path.stem}.png").write_bytes(outputs.encode_png(full))
            lines.append(
                outputs.prediction_line(
                    name=path.stem,
                    source=str(path),
                    width=width,
                    height=height,
                    fractions=outputs.class_fractions(full, MASK_CLASSES),
                    files={"mask": f"masks/{path.stem}.png"},
                )
            )
    (out / "predictions.jsonl").write_bytes(outputs.jsonl(lines, "name"))


def _child(kind: str, arg: str, images: str, model_dir: str, out: str) -> dict[str, float]:
    """One timed variant, in this fresh process: TensorFlow imported (not timed), nothing started yet."""
    from beam_seg import cli

    cli.configure_logging(["--log_level", "WARNING"])
    with cli.native_stderr_quieted():
        import tensorflow  # noqa: F401 - imported, not started: a job's model handler still sets its threads.
    from beam_seg.loader import load_model
    from beam_seg.predict import job, pipeline  # noqa: F401 - the job's modules (and Beam), imported untimed.

    timed: dict[str, float] = {}
    cpu, started = time.process_time(), time.perf_counter()
    if kind == "model":  # The model calls of (b) alone: the images read beforehand, nothing written.
        data = [p.read_bytes() for p in sorted(Path(images).glob("*.jpg"))]
        model = load_model(model_dir)
        model(data[: int(arg)])
        cpu, started = time.process_time(), time.perf_counter()
        for start in range(0, len(data), int(arg)):
            model(data[start : start + int(arg)])
    elif kind == "loop":
        paths = sorted(Path(images).glob("*.jpg"))
        model = load_model(model_dir)
        model([p.read_bytes() for p in paths[: int(arg)]])  # The first call builds the graph's kernels.
        timed["setup_s"] = time.perf_counter() - started
        cpu, started = time.process_time(), time.perf_counter()
        _loop(model, paths, Path(out), int(arg))
    else:
        p, _ = job.build_pipeline(["--input", images, "--model", model_dir, "--output_dir", out, *json.loads(arg)])
        p.run().wait_until_finish()
    timed.update(wall_s=time.perf_counter() - started, cpu_s=time.process_time() - cpu)
    return timed


# ---------------------------------------------------------------------------------------------- in the parent


def _run_variant(name: str, images: Path, model_dir: str, out: Path) -> dict[str, float]:
    kind, arg, env = VARIANTS[name]
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}
    if kind == "process":
        command = [sys.executable, "-m", "beam_seg.predict", "--input", str(images), "--model", model_dir]
        command += ["--output_dir", str(out)]
    else:
        child_arg = json.dumps(list(arg)) if kind == "job" else str(arg)
        command = [sys.executable, __file__, "--child", kind, child_arg, str(images), model_dir, str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, env=environ)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    if kind == "process":
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _same_masks(out: Path, reference: Path) -> int:
    """How many of ``reference``'s masks ``out`` has with the same bytes."""
    return sum(
        (out / "masks" / p.name).is_file() and (out / "masks" / p.name).read_bytes() == p.read_bytes()
        for p in (reference / "masks").iterdir()
    )


def _png_levels(masks: Path) -> dict[str, dict[str, float]]:
    """Encode time and size of the job's masks at zlib levels 1 and 6 (PIL's default)."""
    import numpy as np
    from PIL import Image

    arrays = [np.asarray(Image.open(p)) for p in sorted(masks.iterdir())[:100]]
    found = {}
    for level in (1, 6):
        started = time.perf_counter()
        sizes = []
        for array in arrays:
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG", compress_level=level)
            sizes.append(len(buffer.getvalue()))
        seconds = time.perf_counter() - started
        found[f"level_{level}"] = {"ms": round(seconds / len(arrays) * 1e3, 2), "bytes": round(statistics.mean(sizes))}
    return found


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("apache-beam", "tensorflow", "numpy", "pillow")}


def _commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    return proc.stdout.strip() + ("+changes" if dirty else "")


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark and prints its table; returns 0."""
    args = _parse(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    with contextlib.ExitStack() as stack:
        work = Path(args.workdir or stack.enter_context(tempfile.TemporaryDirectory(prefix="predict-bench-")))
        work.mkdir(parents=True, exist_ok=True)
        images = _make_images(work, args.num_images)
        images_n = len(list(images.glob("*.jpg")))
        model_dir = args.model or benchlib.train_small_model(work)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
        same: dict[str, list[int]] = {name: [] for name in VARIANTS}
        for round_ in range(args.rounds):
            for name in VARIANTS:
                out = work / "out" / f"{name}-{round_}"
                shutil.rmtree(out, ignore_errors=True)
                load, steal = os.getloadavg()[0], benchlib.host_steal_s()
                timed = _run_variant(name, images, model_dir, out)
                runs[name].append({**timed, "load_before": load, "host_steal_s": benchlib.host_steal_s() - steal})
            reference = work / "out" / f"loop_batch16-{round_}"
            for name in VARIANTS:
                if VARIANTS[name][0] != "model":
                    same[name].append(_same_masks(work / "out" / f"{name}-{round_}", reference))
        png = _png_levels(work / "out" / "job_pipeline-0" / "masks")

    rows = {}
    for name, results in runs.items():
        wall = statistics.median(r["wall_s"] for r in results)
        rows[name] = {
            "wall_s": round(wall, 2),
            "cpu_s": round(statistics.median(r["cpu_s"] for r in results), 2),
            "images_per_s": round(images_n / wall, 1),
            "same_masks_as_loop_batch16": min(same[name]) if same[name] else None,
            "runs": [{k: round(v, 2) for k, v in r.items()} for r in results],
        }
        if "setup_s" in results[0]:
            rows[name]["setup_s"] = round(statistics.median(r["setup_s"] for r in results), 2)
    reference = rows["loop_batch16"]["images_per_s"]
    with_setup = images_n / (rows["loop_batch16"]["wall_s"] + rows["loop_batch16"]["setup_s"])
    for row in rows.values():
        row["vs_loop_batch16"] = round(row["images_per_s"] / reference, 2)
        row["vs_loop_batch16_with_setup"] = round(row["images_per_s"] / with_setup, 2)
    # The most any pipeline can give with (b)'s model calls: every core busy with nothing but them.
    cpus = os.cpu_count() or 1
    ceiling = images_n / (rows["model_only"]["cpu_s"] / cpus)
    result = {
        "benchmark": "predict",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": benchlib.machine(),
        "versions": _versions(),
        "images": images_n,
        "rounds": args.rounds,
        "target": f"job_pipeline >= {TARGET}x loop_batch16",
        "target_met": rows["job_pipeline"]["vs_loop_batch16"] >= TARGET,
        "variants": rows,
        "ceiling": {"images_per_s": round(ceiling, 1), "vs_loop_batch16": round(ceiling / reference, 2)},
        "mask_png": png,
    }
    out_json = Path(args.output_json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    # Benchmark report.
    print(f"{images_n} images, {result['machine']['cpus']} cores ({result['machine']['cpu']}), {result['date']}")
    print(f"{'variant':21}{'wall s':>8}{'CPU s':>8}{'images/s':>10}{'vs (b)':>8}{'vs (b)+setup':>14}{'same masks':>12}")
    for name, row in rows.items():
        setup = f" (+{row['setup_s']:.2f} s setup)" if "setup_s" in row else ""
        print(
            f"{name:21}{row['wall_s']:>8.2f}{row['cpu_s']:>8.2f}{row['images_per_s']:>10.1f}"
            f"{row['vs_loop_batch16']:>7.2f}x{row['vs_loop_batch16_with_setup']:>13.2f}x"
            f"{row['same_masks_as_loop_batch16'] if row['same_masks_as_loop_batch16'] is not None else '-':>12}{setup}"
        )
    print(
        f"ceiling: {cpus} cores doing nothing but model_only's calls: {ceiling:.1f} images/s, "
        f"{result['ceiling']['vs_loop_batch16']:.2f}x (b)"
    )
    print(f"mask PNG: {png}")
    print(f"target {result['target']}: {'met' if result['target_met'] else 'missed'}; results written to {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
