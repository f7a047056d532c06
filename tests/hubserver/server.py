"""``HubServer``: the test double's lifecycle, settings, accounts, fault injection, stats and server-side views."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from . import spaces
from .accounts import Accounts, User
from .faults import Fault, FaultInjector
from .handler import ThreadedHTTPServer
from .lfs import UrlSigner
from .storage import Commit, FileEntry, Storage

_LOG = logging.getLogger(__name__)


class Stats:
    """Request log and traffic counters of one server (thread-safe); see :class:`HubServer` for their meaning."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, int]] = []
        self.bytes_uploaded = 0
        self.bytes_downloaded = 0
        self.commits_created = 0
        self.max_concurrent_uploads = 0
        self._uploads_in_flight = 0
        self._lock = threading.Lock()

    def record(self, method: str, path: str, status: int) -> None:
        """Logs a request (status 0: no response was sent)."""
        with self._lock:
            self.requests.append((method, path, status))

    def add_uploaded(self, nbytes: int) -> None:
        """Counts LFS bytes received."""
        with self._lock:
            self.bytes_uploaded += nbytes

    def add_downloaded(self, nbytes: int) -> None:
        """Counts ``/resolve`` body bytes sent."""
        with self._lock:
            self.bytes_downloaded += nbytes

    def add_commit(self) -> None:
        """Counts a commit created through ``/commit``."""
        with self._lock:
            self.commits_created += 1

    @contextlib.contextmanager
    def upload(self) -> Iterator[None]:
        """Marks an LFS body being received, for ``max_concurrent_uploads``."""
        with self._lock:
            self._uploads_in_flight += 1
            self.max_concurrent_uploads = max(self.max_concurrent_uploads, self._uploads_in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._uploads_in_flight -= 1

    def reset(self) -> None:
        """Clears the request log and the counters."""
        with self._lock:
            self.requests.clear()
            self.bytes_uploaded = self.bytes_downloaded = self.commits_created = self.max_concurrent_uploads = 0

    def count_requests(self, method: str | None, path_regex: str | None, status: int | None) -> int:
        """Counts logged requests matching the given method, path regex and status (``None``: any)."""
        with self._lock:
            log = list(self.requests)
        return sum(
            1
            for m, p, s in log
            if (method is None or m == method.upper())
            and (path_regex is None or re.search(path_regex, p))
            and (status is None or s == status)
        )


class HubServer:
    """In-process test double of the Hugging Face Hub HTTP API (see the package docstring).

    The server is listening when the constructor returns. Use it as a context manager or call :meth:`stop`.

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
        host: Bound host.
        port: Bound port.
        storage_dir: Blob storage directory.
        latency_s: As above; may be changed at any time (read per request), like the next three.
        bandwidth_bytes_per_s: As above.
        multipart_chunk_size: As above.
        lfs_threshold_bytes: As above.
        upload_url_ttl_s: As above.
        lock: Guards the repositories in ``storage``; held by the route handlers around each read or change.
        storage: Repositories and blobs (:class:`~.storage.Storage`).
        accounts: Users and tokens (:class:`~.accounts.Accounts`).
        faults: Pending injected faults (:class:`~.faults.FaultInjector`).
        stats: Request log and counters (:class:`Stats`), also readable as the properties below.
        signer: Signs and checks upload URLs.
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
        self.lfs_threshold_bytes = lfs_threshold_bytes
        self.multipart_chunk_size = multipart_chunk_size
        self.upload_url_ttl_s = upload_url_ttl_s
        self.latency_s = latency_s
        self.bandwidth_bytes_per_s = bandwidth_bytes_per_s
        self.lock = threading.RLock()
        self.storage = Storage(self.storage_dir)
        self.accounts = Accounts()
        self.faults = FaultInjector()
        self.stats = Stats()
        self.signer = UrlSigner()
        self._httpd = ThreadedHTTPServer((host, port), self)
        self.host, self.port = self._httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self._thread.start()
        self._stopped = False
        _LOG.debug("hub-server listening on %s (storage %s)", self.url, self.storage_dir)

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stops serving, closes open connections and removes the storage dir if it was a temp dir."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        self._thread.join(timeout=5)
        if self._owns_storage:
            shutil.rmtree(self.storage_dir, ignore_errors=True)

    # ---------------------------------------------------------------- accounts and faults

    def add_user(self, name: str, token: str, orgs: Sequence[str] = (), *, plan: str | None = None) -> User:
        """Registers a user (or adds a token / orgs to an existing one).

        Args:
            name: User name, also its namespace.
            token: Bearer token authenticating the user.
            orgs: Organizations the user can write to.
            plan: ``pro`` (a new user's default) or ``free`` (402 for Gradio/Docker Spaces off ZeroGPU: see
                :mod:`.spaces`); ``None`` keeps an existing user's plan.

        Returns:
            The user.
        """
        return self.accounts.add(name, token, orgs, plan=plan)

    def space_runtime(self, repo_id: str) -> dict:
        """The runtime JSON ``GET /api/spaces/{repo_id}/runtime`` answers (stage, hardware)."""
        with self.lock:
            return spaces.runtime_json(self, self.storage.repo("space", repo_id))

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
        """Injects a fault for the next ``times`` requests matching ``method`` and ``path_regex``.

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

        Raises:
            ValueError: If none of ``status``, ``drop`` and ``truncate_response_at`` is given.
        """
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
        return self.faults.add(fault)

    def clear_faults(self) -> None:
        """Removes every pending fault."""
        self.faults.clear()

    # ---------------------------------------------------------------- stats

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """Log of ``(method, decoded_path, status)``; status 0 means no response was sent."""
        return self.stats.requests

    @property
    def bytes_uploaded(self) -> int:
        """LFS bytes received by the signed-URL upload handlers.

        Every attempt that reaches them counts, including retries and uploads later rejected by verify; requests
        answered by an injected fault do not.
        """
        return self.stats.bytes_uploaded

    @property
    def bytes_downloaded(self) -> int:
        """Body bytes written by ``/resolve`` GETs."""
        return self.stats.bytes_downloaded

    @property
    def commits_created(self) -> int:
        """Number of commits created through ``/commit`` (initial repo commits excluded)."""
        return self.stats.commits_created

    @property
    def max_concurrent_uploads(self) -> int:
        """Peak number of LFS bodies (single PUTs or multipart parts) being received at the same time.

        E.g. to tell parts sent in parallel from parts sent one after another.
        """
        return self.stats.max_concurrent_uploads

    def reset_stats(self) -> None:
        """Clears the request log and the byte / commit / concurrency counters."""
        self.stats.reset()

    def count_requests(
        self, method: str | None = None, path_regex: str | None = None, status: int | None = None
    ) -> int:
        """Counts logged requests matching the given method, path regex and status (``None``: any)."""
        return self.stats.count_requests(method, path_regex, status)

    # ---------------------------------------------------------------- server-side views of the repos

    def commit(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> Commit:
        """Returns the commit a branch / tag / sha points to (server-side view)."""
        with self.lock:
            return self.storage.repo(repo_type, repo_id).resolve(revision)

    def revision_sha(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        """Returns the commit sha a branch / tag / sha points to (server-side view)."""
        return self.commit(repo_id, revision, repo_type).sha

    def read_file(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        """Returns the content of a file at a revision (server-side view)."""
        entry = self.commit(repo_id, revision, repo_type).tree[path]
        return self.storage.object_path(entry.sha256).read_bytes()

    def list_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, FileEntry]:
        """Returns the file tree at a revision (server-side view)."""
        return dict(self.commit(repo_id, revision, repo_type).tree)
