"""Pytest fixtures of the Hub test double, registered for every test by ``tests/conftest.py`` (``pytest_plugins``).

Test modules take them as arguments without importing them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .accounts import DEFAULT_ORG, DEFAULT_TOKEN, DEFAULT_USER
from .client import configure_hf_client
from .server import HubServer

if TYPE_CHECKING:
    from huggingface_hub import HfApi


@pytest.fixture
def hub_server(tmp_path: Path) -> Iterator[HubServer]:
    """A fresh :class:`HubServer` with user ``DEFAULT_USER`` (token ``DEFAULT_TOKEN``, org ``DEFAULT_ORG``)."""
    with HubServer(storage_dir=tmp_path / "hub-server-storage") as server:
        server.add_user(DEFAULT_USER, DEFAULT_TOKEN, orgs=(DEFAULT_ORG,))
        yield server


@pytest.fixture
def hub_token(hub_server: HubServer) -> str:
    """Write token of ``DEFAULT_USER`` on ``hub_server``."""
    return DEFAULT_TOKEN


@pytest.fixture
def hub_client_env(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HubServer:
    """``hub_server`` with the ``huggingface_hub`` client configured to use it (see :func:`configure_hf_client`)."""
    configure_hf_client(hub_server.url, monkeypatch, tmp_path / "hf-cache")
    return hub_server


@pytest.fixture
def hub_api(hub_client_env: HubServer, hub_token: str) -> HfApi:
    """An ``HfApi`` bound to ``hub_server`` and authenticated as ``DEFAULT_USER``."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_client_env.url, token=hub_token)
