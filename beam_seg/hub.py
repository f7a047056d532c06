"""Hugging Face Hub helpers of the publish stage: token and endpoint, retries, one-line errors, exact commits.

Everything goes through ``HfApi`` and its public helpers. What the client does not do for us:

* **Retries where the client has none.** ``huggingface_hub`` retries 408/429/5xx and dropped connections (honouring
  ``Retry-After``) on preupload, LFS batch/PUT/verify and paginated listings, so those calls are used as they are.
  ``create_repo``, ``create_branch``, ``create_tag``, ``list_repo_refs`` and ``create_commit`` are single attempts;
  :func:`call_with_retry` wraps the idempotent ones, and :func:`commit_tree` makes ``create_commit`` safe to retry:
  every commit carries ``parent_commit``, and after a failure the branch head is read back — if it moved to a tree
  equal to the one we were committing, the commit landed and is not sent again.
* **Exact, idempotent commits.** :func:`commit_tree` diffs the wanted files against the branch head by git blob id,
  sends only the changes (and deletes files that are no longer wanted) and makes no commit at all when the head
  already holds exactly these files. Commits are split at :data:`MAX_FILES_PER_COMMIT` operations.
* **Parallel LFS transfers.** :func:`upload_lfs_files` speaks the LFS protocol of ``preupload_lfs_files`` (batch
  call, ``PUT``, verify) through the client's public helpers, but sends the parts of a file the Hub wants in parts
  (multipart: ``chunk_size`` and one URL per part) concurrently, where the client sends them one after another.
* **Immutable versions.** :func:`publish_version` commits to ``main`` then points a tag and a branch named after the
  version at that commit; an existing version is accepted only with exactly the same files. The reads it needs
  first (refs, the head with its files, the client's preupload) go out together.
* **One-line errors.** :func:`translate_error` turns 401/403/404, network failures and exhausted retries into a
  :class:`HubError` whose message is one line naming the repository and never the token.

Per-commit limits (see :func:`split_operations`): the Hub documentation ("Repository limitations and
recommendations", https://huggingface.co/docs/hub/repositories-recommendations) recommends commits of fewer than
100 files for HTTP uploads, and the ``HfApi.create_commit`` docstring (huggingface_hub 2.4.0) states a hard limit of
25k LFS files and a 1 GB payload of regular (inline, base64-encoded) files per commit.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_RETRY",
    "LFS_MIN_BYTES",
    "MAX_FILES_PER_COMMIT",
    "MAX_INLINE_BYTES_PER_COMMIT",
    "AuthenticationError",
    "BranchHead",
    "ConcurrentUpdateError",
    "FileOperation",
    "HubError",
    "HubUnavailableError",
    "LocalFile",
    "MissingTokenError",
    "NotFoundError",
    "PermissionDeniedError",
    "RetryPolicy",
    "TreeCommit",
    "VersionCommit",
    "VersionConflictError",
    "VersionNotFoundError",
    "call_with_retry",
    "commit_tree",
    "ensure_repo",
    "hub_call",
    "lfs_paths",
    "list_refs",
    "local_file",
    "make_api",
    "one_line",
    "preupload_files",
    "publish_version",
    "read_head",
    "remote_tree",
    "repo_url",
    "require_token",
    "secret_version_name",
    "resolve_endpoint",
    "resolve_token",
    "retry_delay",
    "scrub",
    "split_operations",
    "translate_error",
    "tree_differences",
    "upload_lfs_files",
    "use_token_secret",
    "validate_version",
    "xet_enabled",
]

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
# Files of at least this size are always stored with LFS by the Hub (regular files above it are rejected).
LFS_MIN_BYTES = 10 * 1024 * 1024
# https://huggingface.co/docs/hub/repositories-recommendations: "Commit size <100 files" (HTTP uploads).
MAX_FILES_PER_COMMIT = 100
# HfApi.create_commit docstring: "limited to 25k LFS files and a 1GB payload for regular files".
MAX_INLINE_BYTES_PER_COMMIT = 1_000_000_000
RETRYABLE_STATUS: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
# Paths every Hub repo starts with; never deleted by an exact commit.
KEEP_PATHS: tuple[str, ...] = (".gitattributes",)
# Hashing reads blocks small enough to be hashed while still in the core's cache: alone, 256 KiB blocks cost 30% less
# CPU than 8 MiB ones (0.19 vs 0.27 CPU-s per 200 MB on the CI machine); within a publish, where the transfers share
# the caches, 6% less.
_READ_BLOCK = 256 * 1024
_SEND_BLOCK = 1024 * 1024
# Objects per LFS batch call (the client's own batches in ``_commit_api``: UPLOAD_BATCH_MAX_NUM_FILES).
_LFS_BATCH_OBJECTS = 256
_SHA40 = re.compile(r"[0-9a-f]{40}")
_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------- errors


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
    token = resolve_token()
    return text.replace(token, "hf_***") if token and len(token) >= 8 else text


# ---------------------------------------------------------------------------------------------- setup


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
    except Exception as e:  # noqa: BLE001 - any failure becomes one clear line naming the secret.
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


# ---------------------------------------------------------------------------------------------- retries


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for the calls ``huggingface_hub`` does not retry itself.

    Attributes:
        max_attempts: Attempts in total (the first one included).
        base_delay_s: Wait before the second attempt; doubled after each failure.
        max_delay_s: Cap of the exponential wait.
        max_retry_after_s: Cap of a server-requested ``Retry-After`` wait.
    """

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0


