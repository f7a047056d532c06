"""Stages 1 and 3 never import TensorFlow or Keras: not in the driver, not in a worker process; nor do their workers
install it.

Each stage runs as a subprocess with a ``sitecustomize`` on ``PYTHONPATH`` that records, in every Python process
started with that environment (the driver and the multi-process runner's workers alike), each import of
``tensorflow``/``keras`` and, as a control that the hook was active, each import of the stage's own package.

What a Dataflow worker installs is the package Beam stages from ``--setup_file`` (``workflow.tar.gz``, built here by
Beam itself), without extras: its requirements, resolved as pip resolves them (``tests/worker_deps.py``, offline),
pull in no training package, and still cover every module that stages 1 and 3 and the shared modules import.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import worker_deps
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


# ------------------------------------------------------------------------------- what their workers install


@pytest.fixture(scope="module")
def staged_package(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The package a Dataflow job stages for its workers, built by Beam as ``--setup_file`` makes it build it."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.portability.api import beam_runner_api_pb2
    from apache_beam.transforms import environments

    options = PipelineOptions(["--runner=DataflowRunner", f"--setup_file={os.path.join(REPO_ROOT, 'setup.py')}"])
    artifacts = environments.python_sdk_dependencies(options, str(tmp_path_factory.mktemp("staging")))
    (path,) = [
        beam_runner_api_pb2.ArtifactFilePayload.FromString(a.type_payload).path
        for a in artifacts
        if beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(a.role_payload).staged_name == "workflow.tar.gz"
    ]
    return path


@pytest.fixture(scope="module")
def worker_requirements(staged_package: str) -> list:
    return worker_deps.sdist_requirements(staged_package)


def test_workers_install_no_training_package(worker_requirements):
    """What ``pip install workflow.tar.gz`` on a worker resolves, and all it pulls in: no TensorFlow, Keras or
    matplotlib; every requirement pinned to constraints.txt."""
    names = worker_deps.names(worker_requirements)
    assert {"apache-beam", "huggingface-hub", "pillow", "numpy", "protobuf", "google-crc32c"} <= names
    assert not names & worker_deps.TRAINING
    assert not worker_deps.closure(worker_requirements) & worker_deps.TRAINING
    pins = worker_deps.locked_pins(os.path.join(REPO_ROOT, "constraints.txt"))
    assert {r.name: str(r.specifier) for r in worker_requirements} == {
        r.name: f"=={pins[worker_deps.canonicalize_name(r.name)]}" for r in worker_requirements
    }


# Stages 1 and 3, the Hub layer and the shared modules (the model loader belongs to training and the Space).
WORKER_MODULES = sorted(
    path
    for pattern in ("beam_seg/*.py", "beam_seg/data/**/*.py", "beam_seg/publish/**/*.py", "beam_seg/hub/**/*.py")
    for path in glob.glob(os.path.join(REPO_ROOT, pattern), recursive=True)
    if os.path.basename(path) != "loader.py"
)


def test_workers_install_every_package_stages_1_and_3_import(worker_requirements):
    """With no training package on the workers, nothing those bring along is there: every package stages 1 and 3
    import must be required directly (e.g. tensorflow-metadata, which schema.pbtxt needs)."""
    installed = worker_deps.closure(worker_requirements)
    assert len(WORKER_MODULES) > 30
    missing = {}
    for path in WORKER_MODULES:
        for module in worker_deps.third_party_imports(path):
            distribution = worker_deps.distribution_of(module)
            if distribution not in installed:
                missing[f"{os.path.relpath(path, REPO_ROOT)}: {module}"] = distribution
    assert not missing, missing
