"""Pointing the real ``huggingface_hub`` client, already imported, at a :class:`~.server.HubServer`."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest


def configure_hf_client(endpoint: str, monkeypatch: pytest.MonkeyPatch, cache_dir: str | os.PathLike[str]) -> None:
    """Points the already-imported ``huggingface_hub`` client at ``endpoint``, LFS only, no Xet.

    Patches, for the duration of the test, the import-time constants that calls made *without* an explicit
    ``endpoint=`` rely on (``ModelCard.push_to_hub`` / ``load``, ``RepoCard.validate``, module-level
    ``upload_file`` ...), disables Xet (``is_xet_available()`` reads ``constants.HF_HUB_DISABLE_XET`` at call
    time) and telemetry, and uses ``cache_dir`` as the default download cache. Environment variables are
    also set for subprocesses started by the test.

    Args:
        endpoint: Base URL of the server (``HubServer.url``).
        monkeypatch: The pytest monkeypatch fixture (undoes everything after the test).
        cache_dir: Default ``HF_HUB_CACHE`` for downloads.
    """
    from huggingface_hub import constants, hf_api

    for env, value in (
        ("HF_ENDPOINT", endpoint),
        ("HF_HUB_DISABLE_XET", "1"),
        ("HF_HUB_DISABLE_TELEMETRY", "1"),
        ("HF_HUB_CACHE", str(cache_dir)),
    ):
        monkeypatch.setenv(env, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)