DEFAULT_RETRY = RetryPolicy()


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_network_error(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, httpx2.TransportError)


def retry_delay(exc: BaseException, attempt: int, policy: RetryPolicy) -> float | None:
    """Seconds to wait before retrying after ``exc`` on attempt ``attempt`` (1-based), or ``None`` to give up.

    429/5xx/408 and network errors are retried; ``Retry-After: N`` (or a 429 ``RateLimit`` reset) is honoured,
    capped at ``policy.max_retry_after_s``; anything else (401, 403, 404, 409, 412, bad requests) is final.
    """
    if attempt >= policy.max_attempts:
        return None
    backoff = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
    if _is_network_error(exc):
        return backoff
    status = _status(exc)
    if status not in RETRYABLE_STATUS:
        return None
    headers = exc.response.headers  # type: ignore[attr-defined]
    requested: float | None = None
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        requested = float(value)
    elif status == 429:
        from huggingface_hub.utils import parse_ratelimit_headers

        info = parse_ratelimit_headers(headers)
        if info is not None and info.remaining == 0:
            requested = float(info.reset_in_seconds)
    return backoff if requested is None else min(requested, policy.max_retry_after_s)


def call_with_retry(
    fn: Callable[[], _T],
    *,
    what: str,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Calls ``fn`` until it succeeds or fails for good; only for idempotent calls the client does not retry.

    Args:
        fn: The call (no arguments).
        what: What the call does, for the log (e.g. ``"create_repo user/name"``).
        policy: Backoff settings (default :data:`DEFAULT_RETRY`, read at call time).
        sleep: Injected in tests.

    Raises:
        Exception: The last error, unchanged (translate it with :func:`hub_call`).
    """
    policy = policy or DEFAULT_RETRY
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below; non-retryable errors are re-raised as is.
            delay = retry_delay(exc, attempt, policy)
            if delay is None:
                raise
            logger.warning("%s failed (%s); retrying in %.1fs (attempt %d of %d)", what, _short(exc), delay,
                           attempt + 1, policy.max_attempts)  # fmt: skip
            sleep(delay)


def _short(exc: BaseException) -> str:
    status = _status(exc)
    return f"HTTP {status}" if status else type(exc).__name__


# ---------------------------------------------------------------------------------------------- error translation


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
    where = endpoint or resolve_endpoint()
    if _is_network_error(exc) or isinstance(exc, LocalEntryNotFoundError):
        return HubUnavailableError(
            f"cannot reach the Hub at {where} while {action} {what} ({type(exc).__name__}); check the network, "
            "HF_ENDPOINT and proxy settings, then re-run (finished work is not redone)",
            repo_id=repo_id,
        )
    if not isinstance(exc, HfHubHTTPError):
        return None
    status = _status(exc)
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
    if status in RETRYABLE_STATUS:
        return HubUnavailableError(
            f"the Hub kept answering HTTP {status} while {action} {what}, after retrying; try again later",
            repo_id=repo_id,
            status=status,
        )
    detail = (getattr(exc, "server_message", None) or str(exc)).strip().splitlines()
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


_BEAM_SUFFIX = re.compile(r"\s*\[while running '[^']*'\]\s*$")


def one_line(exc: BaseException) -> str:
    """The one-line message of ``exc``: its :class:`HubError` (also when Beam re-raised it), else its first line."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, HubError):
            return _BEAM_SUFFIX.sub("", str(current).splitlines()[0])
        current = current.__cause__ or current.__context__
    text = str(exc).strip().splitlines()
    return scrub(_BEAM_SUFFIX.sub("", text[0]) if text else type(exc).__name__)


# ---------------------------------------------------------------------------------------------- files


@dataclasses.dataclass(frozen=True)
class LocalFile:
    """One file to publish, identified by content.

    Attributes:
        path_in_repo: Destination path (POSIX).
        size: Size in bytes.
        sha256: Hex sha256 of the content (the LFS oid).
        git_sha1: Hex git blob id of the content, for files small enough to be stored as regular git blobs.
        source: Where the content is read from (a local path or a ``gs://`` URI), if not ``data``.
        data: The content itself, for generated files (model card, rendered Space files).
    """

    path_in_repo: str
    size: int
    sha256: str
    git_sha1: str | None
    source: str | None = None
    data: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def blob_ids(self) -> frozenset[str]:
        """The git blob ids this content may have on the Hub: its LFS pointer's, or its own if stored inline."""
        ids = {_git_blob_id(_lfs_pointer(self.sha256, self.size))}
        if self.git_sha1:
            ids.add(self.git_sha1)
        return frozenset(ids)


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()  # noqa: S324 - git's object id.


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def local_file(
    path_in_repo: str, content: str | bytes, *, source: str | None = None, lfs_expected: bool = False
) -> LocalFile:
    """Hashes a local file (path) or in-memory content (bytes) in one pass.

    Args:
        path_in_repo: Destination path.
        content: A local path, or the bytes themselves (kept in the result).
        source: The original location to record when ``content`` is a staged copy (e.g. of a ``gs://`` file).
        lfs_expected: The Hub will store it with LFS (``saved_model/**``, binary...): skip the git blob id, which
            only an inline file has; comparisons compute it on demand if the Hub did store it inline.
    """
    if isinstance(content, bytes):
        sha1 = _git_blob_id(content) if len(content) < LFS_MIN_BYTES and not lfs_expected else None
        return LocalFile(path_in_repo, len(content), hashlib.sha256(content).hexdigest(), sha1, source, content)
    size = os.path.getsize(content)
    sha256 = hashlib.sha256()
    inline = size < LFS_MIN_BYTES and not lfs_expected
    sha1 = hashlib.sha1(b"blob %d\x00" % size) if inline else None  # noqa: S324 - git object id.
    buffer = memoryview(bytearray(min(size, _READ_BLOCK) or 1))  # Reused: no fresh allocation per read.
    with open(content, "rb", buffering=0) as f:
        while read := f.readinto(buffer):
            sha256.update(buffer[:read])
            if sha1 is not None:
                sha1.update(buffer[:read])
    return LocalFile(path_in_repo, size, sha256.hexdigest(), sha1.hexdigest() if sha1 else None, source or content)


# ---------------------------------------------------------------------------------------------- LFS uploads


class _FilePart(io.IOBase):
    """Bytes ``[start, start + length)`` of a local file as a request body, read when sent.

    Iterable in 1 MiB blocks: the HTTP client reads a file-like object 64 KiB at a time, and 16 times fewer trips
    through its Python send path save about half the client's CPU per byte sent. Seekable, so that ``http_backoff``
    rewinds it before a retry.
    """

    def __init__(self, path: str, start: int, length: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), which the caller's `with` calls.
        self._start, self._length, self._position = start, length, 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._length}[whence]
        self._position = max(0, min(self._length, base + offset))
        return self._position

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        self._file.seek(self._start + self._position)
        while self._position < self._length:
            block = self._file.read(min(_SEND_BLOCK, self._length - self._position))
            if not block:
                raise OSError(f"{self._file.name} ended {self._length - self._position} bytes early")
            self._position += len(block)
            yield block

    def close(self) -> None:
        self._file.close()
        super().close()


