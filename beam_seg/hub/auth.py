"""Who talks to which Hub: the endpoint, the token (environment, saved login or Secret Manager) and the client.

The token only ever comes from ``HF_TOKEN``, the login ``hf auth login`` saved, or (on Dataflow workers) a Secret
Manager secret named by a flag; it is never a flag itself and never appears in a message.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from beam_seg.hub.errors import MissingTokenError, one_line

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "DEFAULT_ENDPOINT",
    "make_api",
    "repo_url",
    "require_token",
    "resolve_endpoint",
    "resolve_token",
    "secret_version_name",
    "use_token_secret",
]

DEFAULT_ENDPOINT = "https://huggingface.co"


def resolve_endpoint() -> str:
    """The Hub URL: ``HF_ENDPOINT`` read now (``huggingface_hub`` binds its own copy at import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def resolve_token() -> str | None:
    """The token from ``HF_TOKEN`` or the standard ``huggingface_hub`` location (``get_token()``), if any."""
    from huggingface_hub import get_token

    return get_token()


_SECRET_VERSION = re.compile(r"projects/[^/\s]+/secrets/[^/\s]+(/versions/[^/\s]+)?")


def secret_version_name(name: str) -> str:
    """Validates a Secret Manager resource name; a bare ``projects/P/secrets/S`` means its latest version.

    Raises:
        ValueError: quoting ``name`` when it is not ``projects/P/secrets/S[/versions/V]``.
    """
    if not _SECRET_VERSION.fullmatch(name):
        raise ValueError(
            f"--hf_token_secret {name!r} is not a Secret Manager secret: expected "
            "projects/<project>/secrets/<name>[/versions/<version or latest>]"
        )
    return name if "/versions/" in name else f"{name}/versions/latest"


def use_token_secret(name: str) -> None:
    """Makes the token stored in Secret Manager (secret version ``name``) this process's Hub token.

    For Dataflow workers, whose containers have no ``HF_TOKEN``: the token is read once per process with
    the worker's own credentials (its service account needs ``roles/secretmanager.secretAccessor``) and
    put in ``HF_TOKEN``, where :func:`resolve_token` and :func:`scrub` find it. A token the process already
    has (``HF_TOKEN`` or the saved login) wins, and nothing is fetched.

    Raises:
        MissingTokenError: when the secret cannot be read (names the secret, never a token).
    """
    if resolve_token():
        return
    name = secret_version_name(name)
    try:
        from google.cloud import secretmanager

        response = secretmanager.SecretManagerServiceClient().access_secret_version(name=name)
        token = response.payload.data.decode("utf-8").strip()
    except Exception as e:
        raise MissingTokenError(
            f"cannot read the Hugging Face token from Secret Manager {name}: {type(e).__name__}: "
            f"{one_line(e)} (the reader needs roles/secretmanager.secretAccessor on it)"
        ) from None
    if not token:
        raise MissingTokenError(f"Secret Manager {name} holds an empty Hugging Face token")
    os.environ["HF_TOKEN"] = token


def require_token(repo_id: str) -> str:
    """Like :func:`resolve_token` but raises :class:`MissingTokenError` with instructions when there is none."""
    token = resolve_token()
    if not token:
        raise MissingTokenError(
            f"no Hugging Face token to write {repo_id}: export HF_TOKEN=<a write token from "
            "https://huggingface.co/settings/tokens> or run `hf auth login` (tokens are never accepted as flags)",
            repo_id=repo_id,
        )
    return token


def make_api(*, endpoint: str | None = None, token: str | None = None) -> HfApi:
    """An ``HfApi`` bound explicitly to ``endpoint`` (default :func:`resolve_endpoint`) and ``token``."""
    from huggingface_hub import HfApi

    from beam_seg import __version__

    return HfApi(
        endpoint=endpoint or resolve_endpoint(),
        token=token if token is not None else resolve_token(),
        library_name="beam_seg",
        library_version=__version__,
    )


def repo_url(endpoint: str, repo_id: str, repo_type: str = "model") -> str:
    """The web URL of a repository (``/spaces/`` prefix for Spaces)."""
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return f"{endpoint.rstrip('/')}/{prefix}{repo_id}"
