"""Local test double of the Hugging Face Hub HTTP protocol (the subset ``huggingface_hub`` uses).

``HubServer`` is a **test double**: a small in-process HTTP server (stdlib ``ThreadingHTTPServer``) bound
to ``127.0.0.1`` on a free port that speaks the same routes, headers and JSON shapes as the Hub for the
calls made by the real ``huggingface_hub`` client (``HfApi``, ``create_commit``, ``preupload_lfs_files``,
``upload_folder``, ``snapshot_download``, ``hf_hub_download``, ``ModelCard.push_to_hub`` / ``load`` ...).
It lets the publish stage be tested offline, over real HTTP, with real semantics: atomic commits with
parents, branches and tags, content-addressed LFS storage with a signed-URL upload + verify step,
authentication / authorization, and fault injection. The ground truth for every route and header is the
source of ``huggingface_hub`` 2.4.0 (``hf_api.py``, ``_commit_api.py``, ``lfs.py``, ``file_download.py``,
``utils/_http.py``, ``constants.py``).

Routes implemented (``{type}`` is ``models`` | ``datasets`` | ``spaces``, ``{prefix}`` is ``""`` |
``datasets/`` | ``spaces/``, ``{repo}`` is ``namespace/name``, revisions are URL-quoted single segments):

* ``GET  /api/whoami-v2``
* ``POST /api/repos/create`` (409 + ``{"url": ...}`` if it exists; spaces need ``sdk``)
* ``DELETE /api/repos/delete``
* ``POST /api/validate-yaml`` (README front matter, parsed with PyYAML)
* ``GET  /api/{type}/{repo}`` and ``/api/{type}/{repo}/revision/{rev}`` (``?blobs=true``, ``?expand=``)
* ``GET  /api/{type}/{repo}/tree/{rev}[/{path}]`` (``recursive``, ``expand``, ``cursor`` + ``Link`` pagination)
* ``POST /api/{type}/{repo}/paths-info/{rev}`` (form or JSON body)
* ``GET  /api/{type}/{repo}/refs`` (``include_prs``: always an empty list)
* ``GET  /api/{type}/{repo}/commits/{rev}`` (``Link`` pagination)
* ``POST /api/{type}/{repo}/preupload/{rev}`` (``uploadMode``, ``shouldIgnore`` (always false), ``oid``)
* ``POST /api/{type}/{repo}/commit/{rev}`` (NDJSON: ``header``, ``file``, ``lfsFile``, ``deletedFile``,
  ``deletedFolder``; ``parentCommit`` -> 412 on conflict; ``create_pr=1`` -> 400)
* ``PUT  /api/{type}/{repo}/settings`` (``visibility`` / ``private``, ``gated`` (stored, not enforced))
* ``POST|DELETE /api/{type}/{repo}/branch/{branch}`` (``startingPoint``)
* ``POST /api/{type}/{repo}/tag/{rev}`` (``tag``, ``message``) and ``DELETE /api/{type}/{repo}/tag/{tag}``
* ``POST /{prefix}{repo}.git/info/lfs/objects/batch`` (``basic``; ``multipart`` if ``multipart_chunk_size``)
* ``POST /{prefix}{repo}.git/info/lfs/objects/verify`` (recomputed sha256 **and** size, 422 on mismatch)
* ``PUT  /_lfs/upload/{oid}?...&sig=`` signed single-part upload (no ``Authorization`` header: HMAC + expiry)
* ``PUT  /_lfs/upload/{oid}/part/{n}?...&sig=`` and ``POST /_lfs/upload/{oid}?...&sig=`` (multipart
  parts + completion)
* ``GET|HEAD /{prefix}{repo}/resolve/{rev}/{path}`` (``X-Repo-Commit``, ``ETag``, ``X-Linked-Etag``,
  ``X-Linked-Size``, ``Content-Length``, single ``Range`` -> 206 / 416)

Errors carry ``X-Error-Code`` (``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``), ``X-Error-Message``
and a JSON ``{"error": ...}`` body, which is how the client picks ``RepositoryNotFoundError``,
``RevisionNotFoundError``, ``RemoteEntryNotFoundError``, ``BadRequestError`` or ``HfHubHTTPError``.
Auth: an unknown bearer token -> 401 ``Invalid credentials in Authorization header`` (any route); no token on
a write -> 401; a token without write access to the namespace -> 403; private repos are 404 ``RepoNotFound``
to anonymous users and to users without access. Public repos are readable anonymously.

Client facts (read from the installed ``huggingface_hub`` 2.4.0 source, relied upon by the publish stage):

* **Xet**: with ``hf_xet`` installed, uploads go through Xet (``_upload_xet_files`` / the pipelined
  ``upload_folder``) and never fall back to LFS. ``constants.HF_HUB_DISABLE_XET`` is read from the
  environment *at import*, but ``utils._runtime.is_xet_available()`` reads the constant *at call time*, so
  either export ``HF_HUB_DISABLE_XET=1`` before importing ``huggingface_hub`` or monkeypatch
  ``huggingface_hub.constants.HF_HUB_DISABLE_XET = True`` (what :func:`configure_hf_client` /
  the ``hub_client_env`` fixture do). With Xet disabled ``upload_folder`` is a single ``create_commit``
  and large files use ``preupload`` -> LFS ``batch`` -> ``PUT`` -> ``verify``. Downloads only use Xet when
  the server sends ``X-Xet-*`` headers, which this server never does.
* **Endpoint**: ``constants.ENDPOINT`` / ``HUGGINGFACE_CO_URL_TEMPLATE`` and the module-level
  ``huggingface_hub.hf_api.api`` (behind ``upload_file``, ``ModelCard.push_to_hub``) are bound at import;
  ``RepoCard.validate`` posts to ``constants.ENDPOINT``; ``ModelCard.load`` calls ``hf_hub_download``
  without an endpoint. Pass ``endpoint=server.url`` to ``HfApi``, ``snapshot_download`` and
  ``hf_hub_download`` explicitly, and use ``hub_client_env`` for the module-level helpers.
* **Retries** (``utils/_http.py``, checked against this server): ``http_backoff`` retries statuses 408, 429,
  500, 502, 503, 504 and ``httpx2.TimeoutException`` / ``NetworkError`` / ``RemoteProtocolError`` (so dropped
  connections too), ``max_retries=5``, waiting 1, 2, 4, 8, 8 s. An integer ``Retry-After`` header on any
  retried status (HTTP-date values are ignored), or for a 429 a ``RateLimit: "api";r=0;t=N`` header, makes it
  wait ``N + 1`` s instead (not capped by ``max_wait_time``).

  - Retried through ``http_backoff``: ``preupload``, LFS ``batch``, LFS ``PUT`` (single and multipart parts),
    the multipart completion ``POST``, LFS ``verify``, and the paginated GETs (``list_repo_tree``,
    ``list_repo_files``, ``list_repo_commits``, the tree listing inside ``snapshot_download``).
  - **Not retried** (plain ``get_session()`` calls, one attempt): ``/commit`` (``create_commit``,
    ``upload_file``, ``upload_folder``, ``delete_*``, ``ModelCard.push_to_hub``; only the Xet pipelined
    upload passes ``retry_on_error=True``), ``create_repo`` (apart from its loop on the 409 "conflicting
    operation in progress"), ``delete_repo``, ``repo_info`` / ``model_info`` (so a 429/5xx on the
    ``repo_info`` call of ``snapshot_download(revision=<branch or tag>)`` ends in ``LocalEntryNotFoundError``
    unless the snapshot is cached), ``create_branch`` / ``create_tag`` / ``delete_branch`` / ``delete_tag``,
    ``update_repo_settings``, ``list_repo_refs``, ``get_paths_info``, ``whoami``, ``validate-yaml``.
  - ``hf_hub_download``: the metadata ``HEAD`` is tried once without retries; on a 408/429/5xx or a
    ``ConnectError`` / timeout, and with no cached copy, it is repeated through ``http_backoff`` (full
    retries). A ``HEAD`` whose connection is dropped raises ``httpx2.RemoteProtocolError`` (not caught). The
    body ``GET`` (``http_stream_backoff``) retries only 408 and 429 (honouring ``Retry-After``), a 5xx raises
    ``HfHubHTTPError``; ``ConnectError`` / timeout / ``RemoteProtocolError`` (dropped before the headers or
    cut mid-body) are retried after 1 s, up to 5 times, resuming with a ``Range`` request from the bytes
    already written (the client writes in 10 MiB chunks, so a cut before 10 MiB restarts from 0).

Fault injection: ``server.inject(method="PUT", path_regex=r"/_lfs/upload/", status=429, retry_after=1,
times=2)`` answers the next ``times`` matching requests with that status; ``drop=True`` reads part of the
request body and closes the connection without any response; ``truncate_response_at=N`` serves the real
response but closes the connection after ``N`` body bytes. ``path_regex`` is searched in the URL-decoded
request path without the query string. ``latency_s`` is added to every request and
``bandwidth_bytes_per_s`` caps request and response bodies per connection.

Not implemented: pull requests / discussions (``create_pr=True`` -> 400), Xet storage, gated-access enforcement
(``gated`` is stored only), ``.gitignore`` handling in ``preupload`` (``shouldIgnore`` is always false),
cross-repo copies (``/lfs-files/duplicate``), ``super_squash_history``, ``move_repo``, ``duplicate_repo``,
search / listing endpoints (``list_models`` ...), LFS ``download`` batch operations, short commit shas as
revisions, ``refs/pr/N`` refs, multi-range requests, and security-scan fields in tree listings.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import hmac
import io
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
import yaml

_LOG = logging.getLogger(__name__)

REPO_TYPES: tuple[str, ...] = ("model", "dataset", "space")
SPACE_SDKS: tuple[str, ...] = ("gradio", "streamlit", "docker", "static")
_URL_PREFIX: dict[str, str] = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_PLURAL_TO_TYPE: dict[str, str] = {"models": "model", "datasets": "dataset", "spaces": "space"}

DEFAULT_USER = "hub-tester"
DEFAULT_TOKEN = "hf_hub_tester_write_token"
DEFAULT_ORG = "hub-test-org"

_CHUNK = 256 * 1024
_MAX_JSON_BODY = 512 * 1024 * 1024
_SHA40 = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")
_LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"

# The .gitattributes the Hub commits in every new repo ("initial commit").
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
        "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
        "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
        "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
    )
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Small pure helpers
# --------------------------------------------------------------------------------------------------


def _iso(ts: float) -> str:
    """Format a POSIX timestamp the way the Hub does (``%Y-%m-%dT%H:%M:%S.%fZ``, milliseconds)."""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def git_blob_sha1(data: bytes) -> str:
    """Return the git blob id (sha1 of ``blob <len>\\0<data>``) of ``data``."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """Return the git-lfs pointer file committed in git in place of an LFS object."""
    return _LFS_POINTER.format(oid=oid, size=size).encode()


def parse_front_matter(text: str) -> dict[str, Any] | None:
    """Parse the YAML front matter of a README.

    Args:
        text: The README content.

    Returns:
        The metadata mapping, or ``None`` if there is no front matter.

    Raises:
        ValueError: If the front matter is not valid YAML or not a mapping.
    """
    match = _YAML_BLOCK.search(text)
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as exc:
        raise ValueError(f"Invalid YAML in README.md metadata: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("README.md metadata must be a YAML mapping (dictionary).")
    return data


def _gitattributes_lfs_patterns(content: str) -> list[re.Pattern[str]]:
    """Compile the ``filter=lfs`` patterns of a .gitattributes file into regexes matching repo paths."""
    patterns: list[re.Pattern[str]] = []
    for line in content.splitlines():
        parts = line.strip().split()
        if not parts or parts[0].startswith("#") or "filter=lfs" not in parts[1:]:
            continue
        patterns.append(_glob_to_regex(parts[0]))
    return patterns


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a gitattributes glob into a regex on the full repo path.

    Patterns without a slash match the basename at any depth; patterns with a slash are anchored at the
    repo root, ``**`` spans directories and ``*`` / ``?`` stay within one path component.
    """
    anchored = "/" in pattern.strip("/")
    pattern = pattern.strip("/")
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return re.compile(body + r"\Z" if anchored else r"(?:.*/)?" + body + r"\Z")


