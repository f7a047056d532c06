"""Stages 1 and 3 never import TensorFlow or Keras: not in the driver, not in a worker process.

Each stage runs as a subprocess with a ``sitecustomize`` on ``PYTHONPATH`` that records, in every Python process
started with that environment (the driver and the multi-process runner's workers alike), each import of
``tensorflow``/``keras`` and, as a control that the hook was active, each import of the stage's own package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from hubserver import DEFAULT_TOKEN, DEFAULT_USER

HOOK = """
import os, sys

class _Watch:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ("tensorflow", "keras") or name in ("beam_seg.data.pipeline", "beam_seg.publish.pipeline"):
            with open(os.environ["IMPORT_LOG"], "a") as f:
                f.write(f"{os.getpid()} {name}\\n")
        return None

sys.meta_path.insert(0, _Watch())
"""


def _run_watched(tmp_path: Path, module: str, args: list[str], **env: str) -> dict[int, set[str]]:
    """Runs ``python -m module args`` with the hook; returns {pid: modules seen}."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "imports.log"
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "hook"), REPO_ROOT]), "IMPORT_LOG": str(log)}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], env={**environ, **env}, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen: dict[int, set[str]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        pid, name = line.split(" ", 1)
        seen.setdefault(int(pid), set()).add(name)
    return seen


def _heavy(seen: dict[int, set[str]]) -> list[str]:
    return sorted(n for names in seen.values() for n in names if n.split(".")[0] in ("tensorflow", "keras"))


def test_stage_1_driver_and_workers_never_import_tensorflow(pets_dir, tmp_path):
    args = [
        "--input",
        pets_dir.root,
        "--output_dir",
        str(tmp_path / "out"),
        "--resize",
        "32",
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    ]
    seen = _run_watched(tmp_path, "beam_seg.tfrecord_gen", args)
    assert _heavy(seen) == []
    # The control: the driver and at least one worker process imported the stage's pipeline with the hook active.
    assert sum("beam_seg.data.pipeline" in names for names in seen.values()) >= 2, seen


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A training output directory as stage 3 reads it (its files' contents do not matter to the upload)."""
    root = tmp_path / "model"
    (root / "saved_model" / "variables").mkdir(parents=True)
    (root / "saved_model" / "saved_model.pb").write_bytes(b"\x08\x01" * 500)
    (root / "saved_model" / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(300_000))
    (root / "saved_model" / "variables" / "variables.index").write_bytes(os.urandom(300))
    (root / "model_config.json").write_text(json.dumps({"image_size": 8, "classes": ["pet", "background", "border"]}))
    (root / "metrics.json").write_text(json.dumps({"val": {"mean_iou": 0.9, "pixel_accuracy": 0.95, "loss": 0.2}}))
    return root


def test_publish_dry_run_never_imports_tensorflow(model_dir, tmp_path):
    args = [
        "--model_dir",
        str(model_dir),
        "--model_repo",
        "me/m",
        "--space_repo",
        "me/s",
        "--dry_run",
        "--app_dir",
        os.path.join(REPO_ROOT, "apps", "gradio", "semantic_segmentation"),
    ]
    seen = _run_watched(tmp_path, "beam_seg.publish", args)
    assert _heavy(seen) == []


def test_a_real_publish_never_imports_tensorflow(hub_server, model_dir, tmp_path):
    args = ["--model_dir", str(model_dir), "--model_repo", f"{DEFAULT_USER}/m", "--version", "v1"]
    seen = _run_watched(
        tmp_path, "beam_seg.publish", args, HF_ENDPOINT=hub_server.url, HF_TOKEN=DEFAULT_TOKEN, HF_HUB_DISABLE_XET="1"
    )
    assert _heavy(seen) == []
    assert any("beam_seg.publish.pipeline" in names for names in seen.values())
    assert hub_server.revision_sha(f"{DEFAULT_USER}/m", "v1")
