"""Packaging for beam_seg: the package local installs and Dataflow workers install alike.

Versions are not written here: they come from ``constraints.txt``, the project's single lock file
(``pip freeze`` of a working environment), so a laptop, CI and every Dataflow worker run the same
versions of the direct dependencies. Beam stages this file with ``--setup_file ./setup.py``.
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
    install_requires=_pinned(
        "apache-beam[gcp]",
        "tensorflow",
        "tfx-bsl",
        "huggingface-hub",
        "pillow",
        "numpy",
        "matplotlib",
        "protobuf",
        "google-crc32c",
    ),
    extras_require={
        # The Gradio Space template and its browser test.
        "app": _pinned("gradio"),
        "test": _pinned("pytest", "pytest-timeout", "gcp-storage-emulator", "playwright", "ruff"),
    },
)