def _looks_binary(sample: bytes) -> bool:
    """Tell whether a content sample is binary (NUL byte or invalid UTF-8, ignoring a cut last char)."""
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not (exc.reason == "unexpected end of data" and exc.start >= len(sample) - 3)
    return False


def _truthy(value: str | None) -> bool:
    """Parse a query-string boolean (``true``/``1``/``yes``)."""
    return value is not None and value.strip().lower() in {"1", "true", "yes", "on"}


def _header_safe(text: str) -> str:
    """Make a message usable as an HTTP header value (single line, latin-1)."""
    text = " ".join(text.split())
    return text.encode("latin-1", "replace").decode("latin-1")[:1000]


def _validate_repo_path(path: str) -> str:
    """Validate a file path inside a repo, as the Hub does for commit operations."""
    parts = path.split("/")
    if not path or path.startswith("/") or path.endswith("/") or any(p in ("", ".", "..") for p in parts):
        raise HubError(400, f"Invalid path in repo: '{path}'")
    if any(p in (".git", ".cache") for p in parts):
        raise HubError(400, f"Invalid path in repo (forbidden folder): '{path}'")
    return path


# --------------------------------------------------------------------------------------------------
# Data model
# --------------------------------------------------------------------------------------------------


class HubError(Exception):
    """An HTTP error answered the way the Hub does (JSON body + ``X-Error-*`` headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def to_response(self) -> _Response:
        """Render the error as a response."""
        headers = {"X-Error-Message": _header_safe(self.message), **self.headers}
        if self.code is not None:
            headers["X-Error-Code"] = self.code
        return _Response.json({"error": self.message, **self.extra}, status=self.status, headers=headers)


@dataclass(frozen=True)
class FileEntry:
    """A file in a commit tree.

    Attributes:
        size: Size of the content in bytes.
        sha256: sha256 of the content (key of the blob store; the LFS oid for LFS files).
        git_oid: Git blob id (of the content for regular files, of the LFS pointer for LFS files).
        lfs: Whether the file is stored with git-lfs.
    """

    size: int
    sha256: str
    git_oid: str
    lfs: bool

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file."""
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def etag(self) -> str:
        """ETag served on resolve: sha256 for LFS files, git blob id for regular files."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Commit:
    """An immutable commit: parents, full file tree and metadata."""

    sha: str
    parents: tuple[str, ...]
    tree: dict[str, FileEntry]
    title: str
    message: str
    author: str
    timestamp: float

    @property
    def date(self) -> str:
        """ISO date of the commit."""
        return _iso(self.timestamp)


@dataclass
class Tag:
    """A tag pointing to a commit."""

    name: str
    target: str
    message: str | None


@dataclass
class _PendingUpload:
    """Bytes received on a signed upload URL, waiting for the verify call."""

    path: Path
    sha256: str
    size: int


@dataclass
class Repo:
    """Server-side state of one repository."""

    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None
    created_at: float
    gated: str | bool = False
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    lfs_oids: dict[str, int] = field(default_factory=dict)
    pending: dict[str, _PendingUpload] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        """Owner namespace (user or organization)."""
        return self.repo_id.split("/", 1)[0]


@dataclass
class User:
    """A user with its tokens and organizations."""

    name: str
    tokens: set[str]
    orgs: set[str]

    def can_write(self, namespace: str) -> bool:
        """Whether the user can write to repos of ``namespace``."""
        return namespace == self.name or namespace in self.orgs


@dataclass
class Fault:
    """An injected fault applied to the next ``remaining`` matching requests.

    Attributes:
        method: HTTP method to match (``None`` matches any).
        path_regex: Regex searched in the URL-decoded path, without query (``None`` matches any).
        status: Status code to answer instead of the real response.
        retry_after: ``Retry-After`` header value (seconds) sent with ``status``.
        drop: Close the connection mid-request, without any response.
        truncate_response_at: Serve the real response but close after this many body bytes.
        message: Error message (body ``error`` and ``X-Error-Message``).
        headers: Extra response headers.
        remaining: Number of matching requests still to be faulted.
        hits: Number of requests faulted so far.
    """

    method: str | None
    path_regex: str | None
    status: int | None
    retry_after: float | None
    drop: bool
    truncate_response_at: int | None
    message: str
    headers: dict[str, str]
    remaining: int
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None


# --------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------


@dataclass
class _Response:
    """A response to send: either an in-memory body or a slice of a blob file."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    file: tuple[Path, int, int] | None = None  # (path, offset, length)
    is_download: bool = False

    @classmethod
    def json(cls, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> _Response:
        """Build a JSON response."""
        return cls(
            status=status,
            headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            body=json.dumps(data).encode(),
        )

    @property
    def length(self) -> int:
        """Length of the body."""
        return self.file[2] if self.file is not None else len(self.body)


class _Throttle:
    """Paces a byte stream so it does not exceed ``server.bandwidth_bytes_per_s``."""

    def __init__(self, hub: HubServer) -> None:
        self._hub = hub
        self._start = time.monotonic()
        self._sent = 0

    def pace(self, nbytes: int) -> None:
        """Account for ``nbytes`` and sleep as needed to stay under the bandwidth cap."""
        rate = self._hub.bandwidth_bytes_per_s
        self._sent += nbytes
        if not rate:
            return
        ahead = self._sent / float(rate) - (time.monotonic() - self._start)
        if ahead > 0:
            time.sleep(ahead)

    def chunk_size(self) -> int:
        """Chunk size to use: smaller chunks when throttled so pacing is smooth."""
        rate = self._hub.bandwidth_bytes_per_s
        return max(1024, min(_CHUNK, int(rate // 20))) if rate else _CHUNK


class _BodyReader:
    """Reads a request body (``Content-Length`` or chunked), throttled, exactly once."""

    def __init__(self, handler: _Handler) -> None:
        self._rfile = handler.rfile
        self._throttle = _Throttle(handler.hub)
        chunked = "chunked" in handler.headers.get("Transfer-Encoding", "").lower()
        length = handler.headers.get("Content-Length")
        self.declared_length: int | None = None if chunked else int(length or 0)
        self.consumed = False

    def iter_chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """Yield the body in chunks (at most ``limit`` bytes overall when given)."""
        self.consumed = True
        budget = limit
        source = self._iter_chunked() if self.declared_length is None else self._iter_fixed(self.declared_length)
        for chunk in source:
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if chunk:
                self._throttle.pace(len(chunk))
                yield chunk
            if budget is not None and budget <= 0:
                return

    def _iter_fixed(self, length: int) -> Iterator[bytes]:
        remaining = length
        while remaining > 0:
            data = self._rfile.read(min(remaining, self._throttle.chunk_size()))
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(data)
            yield data

    def _iter_chunked(self) -> Iterator[bytes]:
        while True:
            line = self._rfile.readline(65537)
            if not line:
                raise ConnectionError("client closed the connection mid-body")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield from self._iter_fixed(size)
            self._rfile.readline(65537)

    def read(self, max_size: int = _MAX_JSON_BODY) -> bytes:
        """Read the whole body into memory."""
        buf = io.BytesIO()
        for chunk in self.iter_chunks():
            buf.write(chunk)
            if buf.tell() > max_size:
                raise HubError(413, "Payload Too Large")
        return buf.getvalue()

    def drain(self) -> None:
        """Discard whatever is left of the body (keeps the keep-alive connection usable)."""
        if not self.consumed:
            for _ in self.iter_chunks():
                pass


@dataclass
class _Ctx:
    """Everything a route handler needs about the request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: _BodyReader
    user: User | None

    def param(self, name: str) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """Parse the body as JSON (400 on invalid JSON)."""
        raw = self.body.read()
        try:
            return json.loads(raw or b"{}")
        except ValueError as exc:
            raise HubError(400, f"Invalid JSON body: {exc}") from exc


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive request handler delegating to the owning :class:`HubServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "HubServerTestDouble/1.0"
    timeout = 60
    # Headers and body go out in separate sends; with Nagle on, the client's delayed ACK adds ~40 ms
    # to every request, which would swamp the injected latency of the benchmarks.
    disable_nagle_algorithm = True

    @property
    def hub(self) -> HubServer:
        """The owning server."""
        return self.server.hub  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.hub._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.hub._track_connection(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        _LOG.debug("hub-server %s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_GET

    def _dispatch(self) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        raw_path, decoded_path = split.path, unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        body = _BodyReader(self)
        if hub.latency_s > 0:
            time.sleep(hub.latency_s)
        fault = hub._take_fault(self.command, decoded_path)
        if fault is not None and fault.drop:
            hub._record(self.command, decoded_path, 0)  # log first: the client reacts as soon as we close
            self._drop(body)
            return
        try:
            if fault is not None and fault.status is not None:
                body.drain()
                raise HubError(fault.status, fault.message, headers=_fault_headers(fault))
            ctx = _Ctx(self.command, raw_path, query, self.headers, body, hub._authenticate(self.headers))
            response = hub._route(ctx)
            body.drain()
        except HubError as err:
            response = err.to_response()
            try:
                body.drain()  # answer errors on a clean keep-alive connection
            except (ConnectionError, TimeoutError):
                self.close_connection = True
        except (ConnectionError, TimeoutError) as exc:
            _LOG.debug("hub-server connection error on %s %s: %s", self.command, decoded_path, exc)
            self.close_connection = True
            hub._record(self.command, decoded_path, 0)
            return
        except Exception as exc:  # pragma: no cover - a server bug must surface as a 500, not a hang
            _LOG.exception("hub-server internal error on %s %s", self.command, decoded_path)
            response = HubError(500, f"Internal test-server error: {exc!r}").to_response()
        trace = self.headers.get("X-Amzn-Trace-Id")
        if trace:
            response.headers.setdefault("X-Request-Id", trace)
        hub._record(self.command, decoded_path, response.status)  # before sending: no race with the client
        self._send(response, fault.truncate_response_at if fault is not None else None)

    def _drop(self, body: _BodyReader) -> None:
        """Read part of the request body then close the socket without answering."""
        half = (body.declared_length or 0) // 2 if body.declared_length is not None else _CHUNK
        try:
            for _ in body.iter_chunks(limit=half):
                pass
        except (ConnectionError, OSError):
            pass
        self._abort()

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, response: _Response, truncate_at: int | None) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(response.length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            if truncate_at is not None:
                self._abort()
            return
        throttle = _Throttle(self.hub)
        limit = response.length if truncate_at is None else min(truncate_at, response.length)
        sent = 0
        try:
            for chunk in self._body_chunks(response, throttle):
                chunk = chunk[: limit - sent]
                if not chunk:
                    break
                if response.is_download:
                    self.hub._add_downloaded(len(chunk))  # counted before the client can see the bytes
                self.wfile.write(chunk)
                sent += len(chunk)
                throttle.pace(len(chunk))
            self.wfile.flush()
        except OSError as exc:
            _LOG.debug("hub-server client went away while sending: %s", exc)
            self.close_connection = True
        if truncate_at is not None and sent < response.length:
            self._abort()

    @staticmethod
    def _body_chunks(response: _Response, throttle: _Throttle) -> Iterator[bytes]:
        if response.file is None:
            view, size = memoryview(response.body), throttle.chunk_size()
            for start in range(0, len(view), size):
                yield bytes(view[start : start + size])
            return
        path, offset, length = response.file
        with open(path, "rb") as fh:
            fh.seek(offset)
            remaining = length
            while remaining > 0:
                data = fh.read(min(remaining, throttle.chunk_size()))
                if not data:
                    break
                remaining -= len(data)
                yield data


def _fault_headers(fault: Fault) -> dict[str, str]:
    headers = dict(fault.headers)
    if fault.retry_after is not None:
        headers["Retry-After"] = str(int(fault.retry_after))
    return headers


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], hub: HubServer) -> None:
        self.hub = hub
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _LOG.debug("hub-server: error while handling a request from %s", client_address, exc_info=True)


# --------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------

_T = r"(?P<type>models|datasets|spaces)"
_R = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"
_P = r"(?:(?P<prefix>datasets|spaces)/)?"
_API = rf"/api/{_T}/{_R}"
_ROUTES: list[tuple[frozenset[str], re.Pattern[str], str]] = [
    (frozenset(m.split()), re.compile(pattern + r"\Z"), name)
    for m, pattern, name in (
        ("GET", r"/api/whoami-v2", "_h_whoami"),
        ("POST", r"/api/repos/create", "_h_create_repo"),
        ("DELETE", r"/api/repos/delete", "_h_delete_repo"),
        ("POST", r"/api/validate-yaml", "_h_validate_yaml"),
        ("GET", _API, "_h_repo_info"),
        ("GET", rf"{_API}/revision/(?P<rev>[^/]+)", "_h_repo_info"),
        ("GET", rf"{_API}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", "_h_tree"),
        ("POST", rf"{_API}/paths-info/(?P<rev>[^/]+)", "_h_paths_info"),
        ("GET", rf"{_API}/refs", "_h_refs"),
        ("GET", rf"{_API}/commits/(?P<rev>[^/]+)", "_h_commits"),
        ("POST", rf"{_API}/preupload/(?P<rev>[^/]+)", "_h_preupload"),
        ("POST", rf"{_API}/commit/(?P<rev>[^/]+)", "_h_commit"),
        ("PUT", rf"{_API}/settings", "_h_settings"),
        ("POST", rf"{_API}/branch/(?P<branch>[^/]+)", "_h_create_branch"),
        ("DELETE", rf"{_API}/branch/(?P<branch>[^/]+)", "_h_delete_branch"),
        ("POST", rf"{_API}/tag/(?P<rev>[^/]+)", "_h_create_tag"),
        ("DELETE", rf"{_API}/tag/(?P<tag>[^/]+)", "_h_delete_tag"),
        ("POST", rf"/{_P}{_R}\.git/info/lfs/objects/batch", "_h_lfs_batch"),
        ("POST", rf"/{_P}{_R}\.git/info/lfs/objects/verify", "_h_lfs_verify"),
        ("PUT", r"/_lfs/upload/(?P<oid>[0-9a-f]{64})", "_h_lfs_put"),
        ("PUT", r"/_lfs/upload/(?P<oid>[0-9a-f]{64})/part/(?P<part>[0-9]+)", "_h_lfs_put_part"),
        ("POST", r"/_lfs/upload/(?P<oid>[0-9a-f]{64})", "_h_lfs_complete"),
        ("GET HEAD", rf"/{_P}{_R}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", "_h_resolve"),
    )
]


class HubServer:
    """In-process test double of the Hugging Face Hub HTTP API (see the module docstring).

    The server is listening when the constructor returns. Use it as a context manager or call
    :meth:`stop`.

    Args:
        storage_dir: Directory for content-addressed blobs (a temp dir, removed on stop, if ``None``).
        host: Interface to bind (loopback by default).
        port: Port to bind (``0`` picks a free port).
        lfs_threshold_bytes: Files at least this big are uploaded with LFS (the Hub uses 10 MiB); regular
            (non-LFS) files above it are rejected by ``/commit``.
        multipart_chunk_size: If set, LFS objects larger than this are uploaded with the multipart
            transfer (one signed PUT per part + a completion POST); otherwise always a single PUT.
        upload_url_ttl_s: Validity of signed upload URLs.
        latency_s: Delay added to every request.
        bandwidth_bytes_per_s: Per-connection cap on request and response bodies (``None``: unlimited).

    Attributes:
        url: Base URL, e.g. ``http://127.0.0.1:54321`` (pass it as ``endpoint=``).
        host: Bound host. port: Bound port. storage_dir: Blob storage directory.
        latency_s, bandwidth_bytes_per_s, multipart_chunk_size, lfs_threshold_bytes: As above; may be
            changed at any time (read per request).
        requests: Log of ``(method, decoded_path, status)``; status 0 means no response was sent.
        bytes_uploaded: LFS bytes received by the signed-URL upload handlers (every attempt that reaches
            them, including retries and uploads later rejected by verify; requests answered by an
            injected fault are not counted).
        max_concurrent_uploads: Peak number of LFS bodies (single PUTs or multipart parts) being received at
            the same time, e.g. to tell parts sent in parallel from parts sent one after another.
        bytes_downloaded: Body bytes written by ``/resolve`` GETs.
        commits_created: Number of commits created through ``/commit`` (initial repo commits excluded).
        tree_page_size: Page size of ``/tree`` listings (50 when ``expand=true``, like the Hub).
        commits_page_size: Page size of ``/commits`` listings.
    """

    def __init__(
        self,
        storage_dir: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lfs_threshold_bytes: int = 10 * 1024 * 1024,
        multipart_chunk_size: int | None = None,
        upload_url_ttl_s: float = 3600.0,
        latency_s: float = 0.0,
        bandwidth_bytes_per_s: float | None = None,
    ) -> None:
        self._owns_storage = storage_dir is None
        self.storage_dir = Path(storage_dir or tempfile.mkdtemp(prefix="hub-server-"))
        (self.storage_dir / "objects").mkdir(parents=True, exist_ok=True)
        (self.storage_dir / "incoming").mkdir(parents=True, exist_ok=True)
        self.lfs_threshold_bytes = lfs_threshold_bytes
        self.multipart_chunk_size = multipart_chunk_size
        self.upload_url_ttl_s = upload_url_ttl_s
        self.latency_s = latency_s
        self.bandwidth_bytes_per_s = bandwidth_bytes_per_s
        self.tree_page_size = 1000
        self.commits_page_size = 50
        self.requests: list[tuple[str, str, int]] = []
        self.bytes_uploaded = 0
        self.bytes_downloaded = 0
        self.commits_created = 0
        self.max_concurrent_uploads = 0
        self._uploads_in_flight = 0
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(32)
        self._repos: dict[tuple[str, str], Repo] = {}
        self._users: dict[str, User] = {}
        self._tokens: dict[str, str] = {}
        self._faults: list[Fault] = []
        self._connections: set[socket.socket] = set()
        self._commit_counter = itertools.count()
        self._httpd = _ThreadingServer((host, port), self)
        self.host, self.port = self._httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self._thread.start()
        self._stopped = False
        _LOG.debug("hub-server listening on %s (storage %s)", self.url, self.storage_dir)

    # ---------------------------------------------------------------- lifecycle & public helpers

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving, close open connections and remove the storage dir if it was a temp dir."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        if self._owns_storage:
            shutil.rmtree(self.storage_dir, ignore_errors=True)

    def add_user(self, name: str, token: str, orgs: Sequence[str] = ()) -> User:
        """Register a user (or add a token / orgs to an existing one).

        Args:
            name: User name, also its namespace.
            token: Bearer token authenticating the user.
            orgs: Organizations the user can write to.

        Returns:
            The user.
        """
        with self._lock:
            user = self._users.setdefault(name, User(name=name, tokens=set(), orgs=set()))
            user.tokens.add(token)
            user.orgs.update(orgs)
            self._tokens[token] = name
            return user

    def inject(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = None,
        *,
        retry_after: float | None = None,
        times: int = 1,
        drop: bool = False,
        truncate_response_at: int | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fault:
        """Inject a fault for the next ``times`` requests matching ``method`` and ``path_regex``.

        Args:
            method: HTTP method (``None``: any).
            path_regex: Regex searched in the URL-decoded path without query (``None``: any).
            status: Status code to answer (e.g. 429, 500, 503).
            retry_after: ``Retry-After`` seconds sent with ``status``.
            times: How many matching requests are affected before the fault disappears.
            drop: Close the connection mid-request without any response.
            truncate_response_at: Send the real response but cut the body after this many bytes.
            message: Error message for ``status`` faults.
            headers: Extra headers for ``status`` faults.

        Returns:
            The fault (its ``hits`` / ``remaining`` can be inspected).
        """
        if status is None and not drop and truncate_response_at is None:
            raise ValueError("A fault needs `status`, `drop=True` or `truncate_response_at`.")
        fault = Fault(
            method=method,
            path_regex=path_regex,
            status=status,
            retry_after=retry_after,
            drop=drop,
            truncate_response_at=truncate_response_at,
            message=message or f"Injected fault: HTTP {status}",
            headers=dict(headers or {}),
            remaining=times,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every pending fault."""
        with self._lock:
            self._faults.clear()

    def reset_stats(self) -> None:
        """Clear the request log and the byte / commit / concurrency counters."""
        with self._lock:
            self.requests.clear()
            self.bytes_uploaded = self.bytes_downloaded = self.commits_created = self.max_concurrent_uploads = 0

    def count_requests(
        self, method: str | None = None, path_regex: str | None = None, status: int | None = None
    ) -> int:
        """Count logged requests matching the given method, path regex and status."""
        with self._lock:
            log = list(self.requests)
        return sum(
            1
            for m, p, s in log
            if (method is None or m == method.upper())
            and (path_regex is None or re.search(path_regex, p))
            and (status is None or s == status)
        )

    def revision_sha(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        """Commit sha a branch / tag / sha points to (server-side view)."""
        with self._lock:
            return self._resolve(self._repo(repo_type, repo_id), revision).sha

    def read_file(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        """Content of a file at a revision (server-side view)."""
        with self._lock:
            entry = self._resolve(self._repo(repo_type, repo_id), revision).tree[path]
        return self._object_path(entry.sha256).read_bytes()

    def list_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, FileEntry]:
        """File tree at a revision (server-side view)."""
        with self._lock:
            return dict(self._resolve(self._repo(repo_type, repo_id), revision).tree)

    # ---------------------------------------------------------------- internals used by the handler

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    fault.hits += 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def _add_downloaded(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_downloaded += nbytes

    def _authenticate(self, headers: Any) -> User | None:
        auth = headers.get("Authorization")
        if not auth:
            return None
        scheme, _, token = auth.partition(" ")
        with self._lock:
            name = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if name is None:
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._users[name]

    def _route(self, ctx: _Ctx) -> _Response:
        allowed: set[str] = set()
        for methods, pattern, handler_name in _ROUTES:
            match = pattern.match(ctx.path)
            if match is None:
                continue
            if ctx.method not in methods:
                allowed |= methods
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            return getattr(self, handler_name)(ctx, **params)
        if allowed:
            raise HubError(405, f"Method {ctx.method} not allowed", headers={"Allow": ", ".join(sorted(allowed))})
        raise HubError(404, f"Not found: {unquote(ctx.path)}")

    # ---------------------------------------------------------------- state helpers (call with lock)

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", code="RepoNotFound")
        return repo

    def _readable_repo(self, ctx: _Ctx, type_: str, ns: str, name: str) -> Repo:
        repo = self._repo(_PLURAL_TO_TYPE.get(type_, type_), f"{ns}/{name}")
        if repo.private and (ctx.user is None or not ctx.user.can_write(repo.namespace)):
            raise HubError(404, "Repository not found", code="RepoNotFound")
        return repo

    def _writable_repo(self, ctx: _Ctx, type_: str, ns: str, name: str) -> Repo:
        if ctx.user is None:
            raise HubError(401, "You must be authenticated to write to this repository (missing token)")
        repo = self._readable_repo(ctx, type_, ns, name)
        if not ctx.user.can_write(repo.namespace):
            raise HubError(403, f"You don't have the rights to write to {repo.repo_type} repo {repo.repo_id}")
        return repo

    @staticmethod
    def _resolve(repo: Repo, rev: str) -> Commit:
        if rev.startswith("refs/heads/") and rev[len("refs/heads/") :] in repo.branches:
            return repo.commits[repo.branches[rev[len("refs/heads/") :]]]
        if rev.startswith("refs/tags/") and rev[len("refs/tags/") :] in repo.tags:
            return repo.commits[repo.tags[rev[len("refs/tags/") :]].target]
        if rev in repo.branches:
            return repo.commits[repo.branches[rev]]
        if rev in repo.tags:
            return repo.commits[repo.tags[rev].target]
        if _SHA40.fullmatch(rev) and rev in repo.commits:
            return repo.commits[rev]
        raise HubError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")

    def _object_path(self, sha256: str) -> Path:
        return self.storage_dir / "objects" / sha256

    def _store_bytes(self, data: bytes) -> str:
        """Store a blob content-addressed by sha256 (idempotent, atomic)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self._object_path(digest)
        if not target.exists():
            tmp = self.storage_dir / "incoming" / f"{uuid.uuid4().hex}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return digest

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.url}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    def _new_commit(
        self,
        repo: Repo,
        parents: tuple[str, ...],
        tree: dict[str, FileEntry],
        title: str,
        message: str,
        author: str,
    ) -> Commit:
        timestamp = time.time()
        tree_id = hashlib.sha1("".join(f"{p}\0{e.git_oid}\n" for p, e in sorted(tree.items())).encode()).hexdigest()
        text = (
            f"tree {tree_id}\n"
            + "".join(f"parent {p}\n" for p in parents)
            + f"author {author} {timestamp:.6f}\nnonce {next(self._commit_counter)}\n\n{title}\n\n{message}"
        )
        sha = hashlib.sha1(b"commit %d\x00" % len(text.encode()) + text.encode()).hexdigest()
        commit = Commit(sha, parents, tree, title, message, author, timestamp)
        repo.commits[sha] = commit
        return commit

    def _card_data(self, commit: Commit) -> dict[str, Any] | None:
        entry = commit.tree.get("README.md")
        if entry is None:
            return None
        try:
            return parse_front_matter(self._object_path(entry.sha256).read_text(encoding="utf-8", errors="replace"))
        except ValueError:
            return None

    def _lfs_patterns(self, commit: Commit) -> list[re.Pattern[str]]:
        entry = commit.tree.get(".gitattributes")
        if entry is None:
            return []
        return _gitattributes_lfs_patterns(self._object_path(entry.sha256).read_text(errors="replace"))

    # ---------------------------------------------------------------- routes: account & repos

    def _h_whoami(self, ctx: _Ctx) -> _Response:
        if ctx.user is None:
            raise HubError(401, "Invalid username or password.")
        user = ctx.user
        return _Response.json(
            {
                "type": "user",
                "id": hashlib.sha1(user.name.encode()).hexdigest()[:24],
                "name": user.name,
                "fullname": user.name,
                "email": f"{user.name}@example.invalid",
                "emailVerified": True,
                "isPro": False,
                "canPay": False,
                "orgs": [
                    {"type": "org", "name": org, "fullname": org, "roleInOrg": "write"} for org in sorted(user.orgs)
                ],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test-token", "role": "write"}},
            }
        )

    def _h_create_repo(self, ctx: _Ctx) -> _Response:
        if ctx.user is None:
            raise HubError(401, "You must be authenticated to create a repo (missing token)")
        payload = ctx.json()
        repo_type = payload.get("type") or "model"
        name = payload.get("name") or ""
        namespace = payload.get("organization") or ctx.user.name
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        if not _REPO_NAME.fullmatch(name) or "--" in name or ".." in name or name.endswith((".git", ".")):
            raise HubError(400, f"Invalid repo name: '{name}'")
        if not ctx.user.can_write(namespace):
            raise HubError(403, f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"')
        sdk = payload.get("sdk")
        if repo_type == "space" and sdk not in SPACE_SDKS:
            raise HubError(400, f"Invalid or missing sdk for a space: {sdk!r}. Expected one of {list(SPACE_SDKS)}")
        visibility = payload.get("visibility")
        private = visibility in ("private", "protected") if visibility is not None else bool(payload.get("private"))
        repo_id = f"{namespace}/{name}"
        with self._lock:
            existing = self._repos.get((repo_type, repo_id))
            if existing is not None:
                url = self._repo_url(existing)
                raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url})
            repo = Repo(repo_type, repo_id, private, sdk if repo_type == "space" else None, time.time())
            blob = DEFAULT_GITATTRIBUTES.encode()
            entry = FileEntry(len(blob), self._store_bytes(blob), git_blob_sha1(blob), lfs=False)
            initial = self._new_commit(repo, (), {".gitattributes": entry}, "initial commit", "", "system")
            repo.branches["main"] = initial.sha
            self._repos[(repo_type, repo_id)] = repo
            url = self._repo_url(repo)
        _LOG.debug("hub-server created %s repo %s", repo_type, repo_id)
        return _Response.json({"url": url, "name": repo_id, "id": repo_id})

    def _h_delete_repo(self, ctx: _Ctx) -> _Response:
        if ctx.user is None:
            raise HubError(401, "You must be authenticated to delete a repo (missing token)")
        payload = ctx.json()
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or ctx.user.name
        with self._lock:
            repo = self._writable_repo(ctx, repo_type, namespace, payload.get("name") or "")
            del self._repos[(repo.repo_type, repo.repo_id)]
        return _Response.json({})

    def _h_settings(self, ctx: _Ctx, type: str, ns: str, name: str) -> _Response:  # noqa: A002
        payload = ctx.json()
        with self._lock:
            repo = self._writable_repo(ctx, type, ns, name)
            if "visibility" in payload:
                if payload["visibility"] not in ("public", "private", "protected"):
                    raise HubError(400, f"Invalid visibility: {payload['visibility']!r}")
                repo.private = payload["visibility"] != "public"
            if "private" in payload:
                repo.private = bool(payload["private"])
            if "gated" in payload:
                if payload["gated"] not in ("auto", "manual", False):
                    raise HubError(400, f"Invalid gated value: {payload['gated']!r}")
                repo.gated = payload["gated"]
        return _Response.json({})

    def _h_validate_yaml(self, ctx: _Ctx) -> _Response:
        payload = ctx.json()
        content = payload.get("content")
        if not isinstance(content, str):
            return _Response.json({"errors": [{"message": "`content` must be a string"}], "warnings": []}, status=400)
        try:
            metadata = parse_front_matter(content)
        except ValueError as exc:
            return _Response.json({"errors": [{"message": str(exc)}], "warnings": []}, status=400)
        warnings = [] if metadata else [{"message": "empty or missing yaml metadata in repo card"}]
        return _Response.json({"errors": [], "warnings": warnings})

    def _h_repo_info(self, ctx: _Ctx, type: str, ns: str, name: str, rev: str = "main") -> _Response:  # noqa: A002
        with self._lock:
            repo = self._readable_repo(ctx, type, ns, name)
            commit = self._resolve(repo, rev)
            main = repo.commits[repo.branches["main"]] if "main" in repo.branches else commit
        blobs = _truthy(ctx.param("blobs"))
        siblings = []
        for path, entry in sorted(commit.tree.items()):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=entry.size, blobId=entry.git_oid)
                if entry.lfs:
                    sibling["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": entry.pointer_size}
            siblings.append(sibling)
        card = self._card_data(commit)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.namespace,
            "sha": commit.sha,
            "createdAt": _iso(repo.created_at),
            "lastModified": main.date,
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list((card or {}).get("tags") or []),
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.tree.values()),
        }
        if card is not None:
            info["cardData"] = card
        if repo.repo_type == "model" and card:
            info.update({k: card[k] for k in ("library_name", "pipeline_tag") if k in card})
        if repo.repo_type == "space":
            info.update(sdk=repo.sdk, subdomain=repo.repo_id.replace("/", "-").lower(), host=self.url)
        expand = ctx.query.get("expand") or ctx.query.get("expand[]")
        if expand:
            info = {k: v for k, v in info.items() if k in set(expand) | {"_id", "id"}}
        return _Response.json(info)

    # ---------------------------------------------------------------- routes: listing

    def _entry_json(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any]:
        entry = commit.tree.get(path)
        if entry is not None:
            data: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
            if entry.lfs:
                data["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
        else:
            data = {"type": "directory", "oid": self._dir_oid(commit, path), "size": 0, "path": path}
        if expand:
            last = self._last_commit(repo, commit, path)
            data["lastCommit"] = {"id": last.sha, "title": last.title, "date": last.date}
        return data

    @staticmethod
    def _dir_signature(commit: Commit, path: str) -> tuple[tuple[str, str], ...]:
        prefix = path.rstrip("/") + "/"
        return tuple(sorted((p, e.git_oid) for p, e in commit.tree.items() if p.startswith(prefix)))

    def _dir_oid(self, commit: Commit, path: str) -> str:
        return hashlib.sha1(repr(self._dir_signature(commit, path)).encode()).hexdigest()

    def _last_commit(self, repo: Repo, commit: Commit, path: str) -> Commit:
        """Most recent commit (first-parent history) that changed ``path`` (file or folder)."""

        def signature(c: Commit) -> Any:
            entry = c.tree.get(path)
            return entry.git_oid if entry is not None else self._dir_signature(c, path)

        current, current_sig = commit, signature(commit)
        while current.parents:
            parent = repo.commits[current.parents[0]]
            if signature(parent) != current_sig:
                return current
            current = parent
        return current

    @staticmethod
    def _children(commit: Commit, path: str, recursive: bool) -> list[str]:
        """Paths (files and folders) under ``path`` (``""`` = root)."""
        prefix = f"{path}/" if path else ""
        found: set[str] = set()
        for file_path in commit.tree:
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, depth + 1):
                found.add(prefix + "/".join(parts[:i]))
        return sorted(found)

    def _paginate(self, ctx: _Ctx, items: list[Any], page_size: int) -> _Response:
        try:
            start = int(ctx.param("cursor") or 0)
        except ValueError as exc:
            raise HubError(400, "Invalid cursor") from exc
        page = items[start : start + page_size]
        headers = {}
        if start + page_size < len(items):
            query = {k: v for k, v in ctx.query.items() if k != "cursor"}
            query["cursor"] = [str(start + page_size)]
            headers["Link"] = f'<{self.url}{ctx.path}?{urlencode(query, doseq=True)}>; rel="next"'
        return _Response.json(page, headers=headers)

    def _h_tree(self, ctx: _Ctx, type: str, ns: str, name: str, rev: str, path: str = "") -> _Response:  # noqa: A002
        path = path.strip("/")
        recursive, expand = _truthy(ctx.param("recursive")), _truthy(ctx.param("expand"))
        with self._lock:
            repo = self._readable_repo(ctx, type, ns, name)
            commit = self._resolve(repo, rev)
            if path and (path in commit.tree or not any(p.startswith(path + "/") for p in commit.tree)):
                raise HubError(404, f"Tree not found for path '{path}'", code="EntryNotFound")
            entries = [self._entry_json(repo, commit, p, expand) for p in self._children(commit, path, recursive)]
        return self._paginate(ctx, entries, 50 if expand else self.tree_page_size)

    def _h_paths_info(self, ctx: _Ctx, type: str, ns: str, name: str, rev: str) -> _Response:  # noqa: A002
        raw = ctx.body.read()
        if "json" in (ctx.headers.get("Content-Type") or ""):
            payload = json.loads(raw or b"{}")
            paths, expand = list(payload.get("paths") or []), bool(payload.get("expand"))
        else:
            form = parse_qs(raw.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _truthy((form.get("expand") or ["false"])[0])
        with self._lock:
            repo = self._readable_repo(ctx, type, ns, name)
            commit = self._resolve(repo, rev)
            result = []
            for path in dict.fromkeys(p.strip("/") for p in paths):
                is_dir = any(p.startswith(path + "/") for p in commit.tree)
                if path and (path in commit.tree or is_dir):
                    result.append(self._entry_json(repo, commit, path, expand))
        return _Response.json(result)

    def _h_refs(self, ctx: _Ctx, type: str, ns: str, name: str) -> _Response:  # noqa: A002
        with self._lock:
            repo = self._readable_repo(ctx, type, ns, name)
            branches = [
                {"name": b, "ref": f"refs/heads/{b}", "targetCommit": sha} for b, sha in sorted(repo.branches.items())
            ]
            tags = [
                {"name": t.name, "ref": f"refs/tags/{t.name}", "targetCommit": t.target}
                for _, t in sorted(repo.tags.items())
            ]
        data: dict[str, Any] = {"branches": branches, "converts": [], "tags": tags}
        if _truthy(ctx.param("include_prs")):
            data["pullRequests"] = []
        return _Response.json(data)

    def _h_commits(self, ctx: _Ctx, type: str, ns: str, name: str, rev: str) -> _Response:  # noqa: A002
        with self._lock:
            repo = self._readable_repo(ctx, type, ns, name)
            commit: Commit | None = self._resolve(repo, rev)
            items = []
            while commit is not None:
                items.append(
                    {
                        "id": commit.sha,
                        "title": commit.title,
                        "message": commit.message,
                        "authors": [{"user": commit.author, "avatar": None}],
                        "date": commit.date,
                        "parents": list(commit.parents),
                    }
                )
                commit = repo.commits[commit.parents[0]] if commit.parents else None
        return self._paginate(ctx, items, self.commits_page_size)

    # ---------------------------------------------------------------- routes: refs

    def _h_create_branch(self, ctx: _Ctx, type: str, ns: str, name: str, branch: str) -> _Response:  # noqa: A002
        payload = ctx.json()
        if not branch or branch.startswith(("refs/", "/")) or " " in branch or _SHA40.fullmatch(branch):
            raise HubError(400, f"Invalid branch name: '{branch}'")
        with self._lock:
            repo = self._writable_repo(ctx, type, ns, name)
            if branch in repo.branches:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = self._resolve(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.sha
        return _Response.json({})

    def _h_delete_branch(self, ctx: _Ctx, type: str, ns: str, name: str, branch: str) -> _Response:  # noqa: A002
        with self._lock:
            repo = self._writable_repo(ctx, type, ns, name)
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", code="RevisionNotFound")
            if branch == "main":
                raise HubError(403, "Cannot delete the default branch 'main'")
            del repo.branches[branch]
        return _Response.json({})

    def _h_create_tag(self, ctx: _Ctx, type: str, ns: str, name: str, rev: str) -> _Response:  # noqa: A002
        payload = ctx.json()
        tag = payload.get("tag")
        if not isinstance(tag, str) or not tag or " " in tag or tag.startswith("refs/"):
            raise HubError(400, f"Invalid tag name: {tag!r}")
        with self._lock:
            repo = self._writable_repo(ctx, type, ns, name)
            target = self._resolve(repo, rev)
            if tag in repo.tags:
                raise HubError(409, f"Tag already exists: refs/tags/{tag}")
            repo.tags[tag] = Tag(tag, target.sha, payload.get("message"))
        return _Response.json({})

    def _h_delete_tag(self, ctx: _Ctx, type: str, ns: str, name: str, tag: str) -> _Response:  # noqa: A002
        with self._lock:
            repo = self._writable_repo(ctx, type, ns, name)
            if tag not in repo.tags:
                raise HubError(404, f"Invalid rev id: {tag}", code="RevisionNotFound")
            del repo.tags[tag]
        return _Response.json({})

    # ---------------------------------------------------------------- routes: uploads

    def _upload_mode(self, path: str, size: int, sample: bytes, patterns: list[re.Pattern[str]]) -> str:
        """Decide ``lfs`` vs ``regular`` like the Hub: .gitattributes, size threshold, binary sample."""
        if any(p.match(path) for p in patterns) or size >= self.lfs_threshold_bytes or _looks_binary(sample):
            return "lfs"
        return "regular"

    def _h_preupload(self, ctx: _Ctx, type: str, ns: str, name: str, rev: str) -> _Response:  # noqa: A002
        payload = ctx.json()
        with self._lock:
            repo = self._writable_repo(ctx, type, ns, name)
            if _truthy(ctx.param("create_pr")):
                raise HubError(400, "create_pr is not supported by the HubServer test double")
            commit = self._resolve(repo, rev)
            patterns = self._lfs_patterns(commit)
            files = []
            for item in payload.get("files") or []:
                path = item.get("path")
                try:
                    sample = base64.b64decode(item.get("sample") or "", validate=True)
                    size = int(item["size"])
                except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                    raise HubError(400, f"Invalid preupload entry for {path!r}: {exc}") from exc
                existing = commit.tree.get(path)
                files.append(
                    {
                        "path": path,
                        "uploadMode": self._upload_mode(path, size, sample, patterns),
                        "shouldIgnore": False,
                        "oid": None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid),
                    }
                )
        return _Response.json({"files": files, "commitOid": commit.sha})

    def _sign(self, path: str, params: dict[str, str]) -> str:
        canonical = path + "?" + urlencode(sorted(params.items()))
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    def _signed_url(self, path: str, repo: Repo, size: int, expires: int, **extra: str) -> str:
        params = {"repo_type": repo.repo_type, "repo_id": repo.repo_id, "size": str(size), "expires": str(expires)}
        params.update(extra)
        return f"{self.url}{path}?{urlencode({**params, 'sig': self._sign(path, params)})}"

    def _check_signature(self, ctx: _Ctx) -> Repo:
        """Validate the HMAC + expiry of a signed upload URL and return the target repo."""
        params = {k: v[0] for k, v in ctx.query.items() if k != "sig"}
        given = ctx.param("sig") or ""
        if not hmac.compare_digest(given, self._sign(unquote(ctx.path), params)):
            raise HubError(403, "SignatureDoesNotMatch: the upload URL signature is invalid")
        if float(params.get("expires", "0")) < time.time():
            raise HubError(403, "Request has expired: the signed upload URL is no longer valid")
        with self._lock:
            return self._repo(params["repo_type"], params["repo_id"])

    def _h_lfs_batch(self, ctx: _Ctx, ns: str, name: str, prefix: str = "") -> _Response:
        payload = ctx.json()
        if payload.get("operation") != "upload":
            raise HubError(400, "Only the LFS 'upload' operation is supported by the HubServer test double")
        chunk = self.multipart_chunk_size
        multipart = bool(chunk) and "multipart" in (payload.get("transfers") or ["basic"])
        expires = int(time.time() + self.upload_url_ttl_s)
        with self._lock:
            repo = self._writable_repo(ctx, prefix or "models", ns, name)
            stored = dict(repo.lfs_oids)
        verify_href = f"{self._repo_url(repo)}.git/info/lfs/objects/verify"
        objects = []
        for obj in payload.get("objects") or []:
            oid, size = obj.get("oid"), obj.get("size")
            if not isinstance(oid, str) or not _SHA256.fullmatch(oid) or not isinstance(size, int) or size < 0:
                error = {"code": 422, "message": "Invalid oid or size"}
                objects.append({"oid": str(oid), "size": size if isinstance(size, int) else -1, "error": error})
                continue
            if oid in stored:
                objects.append({"oid": oid, "size": size})  # already uploaded: no actions, client skips
                continue
            path = f"/_lfs/upload/{oid}"
            upload: dict[str, Any] = {"href": self._signed_url(path, repo, size, expires), "expires_at": _iso(expires)}
            if multipart and chunk and size > chunk:
                nb_parts = -(-size // chunk)
                upload["header"] = {"chunk_size": str(chunk)} | {
                    str(n): self._signed_url(f"{path}/part/{n}", repo, size, expires, part=str(n))
                    for n in range(1, nb_parts + 1)
                }
            objects.append(
                {
                    "oid": oid,
                    "size": size,
                    "authenticated": True,
                    "actions": {"upload": upload, "verify": {"href": verify_href, "header": {}}},
                }
            )
        return _Response.json(
            {"transfer": "multipart" if multipart else "basic", "objects": objects, "hash_algo": "sha256"},
            headers={"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _receive(self, ctx: _Ctx, target: Path) -> tuple[str, int]:
        """Stream the request body to ``target``; return (sha256, size)."""
        sha, size = hashlib.sha256(), 0
        with self._lock:
            self._uploads_in_flight += 1
            self.max_concurrent_uploads = max(self.max_concurrent_uploads, self._uploads_in_flight)
        try:
            with open(target, "wb") as fh:
                for chunk in ctx.body.iter_chunks():
                    fh.write(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    with self._lock:
                        self.bytes_uploaded += len(chunk)
        finally:
            with self._lock:
                self._uploads_in_flight -= 1
        return sha.hexdigest(), size

    @staticmethod
    def _etag(sha256: str) -> str:
        """The storage ETag of an uploaded body: content-derived like S3's MD5, but from the sha256 the double
        computes anyway (a second digest would double the double's CPU per byte, which the real Hub does not
        spend on the client's host)."""
        return sha256[:32]

    def _set_pending(self, repo: Repo, oid: str, path: Path, sha256: str, size: int) -> None:
        with self._lock:
            previous = repo.pending.pop(oid, None)
            repo.pending[oid] = _PendingUpload(path, sha256, size)
        if previous is not None and previous.path != path:
            previous.path.unlink(missing_ok=True)

    def _h_lfs_put(self, ctx: _Ctx, oid: str) -> _Response:
        repo = self._check_signature(ctx)
        target = self.storage_dir / "incoming" / f"{oid}.{uuid.uuid4().hex}.upload"
        try:
            digest, size = self._receive(ctx, target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        self._set_pending(repo, oid, target, digest, size)
        return _Response(status=200, headers={"ETag": f'"{self._etag(digest)}"'})

    def _part_path(self, repo: Repo, oid: str, part: int) -> Path:
        key = hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}/{oid}".encode()).hexdigest()[:16]
        return self.storage_dir / "incoming" / f"{oid}.{key}.part{part}"

    def _h_lfs_put_part(self, ctx: _Ctx, oid: str, part: str) -> _Response:
        repo = self._check_signature(ctx)
        if ctx.param("part") != part:
            raise HubError(403, "SignatureDoesNotMatch: part number mismatch")
        target = self._part_path(repo, oid, int(part))
        etag = self._etag(self._receive(ctx, target)[0])
        target.with_suffix(target.suffix + ".etag").write_text(etag)
        return _Response(status=200, headers={"ETag": f'"{etag}"'})

    def _h_lfs_complete(self, ctx: _Ctx, oid: str) -> _Response:
        repo = self._check_signature(ctx)
        payload = ctx.json()
        parts = payload.get("parts") or []
        if payload.get("oid") != oid or [p.get("partNumber") for p in parts] != list(range(1, len(parts) + 1)):
            raise HubError(400, "Invalid multipart completion payload")
        target = self.storage_dir / "incoming" / f"{oid}.{uuid.uuid4().hex}.upload"
        sha, size = hashlib.sha256(), 0
        with open(target, "wb") as out:
            for part in parts:
                path = self._part_path(repo, oid, part["partNumber"])
                etag_file = path.with_suffix(path.suffix + ".etag")
                if not path.exists() or etag_file.read_text() != str(part.get("etag", "")).strip('"'):
                    target.unlink(missing_ok=True)
                    raise HubError(400, f"Part {part['partNumber']} is missing or its ETag does not match")
                data = path.read_bytes()
                out.write(data)
                sha.update(data)
                size += len(data)
        for part in parts:
            path = self._part_path(repo, oid, part["partNumber"])
            path.unlink(missing_ok=True)
            path.with_suffix(path.suffix + ".etag").unlink(missing_ok=True)
        self._set_pending(repo, oid, target, sha.hexdigest(), size)
        return _Response.json({})

    def _h_lfs_verify(self, ctx: _Ctx, ns: str, name: str, prefix: str = "") -> _Response:
        payload = ctx.json()
        oid, size = payload.get("oid"), payload.get("size")
        with self._lock:
            repo = self._writable_repo(ctx, prefix or "models", ns, name)
            if oid in repo.lfs_oids and oid not in repo.pending:
                if repo.lfs_oids[oid] != size:
                    raise HubError(422, f"Size mismatch for object {oid}")
                return _Response.json({})
            pending = repo.pending.pop(oid, None) if isinstance(oid, str) else None
        if pending is None:
            raise HubError(422, f"Object {oid} was not uploaded (nothing to verify)")
        if pending.sha256 != oid or pending.size != size:
            pending.path.unlink(missing_ok=True)
            raise HubError(
                422,
                f"Verification failed for object {oid}: received sha256={pending.sha256} size={pending.size}, "
                f"expected sha256={oid} size={size}",
            )
        target = self._object_path(oid)
        if target.exists():
            pending.path.unlink(missing_ok=True)
        else:
            os.replace(pending.path, target)
        with self._lock:
            repo.lfs_oids[oid] = pending.size
        return _Response.json({})

    # ---------------------------------------------------------------- routes: commit

    def _h_commit(self, ctx: _Ctx, type: str, ns: str, name: str, rev: str) -> _Response:  # noqa: A002
        with self._lock:
            self._writable_repo(ctx, type, ns, name)  # auth first, before reading a possibly large body
        if _truthy(ctx.param("create_pr")):
            raise HubError(400, "create_pr (pull requests) is not supported by the HubServer test double")
        lines = [line for line in ctx.body.read().splitlines() if line.strip()]
        try:
            items = [json.loads(line) for line in lines]
        except ValueError as exc:
            raise HubError(400, f"Invalid NDJSON commit payload: {exc}") from exc
        if not items or items[0].get("key") != "header":
            raise HubError(400, "The first line of the commit payload must be the header")
        header = items[0].get("value") or {}
        title = str(header.get("summary") or "").strip()
        if not title:
            raise HubError(400, "Commit summary (message) is required")
        operations = [self._prepare_operation(item) for item in items[1:]]
        with self._lock:
            repo = self._writable_repo(ctx, type, ns, name)
            if rev not in repo.branches:
                raise HubError(
                    404, f"Invalid rev id: {rev} (commits must target an existing branch)", code="RevisionNotFound"
                )
            head = repo.commits[repo.branches[rev]]
            parent = header.get("parentCommit")
            if parent and not head.sha.startswith(str(parent).lower()):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = self._apply_operations(repo, dict(head.tree), operations)
            commit = self._new_commit(
                repo, (head.sha,), tree, title, str(header.get("description") or ""), ctx.user.name if ctx.user else "?"
            )
            repo.branches[rev] = commit.sha
            self.commits_created += 1
            url = f"{self._repo_url(repo)}/commit/{commit.sha}"
        _LOG.debug("hub-server commit %s on %s@%s (%d ops)", commit.sha[:8], repo.repo_id, rev, len(operations))
        return _Response.json(
            {"success": True, "commitOid": commit.sha, "commitUrl": url, "hookOutput": "", "pullRequestUrl": None}
        )

    def _prepare_operation(self, item: dict[str, Any]) -> tuple[str, str, Any]:
        """Validate one NDJSON operation and pre-store regular file content (outside the lock)."""
        key, value = item.get("key"), item.get("value") or {}
        path = value.get("path")
        if not isinstance(path, str):
            raise HubError(400, f"Operation {key!r} has no path")
        if key == "file":
            path = _validate_repo_path(path)
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"Unsupported encoding for {path}: {value.get('encoding')}")
            try:
                data = base64.b64decode(value.get("content") or "", validate=True)
            except (binascii.Error, ValueError) as exc:
                raise HubError(400, f"Invalid base64 content for {path}") from exc
            if len(data) >= self.lfs_threshold_bytes:
                raise HubError(
                    400,
                    f"Your push was rejected because it contains files larger than "
                    f"{self.lfs_threshold_bytes // (1024 * 1024)} MiB ({path}). Please use git-lfs.",
                )
            if data and _looks_binary(data[:512]):
                raise HubError(
                    400, f"Your push was rejected because it contains binary files ({path}). Please use git-lfs."
                )
            entry = FileEntry(len(data), self._store_bytes(data), git_blob_sha1(data), lfs=False)
            return ("add", path, entry)
        if key == "lfsFile":
            path = _validate_repo_path(path)
            oid, size = value.get("oid"), value.get("size")
            if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str) or not _SHA256.fullmatch(oid):
                raise HubError(400, f"Invalid LFS oid for {path}: {oid!r}")
            return ("lfs", path, (oid, size))
        if key in ("deletedFile", "deletedFolder"):
            return (key, path.strip("/"), None)
        raise HubError(400, f"Unsupported commit operation: {key!r}")

    def _apply_operations(
        self, repo: Repo, tree: dict[str, FileEntry], operations: list[tuple[str, str, Any]]
    ) -> dict[str, FileEntry]:
        """Apply operations to a copy of the tree; raise (no state change) on the first invalid one."""
        for kind, path, arg in operations:
            if kind == "add":
                tree[path] = arg
            elif kind == "lfs":
                oid, size = arg
                if oid not in repo.lfs_oids:
                    raise HubError(422, f"LFS object {oid} for '{path}' was not uploaded and verified for this repo")
                if size is not None and size != repo.lfs_oids[oid]:
                    raise HubError(422, f"LFS object {oid} for '{path}' has size {repo.lfs_oids[oid]}, not {size}")
                real = repo.lfs_oids[oid]
                tree[path] = FileEntry(real, oid, git_blob_sha1(lfs_pointer(oid, real)), lfs=True)
            elif kind == "deletedFile":
                if path not in tree:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")
                del tree[path]
            else:  # deletedFolder
                doomed = [p for p in tree if p.startswith(path + "/")] if path else list(tree)
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", code="EntryNotFound")
                for p in doomed:
                    del tree[p]
        folders = {p.rsplit("/", 1)[0] for p in tree if "/" in p}
        folders |= {f.rsplit("/", i)[0] for f in list(folders) for i in range(1, f.count("/") + 1)}
        clashes = sorted(folders & tree.keys())
        if clashes:
            raise HubError(400, f"Path conflict: '{clashes[0]}' would be both a file and a folder")
        return tree

    # ---------------------------------------------------------------- routes: downloads

    def _h_resolve(self, ctx: _Ctx, ns: str, name: str, rev: str, path: str, prefix: str = "") -> _Response:
        with self._lock:
            repo = self._readable_repo(ctx, prefix or "models", ns, name)
            commit = self._resolve(repo, rev)
            entry = commit.tree.get(path)
        base = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", code="EntryNotFound", headers=base)
        headers = {**base, "ETag": f'"{entry.etag}"', "Content-Type": "application/octet-stream"}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
        start, length, status = 0, entry.size, 200
        range_header = ctx.headers.get("Range")
        if range_header:
            start, length = self._parse_range(range_header, entry.size, headers)
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{entry.size}"
            status = 206
        return _Response(status, headers, file=(self._object_path(entry.sha256), start, length), is_download=True)

    @staticmethod
    def _parse_range(value: str, size: int, headers: dict[str, str]) -> tuple[int, int]:
        """Parse a single ``bytes=`` range into (start, length); 416 if unsatisfiable."""
        match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
        error = HubError(
            416, f"Range Not Satisfiable: {value}", headers={**headers, "Content-Range": f"bytes */{size}"}
        )
        if match is None or (not match.group(1) and not match.group(2)):
            raise error
        first, last = match.groups()
        if not first:
            length = min(int(last), size)
            start = size - length
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            length = end - start + 1
        if start >= size or length <= 0:
            raise error
        return start, length


# --------------------------------------------------------------------------------------------------
# Client configuration + pytest fixtures
# --------------------------------------------------------------------------------------------------


def configure_hf_client(endpoint: str, monkeypatch: pytest.MonkeyPatch, cache_dir: str | os.PathLike[str]) -> None:
    """Point the already-imported ``huggingface_hub`` client at ``endpoint``, LFS only, no Xet.

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
def hub_api(hub_client_env: HubServer, hub_token: str) -> Any:
    """An ``HfApi`` bound to ``hub_server`` and authenticated as ``DEFAULT_USER``."""
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub_client_env.url, token=hub_token)


__all__ = [
    "DEFAULT_GITATTRIBUTES",
    "DEFAULT_ORG",
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "Commit",
    "Fault",
    "FileEntry",
    "HubError",
    "HubServer",
    "Repo",
    "Tag",
    "User",
    "configure_hf_client",
    "git_blob_sha1",
    "hub_api",
    "hub_client_env",
    "hub_server",
    "hub_token",
    "lfs_pointer",
    "parse_front_matter",
]
