"""Shared pytest fixtures: sample PETS data, a real TFRecord run, and a local GCS emulator.

Hub-client environment: ``huggingface_hub`` reads its settings when first imported, so the
variables that keep tests offline and on plain LFS (no Xet) are set here, before any test
module can import it.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
import time
import urllib.request
import zlib
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("HF_TOKEN", None)  # Tests never see a real token.

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from beam_seg.data import sample as sample_data  # noqa: E402

# The Hub test double's fixtures (hub_server, hub_token, hub_client_env, hub_api), for every test module.
pytest_plugins = ["hubserver.fixtures"]

# Runner flags for small in-process pipelines (fast start; the multi-process runner has its own test).
IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def free_port() -> int:
    """Returns a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pets_dir(tmp_path_factory: pytest.TempPathFactory) -> sample_data.SampleDataset:
    """A small synthetic PETS dataset with the real archives' faults, plus its two tarballs."""
    root = tmp_path_factory.mktemp("pets")
    return sample_data.make_sample_data(str(root), num_images=60, min_size=64, max_size=160, archives=True, seed=1)


@pytest.fixture
def pets_copy(pets_dir: sample_data.SampleDataset, tmp_path) -> str:
    """A private copy of the extracted sample layout that a test may damage."""
    dst = tmp_path / "pets"
    shutil.copytree(os.path.join(pets_dir.root, "images"), dst / "images")
    shutil.copytree(os.path.join(pets_dir.root, "annotations"), dst / "annotations")
    return str(dst)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gcp-storage-emulator on a free port; sets ``STORAGE_EMULATOR_HOST`` for this process and children.

    Beam's GcsIO uses google-cloud-storage, which sends every request to the emulator when that
    variable is set; with no credentials on the machine Beam builds an anonymous client.
    """
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=False, data_dir=str(tmp_path_factory.mktemp("gcs")))
    server.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/storage/v1/b?project=test", timeout=2).read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    # Mocked: Google credentials cannot exist here. Beam's GcsIO looks for Application Default
    # Credentials with ~30 s of retries before it falls back to an anonymous client (it ignores
    # --no_auth); seed its per-process cache with that anonymous outcome instead of waiting.
    from apache_beam.internal.gcp import auth

    saved = (auth._Credentials._credentials_init, auth._Credentials._credentials)
    auth._Credentials._credentials_init, auth._Credentials._credentials = True, None
    try:
        yield url
    finally:
        auth._Credentials._credentials_init, auth._Credentials._credentials = saved
        server.stop()
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old


def declaring_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG or PNG whose header declares ``width`` x ``height``, its body unchanged (a decompression bomb)."""
    if data.startswith(b"\x89PNG"):
        ihdr = data[12:16] + struct.pack(">II", width, height) + data[24:29]
        return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC1, 0xC2):  # Walk the markers to the frame header.
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return data[: pos + 5] + struct.pack(">HH", height, width) + data[pos + 9 :]