def _request_body(body: str | bytes, start: int, length: int) -> AbstractContextManager[Any]:
    """The bytes ``[start, start + length)`` of a file (path) or of in-memory content, as a request body."""
    return nullcontext(body[start : start + length]) if isinstance(body, bytes) else _FilePart(body, start, length)


@dataclasses.dataclass(frozen=True)
class _LfsAction:
    """What the LFS batch call asked for one object: where to send it (one PUT, or parts) and how to verify it."""

    file: LocalFile
    upload_url: str
    verify_url: str | None
    chunk_size: int | None
    part_urls: tuple[str, ...]

    @classmethod
    def from_batch(cls, file: LocalFile, action: dict[str, Any], endpoint: str) -> _LfsAction:
        from huggingface_hub.utils import fix_hf_endpoint_in_url

        upload, verify = action["actions"]["upload"], action["actions"].get("verify")
        header = upload.get("header") or {}
        chunk_size = int(header["chunk_size"]) if header.get("chunk_size") is not None else None
        parts: tuple[str, ...] = ()
        if chunk_size is not None:
            numbered = sorted((int(k), url) for k, url in header.items() if k.isdigit())
            parts = tuple(fix_hf_endpoint_in_url(url, endpoint) for _, url in numbered)
            if chunk_size <= 0 or len(parts) != -(-file.size // chunk_size):
                raise ValueError(f"malformed multipart instructions for {file.path_in_repo}: {len(parts)} part URLs "
                                 f"for {file.size} bytes in chunks of {chunk_size}")  # fmt: skip
        return cls(file, fix_hf_endpoint_in_url(upload["href"], endpoint),
                   fix_hf_endpoint_in_url(verify["href"], endpoint) if verify else None, chunk_size, parts)  # fmt: skip


def xet_enabled() -> bool:
    """Whether the client uploads through Xet (``hf_xet`` installed and ``HF_HUB_DISABLE_XET`` unset, read now, as
    the client does); it then bypasses the LFS protocol that :func:`upload_lfs_files` speaks."""
    import importlib.util

    from huggingface_hub import constants

    return not constants.HF_HUB_DISABLE_XET and importlib.util.find_spec("hf_xet") is not None


def upload_lfs_files(
    api: HfApi,
    *,
    repo_id: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    executor: concurrent.futures.Executor,
    repo_type: str = "model",
    revision: str = "main",
) -> tuple[str, ...]:
    """Sends the LFS content of ``files`` that the Hub does not hold yet; returns the paths actually sent.

    The protocol of ``HfApi.preupload_lfs_files`` through the client's public helpers: one LFS batch call
    (``huggingface_hub.lfs.post_lfs_batch_info``) says which objects are missing and how to send each, then a single
    ``PUT`` or, when the Hub asks for a multipart transfer (``chunk_size`` + one URL per part), every part ``PUT``
    concurrently on ``executor`` (the client sends the parts of a file one after another, and the Hub's storage caps
    each connection) and the completion call; then the verify call. Every request goes through ``http_backoff``
    (429/5xx honouring ``Retry-After``, dropped connections). Objects already on the Hub are skipped, so a retried
    or resumed upload re-sends only what never arrived. Nothing asks the Hub which files it wants in LFS: pass the
    ones predicted so; a file it would store inline just becomes an unused LFS object, and :func:`commit_tree`
    uploads any file it wants in LFS that was not sent here.

    Args:
        api: Client (endpoint and token).
        repo_id: Repository.
        files: Files to send (hashed: ``sha256`` is the LFS oid).
        content: Gives the local path or bytes of a file.
        executor: Runs the transfers (files and parts); the caller sizes it.
        repo_type: ``model`` or ``space``.
        revision: Branch the objects are meant for.

    Raises:
        HubError: On a final failure (one line, names the repo).
    """
    from urllib.parse import quote

    from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info
    from huggingface_hub.utils import build_hf_headers

    unique = {f.sha256: f for f in files}  # Identical content is one object.
    if not unique:
        return ()
    headers = build_hf_headers(token=api.token, library_name=api.library_name, library_version=api.library_version)
    with hub_call("uploading files to", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        oids = list(unique)
        actions: list[_LfsAction] = []
        for start in range(0, len(oids), _LFS_BATCH_OBJECTS):
            infos = [UploadInfo(size=unique[oid].size, sample=b"", sha256=bytes.fromhex(oid))
                     for oid in oids[start : start + _LFS_BATCH_OBJECTS]]  # fmt: skip
            found, errors, _ = post_lfs_batch_info(upload_infos=infos, token=api.token, repo_type=repo_type,
                                                   repo_id=repo_id, revision=quote(revision, safe=""),
                                                   endpoint=api.endpoint, headers=headers)  # fmt: skip
            if errors:
                error = errors[0]
                raise HubError(f"the Hub refused to store {unique[error['oid']].path_in_repo} of {repo_type} repo "
                               f"{repo_id} (LFS error {error['error']['code']}: {error['error']['message']})",
                               repo_id=repo_id)  # fmt: skip
            actions += [_LfsAction.from_batch(unique[a["oid"]], a, api.endpoint) for a in found if a.get("actions")]
        bodies = {a.file.sha256: content(a.file) for a in actions}
        singles = [executor.submit(_put_object, a, bodies[a.file.sha256], headers) for a in actions if not a.part_urls]
        parts = {a.file.sha256: [executor.submit(_put_part, bodies[a.file.sha256], a, n)
                                 for n in range(len(a.part_urls))]
                 for a in actions if a.part_urls}  # fmt: skip
        concurrent.futures.wait([*singles, *(f for fs in parts.values() for f in fs)])  # No transfer outlives us.
        for future in singles:
            future.result()
        for action in (a for a in actions if a.part_urls):
            _complete_multipart(action, [f.result() for f in parts[action.file.sha256]], headers)
    return tuple(sorted(a.file.path_in_repo for a in actions))


def _put_object(action: _LfsAction, body: str | bytes, headers: Mapping[str, str]) -> None:
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    with _request_body(body, 0, action.file.size) as data:
        hf_raise_for_status(http_backoff("PUT", action.upload_url, data=data))
    _verify(action, headers)


def _put_part(body: str | bytes, action: _LfsAction, index: int) -> str:
    """Sends part ``index`` (0-based) of a multipart object; returns its ETag."""
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    assert action.chunk_size is not None
    start = index * action.chunk_size
    with _request_body(body, start, min(action.chunk_size, action.file.size - start)) as data:
        response = http_backoff("PUT", action.part_urls[index], data=data)
    hf_raise_for_status(response)
    etag = response.headers.get("etag")
    if not etag:
        raise ValueError(f"no ETag for part {index + 1} of {action.file.path_in_repo}")
    return etag


def _complete_multipart(action: _LfsAction, etags: Sequence[str], headers: Mapping[str, str]) -> None:
    from huggingface_hub.lfs import LFS_HEADERS
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    payload = {"oid": action.file.sha256, "parts": [{"partNumber": n, "etag": e} for n, e in enumerate(etags, 1)]}
    hf_raise_for_status(http_backoff("POST", action.upload_url, json=payload, headers=LFS_HEADERS))
    _verify(action, headers)


def _verify(action: _LfsAction, headers: Mapping[str, str]) -> None:
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    if action.verify_url is not None:
        payload = {"oid": action.file.sha256, "size": action.file.size}
        hf_raise_for_status(http_backoff("POST", action.verify_url, headers=dict(headers), json=payload))


# ---------------------------------------------------------------------------------------------- repos and refs


def ensure_repo(
    api: HfApi, *, repo_id: str, repo_type: str = "model", private: bool = False, policy: RetryPolicy | None = None
) -> str:
    """Creates the repository if needed (``exist_ok=True``; any other error is raised) and returns its URL."""
    kwargs: dict[str, Any] = {"space_sdk": "gradio"} if repo_type == "space" else {}
    with hub_call("creating", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        url = call_with_retry(
            lambda: api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **kwargs),
            what=f"create_repo {repo_type} {repo_id}",
            policy=policy,
        )
    return str(url)


def list_refs(
    api: HfApi, *, repo_id: str, repo_type: str = "model", policy: RetryPolicy | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """``(branches, tags)`` of a repository, each ``name -> commit sha``."""
    with hub_call("reading the refs of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        refs = call_with_retry(
            lambda: api.list_repo_refs(repo_id, repo_type=repo_type),
            what=f"list_repo_refs {repo_type} {repo_id}",
            policy=policy,
        )
    return ({r.name: r.target_commit for r in refs.branches}, {r.name: r.target_commit for r in refs.tags})


def remote_tree(api: HfApi, *, repo_id: str, repo_type: str = "model", revision: str) -> dict[str, str]:
    """Every file at ``revision`` as ``path -> git blob id`` (the listing is retried by the client)."""
    from huggingface_hub.hf_api import RepoFile

    with hub_call("listing the files of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        entries = api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        return {e.path: e.blob_id for e in entries if isinstance(e, RepoFile)}


def lfs_paths(api: HfApi, *, repo_id: str, repo_type: str = "model", revision: str) -> set[str]:
    """Paths stored with LFS (or Xet) at ``revision``."""
    from huggingface_hub.hf_api import RepoFile

    with hub_call("listing the files of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        entries = api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        return {e.path for e in entries if isinstance(e, RepoFile) and (e.lfs is not None or e.xet_hash)}


@dataclasses.dataclass(frozen=True)
class BranchHead:
    """A branch's head commit and the files of exactly that commit.

    Attributes:
        sha: The head commit.
        tree: Every file at ``sha`` as ``path -> git blob id``.
    """

    sha: str
    tree: Mapping[str, str]


def read_head(
    api: HfApi, *, repo_id: str, repo_type: str = "model", branch: str = "main", policy: RetryPolicy | None = None
) -> BranchHead:
    """The head of ``branch`` and its files in one call (``repo_info`` with ``files_metadata``: one consistent
    snapshot, where reading the refs then the tree takes two round trips)."""
    from huggingface_hub.errors import RevisionNotFoundError

    with hub_call("reading the head of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        try:
            info = call_with_retry(
                lambda: api.repo_info(repo_id, repo_type=repo_type, revision=branch, files_metadata=True),
                what=f"repo_info {repo_type} {repo_id}@{branch}",
                policy=policy,
            )
        except RevisionNotFoundError:
            raise NotFoundError(f"branch {branch!r} not found in {repo_type} repo {repo_id}", repo_id=repo_id,
                                status=404) from None  # fmt: skip
    return BranchHead(str(info.sha), {s.rfilename: str(s.blob_id) for s in info.siblings or ()})


def _addition(f: LocalFile, body: str | bytes) -> Any:
    """A ``CommitOperationAdd`` for ``f`` whose content ``body`` was already hashed (no second read)."""
    from huggingface_hub import CommitOperationAdd

    addition = CommitOperationAdd(f.path_in_repo, body)
    if isinstance(body, str):
        addition.upload_info.sha256 = bytes.fromhex(f.sha256)
    return addition


def preupload_files(
    api: HfApi,
    *,
    repo_id: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    repo_type: str = "model",
    revision: str = "main",
) -> dict[str, Any]:
    """``HfApi.preupload_lfs_files`` of ``files``: asks the Hub how it stores each (LFS or inline) and uploads the
    LFS content it lacks (none, after :func:`upload_lfs_files`). Returns the prepared ``CommitOperationAdd`` s by
    path: a ``create_commit`` of them repeats neither call (the client's documented two-step upload)."""
    additions = {f.path_in_repo: _addition(f, content(f)) for f in files}
    with hub_call("uploading files to", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        api.preupload_lfs_files(repo_id, additions=list(additions.values()), repo_type=repo_type, revision=revision,
                                free_memory=False)  # fmt: skip
    return additions


def _differs(remote_id: str | None, f: LocalFile, content: Callable[[LocalFile], str | bytes] | None) -> bool:
    """Whether the Hub's blob ``remote_id`` is not ``f``'s content (hashing it inline on demand if needed)."""
    if remote_id is None:
        return True
    if remote_id in f.blob_ids:
        return False
    if f.git_sha1 is not None or f.size >= LFS_MIN_BYTES or content is None:
        return True
    body = content(f)  # Expected as LFS but the Hub stored it inline (a custom .gitattributes): compare that way.
    if isinstance(body, str):
        with open(body, "rb") as fh:
            body = fh.read()
    return _git_blob_id(body) != remote_id


def tree_differences(
    remote: Mapping[str, str],
    files: Sequence[LocalFile],
    keep: Sequence[str] = KEEP_PATHS,
    content: Callable[[LocalFile], str | bytes] | None = None,
) -> list[str]:
    """Paths where ``remote`` differs from exactly ``files`` (plus ``keep`` paths, which are ignored)."""
    wanted = {f.path_in_repo: f for f in files}
    changed = [p for p, f in wanted.items() if _differs(remote.get(p), f, content)]
    extra = [p for p in remote if p not in wanted and p not in keep]
    return sorted(changed + extra)


# ---------------------------------------------------------------------------------------------- commits


@dataclasses.dataclass(frozen=True)
class FileOperation:
    """One change of a commit: add (or replace) ``path`` with ``add``, or delete ``path`` when ``add`` is None."""

    path: str
    add: LocalFile | None

    @property
    def inline_bytes(self) -> int:
        """Upper bound of this operation's inline payload (regular files travel base64-encoded in the commit)."""
        if self.add is None or self.add.size >= LFS_MIN_BYTES:
            return 0
        return -(-self.add.size // 3) * 4


def split_operations(
    operations: Sequence[FileOperation],
    *,
    max_files: int | None = None,
    max_inline_bytes: int | None = None,
) -> list[list[FileOperation]]:
    """Packs operations, in order, into as few commits as the per-commit limits allow.

    A commit is closed when the next operation would exceed ``max_files`` operations or ``max_inline_bytes`` of
    inline payload (files under 10 MiB may be stored inline, counted base64-encoded). Since a regular file is under
    10 MiB, the file count is the binding limit in practice, and then this greedy packing is optimal:
    ``ceil(n / max_files)`` commits. The limits default to :data:`MAX_FILES_PER_COMMIT` and
    :data:`MAX_INLINE_BYTES_PER_COMMIT` (read at call time).
    """
    max_files = MAX_FILES_PER_COMMIT if max_files is None else max_files
    max_inline_bytes = MAX_INLINE_BYTES_PER_COMMIT if max_inline_bytes is None else max_inline_bytes
    if max_files < 1:
        raise ValueError(f"max_files must be >= 1, got {max_files}")
    batches: list[list[FileOperation]] = []
    current: list[FileOperation] = []
    inline = 0
    for op in operations:
        if current and (len(current) + 1 > max_files or inline + op.inline_bytes > max_inline_bytes):
            batches.append(current)
            current, inline = [], 0
        current.append(op)
        inline += op.inline_bytes
    if current:
        batches.append(current)
    return batches


@dataclasses.dataclass(frozen=True)
class TreeCommit:
    """Result of :func:`commit_tree`.

    Attributes:
        sha: Commit whose tree holds exactly the wanted files (new, or the reused branch head).
        commits_created: New commits (0 when the branch already held these files).
        changed: Paths added or modified.
        unchanged: Paths already identical on the branch.
        deleted: Paths removed because they are no longer wanted.
    """

    sha: str
    commits_created: int
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    deleted: tuple[str, ...]


_Tree = Mapping[str, "str | LocalFile"]  # path -> blob id already on the Hub, or the file we are adding


def _apply(tree: _Tree, batch: Sequence[FileOperation]) -> dict[str, str | LocalFile]:
    out = dict(tree)
    for op in batch:
        if op.add is None:
            out.pop(op.path, None)
        else:
            out[op.path] = op.add
    return out


def _matches(remote: Mapping[str, str], expected: _Tree, content: Callable[[LocalFile], str | bytes]) -> bool:
    if remote.keys() != expected.keys():
        return False
    return all(
        not _differs(remote[p], want, content) if isinstance(want, LocalFile) else remote[p] == want
        for p, want in expected.items()
    )


def commit_tree(
    api: HfApi,
    *,
    repo_id: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    message: str,
    description: str = "",
    repo_type: str = "model",
    branch: str = "main",
    keep: Sequence[str] = KEEP_PATHS,
    head: BranchHead | None = None,
    prepared: Mapping[str, Any] | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TreeCommit:
    """Makes ``branch`` hold exactly ``files`` (plus ``keep``), idempotently and safely retried.

    Only changed files are sent (LFS objects already on the server are skipped by the client's batch call), files
    no longer wanted are deleted, and nothing is committed if the head already matches. Each commit names its
    parent; after a failed attempt the head is read back and a commit that landed is never sent twice.

    Args:
        api: Client.
        repo_id: Repository.
        files: The complete wanted content.
        content: Gives the local path or bytes of a file to upload (called only for changed files).
        message: Commit title (``" (i/n)"`` is appended when the change is split).
        description: Commit description.
        repo_type: ``model`` or ``space``.
        branch: Target branch.
        keep: Paths never deleted.
        head: The branch head and its files if the caller just read them (:func:`read_head`; saves a round trip);
            the commit names it as parent, so a head that moved since makes the commit fail rather than write on
            top of unseen changes.
        prepared: ``CommitOperationAdd`` s by path from :func:`preupload_files` (read ahead by the caller): the
            first attempt of each commit uses them, which spares ``create_commit`` its preupload and LFS batch
            round trips; retries build fresh ones.
        policy: Backoff of the commit and ref calls.
        sleep: Injected in tests.

    Raises:
        HubError: On a final failure (one line, names the repo), including :class:`ConcurrentUpdateError`.
    """
    if head is None:
        head = read_head(api, repo_id=repo_id, repo_type=repo_type, branch=branch, policy=policy)
    sha, remote = head.sha, head.tree
    wanted = {f.path_in_repo: f for f in files}
    changed = sorted(p for p, f in wanted.items() if _differs(remote.get(p), f, content))
    deleted = sorted(p for p in remote if p not in wanted and p not in keep)
    unchanged = sorted(set(wanted) - set(changed))
    operations = [FileOperation(p, None) for p in deleted] + [FileOperation(p, wanted[p]) for p in changed]
    batches = split_operations(operations)
    tree: dict[str, str | LocalFile] = dict(remote)
    for index, batch in enumerate(batches, start=1):
        title = message if len(batches) == 1 else f"{message} ({index}/{len(batches)})"
        expected = _apply(tree, batch)
        sha = _commit_batch(api, repo_id=repo_id, repo_type=repo_type, branch=branch, parent=sha, batch=batch,
                            expected=expected, title=title, description=description, content=content,
                            prepared=prepared or {}, policy=policy or DEFAULT_RETRY, sleep=sleep)  # fmt: skip
        tree = expected
    if batches:
        logger.info("%s repo %s: %d commit(s) on %s -> %s (%d changed, %d deleted, %d unchanged)", repo_type,
                    repo_id, len(batches), branch, sha[:12], len(changed), len(deleted), len(unchanged))  # fmt: skip
    else:
        logger.info("%s repo %s: %s already holds these %d files at %s; no new commit", repo_type, repo_id, branch,
                    len(wanted), sha[:12])  # fmt: skip
    return TreeCommit(sha, len(batches), tuple(changed), tuple(unchanged), tuple(deleted))


def _commit_batch(
    api: HfApi,
    *,
    repo_id: str,
    repo_type: str,
    branch: str,
    parent: str,
    batch: Sequence[FileOperation],
    expected: _Tree,
    title: str,
    description: str,
    content: Callable[[LocalFile], str | bytes],
    prepared: Mapping[str, Any],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
) -> str:
    """One commit with ``parent_commit``; on failure, checks whether it landed before retrying."""
    from huggingface_hub import CommitOperationDelete

    attempt = 0
    with hub_call("committing to", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        while True:
            attempt += 1
            operations: list[Any] = []  # Fresh ones after a failure: the client mutates what it was given.
            for op in batch:
                if op.add is None:
                    operations.append(CommitOperationDelete(op.path))
                elif attempt == 1 and op.path in prepared:
                    operations.append(prepared[op.path])
                else:
                    operations.append(_addition(op.add, content(op.add)))
            try:
                info = api.create_commit(repo_id, operations, commit_message=title, commit_description=description,
                                         repo_type=repo_type, revision=branch, parent_commit=parent)  # fmt: skip
                return info.oid
            except Exception as exc:
                if retry_delay(exc, 1, policy) is None and _status(exc) != 412:
                    raise  # Final (401, 403, 404, bad request...): translated by hub_call.
                landed = _landed(api, repo_id=repo_id, repo_type=repo_type, branch=branch, parent=parent,
                                 expected=expected, content=content, policy=policy)  # fmt: skip
                if landed is not None:
                    logger.warning("commit to %s %s failed (%s) but it landed as %s; not sending it again",
                                   repo_type, repo_id, _short(exc), landed[:12])  # fmt: skip
                    return landed
                delay = retry_delay(exc, attempt, policy)
                if delay is None:
                    raise
                logger.warning("commit to %s %s failed (%s); retrying in %.1fs (attempt %d of %d)", repo_type,
                               repo_id, _short(exc), delay, attempt + 1, policy.max_attempts)  # fmt: skip
                sleep(delay)


def _landed(
    api: HfApi,
    *,
    repo_id: str,
    repo_type: str,
    branch: str,
    parent: str,
    expected: _Tree,
    content: Callable[[LocalFile], str | bytes],
    policy: RetryPolicy,
) -> str | None:
    """The new head if our commit landed; ``None`` if the head is still ``parent``; raises if someone else moved it."""
    branches, _ = list_refs(api, repo_id=repo_id, repo_type=repo_type, policy=policy)
    head = branches.get(branch)
    if head == parent:
        return None
    if head is not None and _matches(remote_tree(api, repo_id=repo_id, repo_type=repo_type, revision=head), expected,
                                     content):  # fmt: skip
        return head
    raise ConcurrentUpdateError(
        f"branch {branch!r} of {repo_type} repo {repo_id} moved from {parent[:12]} to {str(head)[:12]} while we were "
        "committing; another writer is active; re-run when it is done",
        repo_id=repo_id,
    )


# ---------------------------------------------------------------------------------------------- versions


@dataclasses.dataclass(frozen=True)
class VersionCommit:
    """Result of :func:`publish_version`.

    Attributes:
        sha: The commit the version's tag and branch point to.
        reused: True if no commit was needed (the version, or ``main``, already held exactly these files).
        tree: The commit result (``None`` when the version already existed).
        commit_seconds: Time spent checking and committing.
        refs_seconds: Time spent creating and checking the tag and branch.
        lfs_paths: Paths stored with LFS (or Xet) in the version.
    """

    sha: str
    reused: bool
    tree: TreeCommit | None
    commit_seconds: float = 0.0
    refs_seconds: float = 0.0
    lfs_paths: frozenset[str] = frozenset()


def validate_version(version: str) -> str:
    """Checks that ``version`` can name both a tag and a branch; returns it.

    Raises:
        ValueError: quoting the bad value.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", version) or _SHA40.fullmatch(version) or version in (
        "main",
        "HEAD",
    ):
        raise ValueError(
            f"--version {version!r} cannot name a tag and a branch: use letters, digits, '.', '_' or '-' "
            "(e.g. v20261123T010203Z), not 'main' nor a commit sha"
        )
    return version


def publish_version(
    api: HfApi,
    *,
    repo_id: str,
    version: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    branch: str = "main",
    read_ahead: bool = True,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VersionCommit:
    """Publishes ``files`` as immutable version ``version``: exact commit on ``branch`` + tag and branch ``version``.

    Re-publishing identical content is a no-op; an existing version with other content is an error; an interrupted
    run is completed (missing commit, branch or tag) without duplicating anything. The refs, the head of ``branch``
    with its files and (``read_ahead``) the client's preupload of every file are independent reads, made
    concurrently: the commit then costs the slowest of them plus ``create_commit``'s own two round trips.

    Args:
        read_ahead: Preupload every file while the refs and the head are read; turn it off when ``content`` is
            costly for files that turn out unchanged (e.g. it downloads them from ``gs://``).

    Raises:
        VersionConflictError: ``version`` exists with different content, or its tag and branch disagree.
        HubError: Any other final failure.
    """
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3, thread_name_prefix="publish-version") as pool:
        refs = pool.submit(list_refs, api, repo_id=repo_id, policy=policy)
        head = pool.submit(read_head, api, repo_id=repo_id, branch=branch, policy=policy)
        prepared = (pool.submit(preupload_files, api, repo_id=repo_id, files=files, content=content, revision=branch)
                    if read_ahead else None)  # fmt: skip
        concurrent.futures.wait([f for f in (refs, head, prepared) if f is not None])
    branches, tags = refs.result()
    if version in tags and version in branches and tags[version] != branches[version]:
        raise VersionConflictError(
            f"version {version!r} of model repo {repo_id} is inconsistent: tag -> {tags[version][:12]}, "
            f"branch -> {branches[version][:12]}; fix or delete one of them, or publish under a new --version",
            repo_id=repo_id,
        )
    existing = tags.get(version) or branches.get(version)
    if existing is not None:
        at_head = head.exception() is None and head.result().sha == existing
        tree = head.result().tree if at_head else remote_tree(api, repo_id=repo_id, revision=existing)
        differences = tree_differences(tree, files, content=content)
        if differences:
            shown = ", ".join(differences[:3]) + (f" and {len(differences) - 3} more" if len(differences) > 3 else "")
            raise VersionConflictError(
                f"version {version!r} of model repo {repo_id} already exists at {existing[:12]} with different "
                f"content ({shown}); published versions are immutable: choose another --version",
                repo_id=repo_id,
            )
        logger.info("version %s of %s already published at %s with identical content", version, repo_id, existing[:12])
        checked = time.monotonic()
        lfs = _ensure_version_refs(api, repo_id=repo_id, version=version, sha=existing, policy=policy,
                                   branch_exists=version in branches, tag_exists=version in tags)  # fmt: skip
        return VersionCommit(existing, True, None, checked - started, time.monotonic() - checked, lfs)
    result = commit_tree(api, repo_id=repo_id, files=files, content=content, message=f"Publish {version}",
                         description=f"beam_seg publish of version {version}", branch=branch, head=head.result(),
                         prepared=prepared.result() if prepared else None, policy=policy, sleep=sleep)  # fmt: skip
    committed = time.monotonic()
    lfs = _ensure_version_refs(api, repo_id=repo_id, version=version, sha=result.sha, policy=policy)
    return VersionCommit(result.sha, result.commits_created == 0, result, committed - started,
                         time.monotonic() - committed, lfs)  # fmt: skip


def _ensure_version_refs(
    api: HfApi,
    *,
    repo_id: str,
    version: str,
    sha: str,
    policy: RetryPolicy | None,
    branch_exists: bool = False,
    tag_exists: bool = False,
) -> frozenset[str]:
    """Creates the missing ``version`` branch and tag at ``sha`` (concurrently); verifies them on a conflict.

    Existing refs were already checked by the caller. A 409 means one appeared meanwhile (or a retried request
    had landed): the refs are then read back and must point at ``sha``. Returns the LFS paths at ``sha``, read in
    the same round trip.
    """
    from huggingface_hub.errors import HfHubHTTPError

    def create(kind: str) -> bool:
        """Creates one ref; returns False on a 409 (exists) so the caller verifies it."""
        if kind == "branch":
            call = lambda: api.create_branch(repo_id, branch=version, revision=sha)  # noqa: E731
        else:
            call = lambda: api.create_tag(repo_id, tag=version, revision=sha,  # noqa: E731
                                          tag_message=f"beam_seg version {version}")  # fmt: skip
        try:
            call_with_retry(call, what=f"create_{kind} {version} on {repo_id}", policy=policy)
        except HfHubHTTPError as e:
            if _status(e) != 409:
                raise
            return False
        return True

    wanted = [kind for kind, exists in (("branch", branch_exists), ("tag", tag_exists)) if not exists]
    with hub_call("creating the version branch and tag of", repo_id=repo_id, endpoint=api.endpoint):
        with concurrent.futures.ThreadPoolExecutor(len(wanted) + 1) as pool:
            lfs = pool.submit(lfs_paths, api, repo_id=repo_id, revision=sha)
            created = list(pool.map(create, wanted))
            stored_in_lfs = frozenset(lfs.result())
    if all(created):
        return stored_in_lfs
    branches, tags = list_refs(api, repo_id=repo_id, policy=policy)
    if branches.get(version) != sha or tags.get(version) != sha:
        raise VersionConflictError(
            f"version {version!r} of model repo {repo_id} points elsewhere (branch -> "
            f"{str(branches.get(version))[:12]}, tag -> {str(tags.get(version))[:12]}, expected {sha[:12]}); "
            "published versions are immutable: choose another --version",
            repo_id=repo_id,
        )
    return stored_in_lfs
