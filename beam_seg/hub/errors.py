"""The Hub layer's errors: one-line messages that name the repository and never the token.

:func:`translate_error` (and the :func:`hub_call` context manager) turn the client's HTTP and network exceptions into
a :class:`HubError` subclass; :func:`one_line` finds that message again when a runner re-raised it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from beam_seg import cli
from beam_seg.hub.retry import RETRYABLE_STATUS, is_network_error, status_of

__all__ = [
    "AuthenticationError",
    "ConcurrentUpdateError",
    "HubError",
    "HubUnavailableError",
    "MissingTokenError",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "VersionConflictError",
    "VersionNotFoundError",
    "hub_call",
    "one_line",
    "scrub",
    "translate_error",
]


class HubError(RuntimeError):
    """A Hub operation failed; the message is one line that names the repository and never the token.

    Attributes:
        repo_id: The repository concerned (``None`` if none).
        status: The HTTP status behind the error, if any.
    """

    def __init__(self, message: str, *, repo_id: str | None = None, status: int | None = None) -> None:
        super().__init__(scrub(" ".join(message.split())))
        self.repo_id = repo_id
        self.status = status


class MissingTokenError(HubError):
    """No Hugging Face token in ``HF_TOKEN`` nor in the standard token location."""


class AuthenticationError(HubError):
    """HTTP 401: the token was rejected."""


class PermissionDeniedError(HubError):
    """HTTP 403: the token may not write to the repository."""


class NotFoundError(HubError):
    """HTTP 404: the repository, revision or file does not exist (or is private to someone else)."""


class PaymentRequiredError(HubError):
    """HTTP 402: the account's plan does not cover the request (e.g. a Gradio Space on cpu-basic for a free account).

    Attributes:
        server_message: What the Hub said, one line.
    """

    def __init__(self, message: str, *, server_message: str, repo_id: str | None = None) -> None:
        super().__init__(message, repo_id=repo_id, status=402)
        self.server_message = server_message


class HubUnavailableError(HubError):
    """The Hub could not be reached, or kept answering 429/5xx after every retry."""


class ConcurrentUpdateError(HubError):
    """The branch moved to content we did not write while we were committing."""


class VersionConflictError(HubError):
    """The version already exists with different content (published versions are immutable)."""


class VersionNotFoundError(HubError):
    """The requested version is not a tag of the model repository."""


def scrub(text: str) -> str:
    """Removes the current Hugging Face token from ``text`` (a last line of defence for messages)."""
    from huggingface_hub import get_token

    token = get_token()
    return text.replace(token, "hf_***") if token and len(token) >= 8 else text


def translate_error(
    exc: BaseException, *, action: str, repo_id: str, repo_type: str = "model", endpoint: str | None = None
) -> HubError | None:
    """A one-line :class:`HubError` for a client exception, or ``None`` if ``exc`` is not a Hub/network error.

    Args:
        exc: What the client raised.
        action: What we were doing, as a gerund phrase (``"creating"``, ``"uploading files to"``).
        repo_id: The repository.
        repo_type: ``model`` or ``space``.
        endpoint: The Hub URL, named in network errors.
    """
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, HubError):
        return exc
    what = f"{repo_type} repo {repo_id}"
    where = endpoint or "the Hub's endpoint (HF_ENDPOINT)"
    if is_network_error(exc) or isinstance(exc, LocalEntryNotFoundError):
        return HubUnavailableError(
            f"cannot reach the Hub at {where} while {action} {what} ({type(exc).__name__}); check the network, "
            "HF_ENDPOINT and proxy settings, then re-run (finished work is not redone)",
            repo_id=repo_id,
        )
    if not isinstance(exc, HfHubHTTPError):
        return None
    status = status_of(exc)
    if status == 401:
        return AuthenticationError(
            f"the Hub rejected the token (HTTP 401) while {action} {what}: set HF_TOKEN to a valid token "
            "(https://huggingface.co/settings/tokens)",
            repo_id=repo_id,
            status=401,
        )
    if status == 403:
        namespace = repo_id.split("/", 1)[0]
        return PermissionDeniedError(
            f"no write access (HTTP 403) while {action} {what}: use a token with write permission on "
            f"namespace {namespace!r}",
            repo_id=repo_id,
            status=403,
        )
    if status == 404 or isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)):
        kind = "revision" if isinstance(exc, RevisionNotFoundError) else "repository"
        return NotFoundError(
            f"{kind} not found (HTTP 404) while {action} {what}: check the repo id and type, and that the token "
            "can see it if it is private",
            repo_id=repo_id,
            status=404,
        )
    detail = (getattr(exc, "server_message", None) or str(exc)).strip().splitlines()
    if status == 402:
        said = detail[0][:300] if detail else "payment required"
        return PaymentRequiredError(
            f"the Hub answered HTTP 402 while {action} {what}: {said}", server_message=said, repo_id=repo_id
        )
    if status in RETRYABLE_STATUS:
        return HubUnavailableError(
            f"the Hub kept answering HTTP {status} while {action} {what}, after retrying; try again later",
            repo_id=repo_id,
            status=status,
        )
    return HubError(
        f"HTTP {status} while {action} {what}: {detail[0][:300] if detail else type(exc).__name__}",
        repo_id=repo_id,
        status=status,
    )


@contextmanager
def hub_call(action: str, *, repo_id: str, repo_type: str = "model", endpoint: str | None = None) -> Iterator[None]:
    """Context manager translating Hub/network errors raised inside into one-line :class:`HubError` s."""
    try:
        yield
    except HubError:
        raise
    except Exception as exc:
        error = translate_error(exc, action=action, repo_id=repo_id, repo_type=repo_type, endpoint=endpoint)
        if error is None:
            raise
        raise error from exc


def one_line(exc: BaseException) -> str:
    """The one-line message of ``exc``: its :class:`HubError` (also when Beam re-raised it), else its first line."""
    return scrub(cli.find_error(exc, HubError) or cli.first_line(exc))
