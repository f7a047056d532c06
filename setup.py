"""Packaging for beam_seg: what Dataflow workers of stages 1 and 3 install, and the extras for the rest.

Versions are not written here: they come from ``constraints.txt``, the project's single lock file
(``pip freeze`` of a working environment), so a laptop, CI and every Dataflow worker run the same
versions of the direct dependencies.

``install_requires`` is what the Beam jobs (stage 1, ``beam_seg.data``; stage 3, ``beam_seg.publish``), the Hub
layer and the shared modules import, and nothing more: Beam stages this file with ``--setup_file ./setup.py`` and
every Dataflow worker pip-installs the package with exactly these requirements (``run_dataflow.sh --gcp`` gives
the workers an image that already holds them, ``docker/worker.Dockerfile``). TensorFlow and the rest of training
are the ``train`` extra, which stage 2 and the model loader need:

    pip install -c constraints.txt -e '.[train,app,test]'   # everything (what scripts/bootstrap_venv.sh installs)
    pip install -c constraints.txt '.[train]'               # the training image, docker/train.Dockerfile
    pip install -c constraints.txt .                        # stages 1 and 3 only (the Dataflow worker image)
"""

from __future__ import annotations

import pathlib
import re

import setuptools

HERE = pathlib.Path(__file__).resolve().parent


def _lock() -> dict[str, str]:
    pins = {}
    for line in (HERE / "constraints.txt").read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def _pinned(*requirements: str) -> list[str]:
    lock = _lock()
    out = []
    for requirement in requirements:
        name = re.sub(r"\[.*\]", "", requirement)
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key not in lock:
            raise RuntimeError(f"{name!r} is not pinned in constraints.txt; add it to the lock file")
        out.append(f"{requirement}=={lock[key]}")
    return out


setuptools.setup(
    name="beam_seg",
    version=re.search(r'__version__ = "([^"]+)"', (HERE / "beam_seg" / "__init__.py").read_text()).group(1),
    description="Oxford-IIIT Pet segmentation: Beam TFRecords, Keras U-Net, Hugging Face Hub publishing.",
    packages=setuptools.find_packages(include=["beam_seg", "beam_seg.*"]),
    python_requires=">=3.10,<3.13",
    # Stages 1 and 3, the Hub layer and the shared modules: no TensorFlow (tests/test_stage_imports.py checks
    # that every module of theirs imports only these and what they pull in).
    install_requires=_pinned(
        "apache-beam[gcp]",  # The Beam jobs and gs:// I/O; its gcp extra also brings Secret Manager's client.
        "google-cloud-secret-manager",  # beam_seg.hub.auth: the Hub token of Dataflow workers.
        "huggingface-hub",
        "httpx2",  # beam_seg.hub.retry: huggingface_hub's HTTP client, whose transport errors are retried.
        "pillow",
        "numpy",
        "protobuf",  # The record codec builds tf.train.Example protos itself.
        "google-crc32c",  # TFRecord framing.
        "tensorflow-metadata",  # The Schema proto of schema.pbtxt (protobuf only, no TensorFlow).
    ),
    extras_require={
        # Stage 2 (python -m beam_seg.train) and the model loader (beam_seg.loader): TensorFlow and Keras to train,
        # export and load the model, matplotlib for the training reports, ai-edge-litert to score the LiteRT models.
        "train": _pinned("tensorflow", "keras", "matplotlib", "ai-edge-litert"),
        # The Gradio Space template served locally (its model runs on LiteRT, as on the Space).
        "app": _pinned("gradio", "ai-edge-litert"),
        "test": _pinned("pytest", "pytest-timeout", "gcp-storage-emulator", "playwright", "ruff"),
    },
)
