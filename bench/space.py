"""Benchmark of the Gradio Space: today's TensorFlow app against the LiteRT app, serving the same trained model.

Usage::

    python bench/space.py [--model_dir DIR] [--image PATH] [--requests 20] [--rounds 3] [--skip_install]
                          [--workdir DIR] [--output_json bench/results/space.json]

The TensorFlow app is the template of commit ``--tf_commit`` (62e8e3b, the last one before LiteRT: it loads
``saved_model/`` with ``tf.saved_model.load`` on the first request), written out with ``git show``; the LiteRT
app is the template in this checkout (``model.tflite`` with ``ai-edge-litert``). Both run unrendered, in
``BEAM_SEG_MODEL_DIR`` mode, on one training output: ``--model_dir``, or one trained here with the defaults'
architecture (sample data, 128 px, U-Net 8 filters x 4 levels, 1 short epoch: the size of the model is what
matters here, not its quality). Measured per app:

(a) ``install_bytes``: bytes the Space's ``requirements.txt`` installs into a fresh venv (``python -m venv``, then
    ``pip install -r requirements.txt`` from PyPI): the venv's ``site-packages`` after minus before. Gradio is
    left out of both: the Space SDK provides it (``sdk_version`` in README.md), and neither file lists it.
(b) ``launch_to_answer_s``: from starting ``python app.py`` to the first ``/predict`` answer: the server is polled
    (``GET /`` every 50 ms) until it answers, then the first request is sent.
(c) the first request: ``first_predict_fn_s``, the ``/predict`` function's own time as Gradio measures it
    (model load + prediction + drawing), and ``first_request_s``, the whole request as a client waits for it
    (upload, queue, function, PNG encoding, download of both pictures; see ``_PredictClient``).
(d) the same two times, ``median_predict_fn_s`` and ``median_request_s``: medians of the next ``--requests``.

(b)-(d) run every app in this interpreter's environment (the project's ``.venv``: Gradio, TensorFlow and
ai-edge-litert all installed), so only the app differs. Each round launches each app once, the apps alternating
in order from round to round, after one untimed round that warms the page cache for both; rows give the median
over rounds, and the JSON every round with the server's peak RSS, the load average before it and the CPU time the
hypervisor stole during it. Run it when the machine is quiet.

Targets: LiteRT's first request (model load + predict: ``first_predict_fn_s``) >= 10x faster than TensorFlow's;
its requirements <= 25% of the bytes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import benchlib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TEMPLATE = "apps/gradio/semantic_segmentation"
TF_COMMIT = "62e8e3b"
TARGET_FIRST_REQUEST_SPEEDUP = 10.0
TARGET_INSTALL_FRACTION = 0.25
READY_DEADLINE_S = 300.0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument(
        "--model_dir", default=None, help="Training output with saved_model/ and model.tflite (default: train one)."
    )
    p.add_argument("--image", default=None, help="Photo sent to /predict (default: a 500 px sample-data JPEG).")
    p.add_argument(
        "--requests", type=int, default=20, help="Requests after the first, per launch (default: %(default)s)."
    )
    p.add_argument("--rounds", type=int, default=3, help="Launches of each app (default: %(default)s).")
    p.add_argument("--tf_commit", default=TF_COMMIT, help="Commit of the TensorFlow app (default: %(default)s).")
    p.add_argument("--skip_install", action="store_true", help="Do not measure (a) (no venvs, no PyPI).")
    p.add_argument("--workdir", default=None, help="Keep the model and photo here, for reuse (default: a temp dir).")
    p.add_argument("--output_json", default="bench/results/space.json", help="Results JSON path.")
    return p.parse_args(argv)


# --- Inputs: the model, the photo, the two apps ------------------------------------------------------------------


def _make_photo(work: Path) -> str:
    from beam_seg.data import sample as sample_data

    dataset = sample_data.make_sample_data(
        str(work / "photo"), num_images=10, min_size=375, max_size=500, seed=3, faults=False
    )
    photos = sorted(Path(dataset.root, "images").glob("*.jpg"), key=lambda p: -p.stat().st_size)
    return str(photos[0])


def _write_tf_app(commit: str, dest: Path) -> Path:
    """Writes the template of ``commit`` (``git show``, byte for byte) into ``dest``."""
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit, TEMPLATE], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()
    for name in names:
        data = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=REPO, check=True, capture_output=True).stdout
        path = dest / Path(name).relative_to(TEMPLATE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return dest


def _write_litert_app(dest: Path) -> Path:
    """Copies this checkout's template into ``dest``."""
    shutil.copytree(REPO / TEMPLATE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


# --- (a) install size -----------------------------------------------------------------------------------------------


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _install_size(app_dir: Path, venv: Path) -> dict[str, Any]:
    """Bytes ``pip install -r requirements.txt`` adds to a fresh venv's site-packages, and the largest packages."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    before = {p.name for p in site.iterdir()}
    before_bytes = _tree_bytes(site)
    started = time.perf_counter()
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(app_dir / "requirements.txt")], check=True)
    seconds = time.perf_counter() - started
    added = {p.name: _tree_bytes(p) if p.is_dir() else p.stat().st_size for p in site.iterdir() if p.name not in before}
    largest = sorted(((n, b) for n, b in added.items() if not n.endswith((".dist-info", ".pth"))), key=lambda x: -x[1])
    return {
        "install_bytes": _tree_bytes(site) - before_bytes,
        "pip_install_s": round(seconds, 1),
        "largest_mb": {name: round(size / 1e6, 1) for name, size in largest[:6]},
    }


# --- (b)-(d) serving ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else ""


class _PredictClient:
    """``/predict`` over plain HTTP, in the queue protocol Gradio's own clients speak.

    One call: upload the photo (``/gradio_api/upload``), join the queue (``/gradio_api/queue/join``), read the
    event stream (``/gradio_api/queue/data``) to ``process_completed``, download the overlay and the mask. It
    returns the wall time of all of it and the server's own ``duration`` of the ``/predict`` function (Gradio
    measures it around the call: model load, if any, plus prediction and drawing; no HTTP, queue or encoding).
    ``gradio_client`` would add its own polling (50 ms sleeps) to every answer.
    """

    def __init__(self, url: str) -> None:
        import httpx

        self._url = url
        self._http = httpx.Client(timeout=READY_DEADLINE_S)
        config = self._http.get(f"{url}/config").json()
        self._fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "predict")

    def predict(self, image: str) -> tuple[float, float]:
        """Segments ``image``; returns (wall seconds, the server's function seconds)."""
        started = time.perf_counter()
        with open(image, "rb") as f:
            (path,) = self._http.post(f"{self._url}/gradio_api/upload", files={"files": (Path(image).name, f)}).json()
        session = uuid.uuid4().hex
        payload = {
            "data": [{"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(image).name}],
            "fn_index": self._fn_index,
            "session_hash": session,
            "event_data": None,
            "trigger_id": None,
        }
        self._http.post(f"{self._url}/gradio_api/queue/join", json=payload).raise_for_status()
        with self._http.stream("GET", f"{self._url}/gradio_api/queue/data", params={"session_hash": session}) as s:
            done = next(
                m
                for m in (json.loads(line[5:]) for line in s.iter_lines() if line.startswith("data:"))
                if m.get("msg") == "process_completed"
            )
        if not done.get("success"):
            raise RuntimeError(f"/predict failed: {done.get('output')}")
        overlay, mask, label = done["output"]["data"]
        for picture in (overlay, mask):
            self._http.get(picture["url"]).raise_for_status()
        if abs(sum(c["confidence"] for c in label["confidences"]) - 1.0) > 1e-6:
            raise RuntimeError(f"/predict answered percentages that do not add up: {label}")
        return time.perf_counter() - started, float(done["output"]["duration"])

    def close(self) -> None:
        self._http.close()


def _serve_once(app_dir: Path, model_dir: str, image: str, requests: int, log: Path) -> dict[str, Any]:
    """Launches ``python app.py``, times its first answer and ``requests`` more; stops it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "BEAM_SEG_MODEL_DIR": model_dir,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    env.pop("HF_TOKEN", None)
    load, steal = os.getloadavg()[0], benchlib.host_steal_s()
    with open(log, "ab") as out:
        launched = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "app.py"], cwd=app_dir, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        client = None
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{app_dir.name}/app.py exited with {process.returncode}:\n{_tail(log)}")
                try:
                    with urllib.request.urlopen(url + "/", timeout=2) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.perf_counter() - launched > READY_DEADLINE_S:
                    raise RuntimeError(f"{app_dir.name}/app.py did not answer in {READY_DEADLINE_S} s:\n{_tail(log)}")
                time.sleep(0.05)
            ready = time.perf_counter()
            client = _PredictClient(url)
            first, first_fn = client.predict(image)
            answered = time.perf_counter()
            later = [client.predict(image) for _ in range(requests)]
            rss = _peak_rss_mb(process.pid)
        finally:
            if client is not None:
                client.close()
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
    return {
        "ready_s": round(ready - launched, 3),
        "launch_to_answer_s": round(answered - launched, 3),
        "first_request_s": round(first, 3),
        "first_predict_fn_s": round(first_fn, 4),
        "median_request_s": round(statistics.median(w for w, _ in later), 4) if later else None,
        "median_predict_fn_s": round(statistics.median(f for _, f in later), 4) if later else None,
        "server_peak_rss_mb": rss,
        "load_avg_before": round(load, 2),
        "host_steal_s": round(benchlib.host_steal_s() - steal, 2),
    }


# --- Report ---------------------------------------------------------------------------------------------------------


def _photo_info(path: str) -> dict[str, Any]:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    return {"path": Path(path).name, "width": width, "height": height, "bytes": os.path.getsize(path)}


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("gradio", "gradio_client", "tensorflow", "ai-edge-litert", "huggingface_hub", "numpy", "pillow"):
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def run(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmark, prints its table, writes the JSON; returns 0 if both targets are met, else 1."""
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="space-bench-") as temp:
        work = Path(args.workdir or temp)  # The model and the photo, kept with --workdir for the next run.
        work.mkdir(parents=True, exist_ok=True)
        model_dir = args.model_dir or benchlib.train_small_model(work)
        image = args.image or _make_photo(work)
        apps = {
            "tensorflow": _write_tf_app(args.tf_commit, Path(temp) / "apps" / "tensorflow"),
            "litert": _write_litert_app(Path(temp) / "apps" / "litert"),
        }
        installs = {} if args.skip_install else {n: _install_size(d, Path(temp) / "venv" / n) for n, d in apps.items()}
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in apps}
        for round_ in range(args.rounds + 1):
            order = list(apps) if round_ % 2 else list(reversed(apps))
            for name in order:
                result = _serve_once(apps[name], model_dir, image, args.requests, Path(temp) / f"{name}.log")
                if round_:  # Round 0 warms the page cache (Python files, TensorFlow's libraries) for both apps.
                    rounds[name].append(result)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[name])

    keys = (
        "ready_s",
        "launch_to_answer_s",
        "first_request_s",
        "first_predict_fn_s",
        "median_request_s",
        "median_predict_fn_s",
        "server_peak_rss_mb",
    )
    summary: dict[str, dict[str, Any]] = {name: {key: round(median(name, key), 4) for key in keys} for name in apps}
    for name, install in installs.items():
        summary[name].update(install)
    tf_app, litert_app = summary["tensorflow"], summary["litert"]
    speedup = tf_app["first_predict_fn_s"] / litert_app["first_predict_fn_s"]
    speedup_wall = tf_app["first_request_s"] / litert_app["first_request_s"]
    fraction = installs["litert"]["install_bytes"] / installs["tensorflow"]["install_bytes"] if installs else None
    met = {"first_request_speedup": speedup >= TARGET_FIRST_REQUEST_SPEEDUP}
    if fraction is not None:
        met["install_fraction"] = fraction <= TARGET_INSTALL_FRACTION
    photo = _photo_info(image)
    result = {
        "benchmark": "space",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": benchlib.machine(),
        "versions": _versions(),
        "tf_commit": args.tf_commit,
        "model": json.loads(Path(model_dir, "model_config.json").read_text()).get("model"),
        "model_files_mb": {
            "saved_model": round(_tree_bytes(Path(model_dir, "saved_model")) / 1e6, 2),
            "model.tflite": round(os.path.getsize(Path(model_dir, "model.tflite")) / 1e6, 2),
        },
        "photo": photo,
        "requests": args.requests,
        "rounds": rounds,
        "summary": summary,
        "first_request_speedup": round(speedup, 1),
        "first_request_speedup_wall": round(speedup_wall, 1),
        "install_fraction": None if fraction is None else round(fraction, 3),
        "met": met,
    }
    out = Path(args.output_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")

    def cell(name: str, key: str, scale: float = 1.0, digits: int = 2) -> str:
        value = summary[name].get(key)
        return "" if value is None else f"{value * scale:.{digits}f}"

    rows = [
        ("(a) requirements installed (MB)", "install_bytes", 1e-6, 1),
        ("    pip install (s)", "pip_install_s", 1.0, 1),
        ("(b) launch to first answer (s)", "launch_to_answer_s", 1.0, 2),
        ("    launch to server up (s)", "ready_s", 1.0, 2),
        ("(c) first request: /predict function (s)", "first_predict_fn_s", 1.0, 3),
        ("    first request: wall (s)", "first_request_s", 1.0, 3),
        (f"(d) median of next {args.requests}: function (s)", "median_predict_fn_s", 1.0, 4),
        (f"    median of next {args.requests}: wall (s)", "median_request_s", 1.0, 4),
        ("    server peak RSS (MB)", "server_peak_rss_mb", 1.0, 0),
    ]
    print(f"photo {photo['width']}x{photo['height']}, medians of {args.rounds} launches per app")  # Benchmark report.
    print(f"{'':42} {'tensorflow':>12} {'litert':>12}")
    for label, key, scale, digits in rows:
        print(f"{label:42} {cell('tensorflow', key, scale, digits):>12} {cell('litert', key, scale, digits):>12}")
    print(
        f"first request: litert {speedup:.1f}x faster in the /predict function (target >= "
        f"{TARGET_FIRST_REQUEST_SPEEDUP:.0f}x), {speedup_wall:.1f}x in wall time"
    )
    if fraction is not None:
        print(
            f"requirements: litert {100 * fraction:.1f}% of the bytes (target <= {100 * TARGET_INSTALL_FRACTION:.0f}%)"
        )
    print(f"results written to {out}")
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    sys.exit(run())
