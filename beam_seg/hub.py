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
* **Immutable versions.** :func:`publish_version` commits to ``main`` then points a tag and a branch named after the
  version at that commit; an existing version is accepted only with exactly the same files.
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
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    "publish_version",
    "remote_tree",
    "repo_url",
    "require_token",
    "resolve_endpoint",
    "resolve_token",
    "retry_delay",
    "scrub",
    "split_operations",
    "translate_error",
    "tree_differences",
    "validate_version",
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
_READ_BLOCK = 8 * 1024 * 1024
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
    with open(content, "rb") as f:
        while block := f.read(_READ_BLOCK):
            sha256.update(block)
            if sha1 is not None:
                sha1.update(block)
    return LocalFile(path_in_repo, size, sha256.hexdigest(), sha1.hexdigest() if sha1 else None, source or content)


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
    head: str | None = None,
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
        head: The branch head if the caller just read it (saves a round trip); the commit names it as parent,
            so a head that moved since makes the commit fail rather than write on top of unseen changes.
        policy: Backoff of the commit and ref calls.
        sleep: Injected in tests.

    Raises:
        HubError: On a final failure (one line, names the repo), including :class:`ConcurrentUpdateError`.
    """
    if head is None:
        branches, _ = list_refs(api, repo_id=repo_id, repo_type=repo_type, policy=policy)
        if branch not in branches:
            raise NotFoundError(f"branch {branch!r} not found in {repo_type} repo {repo_id}", repo_id=repo_id,
                                status=404)  # fmt: skip
        head = branches[branch]
    remote = remote_tree(api, repo_id=repo_id, repo_type=repo_type, revision=head)  # The tree of exactly ``head``.
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
        head = _commit_batch(api, repo_id=repo_id, repo_type=repo_type, branch=branch, parent=head, batch=batch,
                             expected=expected, title=title, description=description, content=content,
                             policy=policy or DEFAULT_RETRY, sleep=sleep)  # fmt: skip
        tree = expected
    if batches:
        logger.info("%s repo %s: %d commit(s) on %s -> %s (%d changed, %d deleted, %d unchanged)", repo_type,
                    repo_id, len(batches), branch, head[:12], len(changed), len(deleted), len(unchanged))  # fmt: skip
    else:
        logger.info("%s repo %s: %s already holds these %d files at %s; no new commit", repo_type, repo_id, branch,
                    len(wanted), head[:12])  # fmt: skip
    return TreeCommit(head, len(batches), tuple(changed), tuple(unchanged), tuple(deleted))


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
    policy: RetryPolicy,
    sleep: Callable[[float], None],
) -> str:
    """One commit with ``parent_commit``; on failure, checks whether it landed before retrying."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    attempt = 0
    with hub_call("committing to", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        while True:
            attempt += 1
            operations: list[Any] = []  # Rebuilt on every attempt: the client refuses reused operations.
            for op in batch:
                if op.add is None:
                    operations.append(CommitOperationDelete(op.path))
                    continue
                body = content(op.add)
                addition = CommitOperationAdd(op.path, body)
                if isinstance(body, str):
                    addition.upload_info.sha256 = bytes.fromhex(op.add.sha256)  # Known: no need to re-read it.
                operations.append(addition)
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
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VersionCommit:
    """Publishes ``files`` as immutable version ``version``: exact commit on ``branch`` + tag and branch ``version``.

    Re-publishing identical content is a no-op; an existing version with other content is an error; an interrupted
    run is completed (missing commit, branch or tag) without duplicating anything.

    Raises:
        VersionConflictError: ``version`` exists with different content, or its tag and branch disagree.
        HubError: Any other final failure.
    """
    started = time.monotonic()
    branches, tags = list_refs(api, repo_id=repo_id, policy=policy)
    if version in tags and version in branches and tags[version] != branches[version]:
        raise VersionConflictError(
            f"version {version!r} of model repo {repo_id} is inconsistent: tag -> {tags[version][:12]}, "
            f"branch -> {branches[version][:12]}; fix or delete one of them, or publish under a new --version",
            repo_id=repo_id,
        )
    existing = tags.get(version) or branches.get(version)
    if existing is not None:
        differences = tree_differences(remote_tree(api, repo_id=repo_id, revision=existing), files, content=content)
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
    if branch not in branches:
        raise NotFoundError(f"branch {branch!r} not found in model repo {repo_id}", repo_id=repo_id, status=404)
    result = commit_tree(api, repo_id=repo_id, files=files, content=content, message=f"Publish {version}",
                         description=f"beam_seg publish of version {version}", branch=branch,
                         head=branches[branch], policy=policy, sleep=sleep)  # fmt: skip
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
