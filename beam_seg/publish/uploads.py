"""The upload step: each worker process hashes its chunks of files and sends their LFS content, many at a time.

The thread pools belong to the worker process (Beam's ``Shared``), not to a DoFn instance: a Dataflow worker runs a
DoFn instance per harness thread, and per-instance pools would multiply its threads and parallel transfers.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.utils import shared

from beam_seg import fs
from beam_seg.hub import auth, files, lfs
from beam_seg.hub.commits import preupload_files
from beam_seg.publish.plan import PublishPlan, SourceFile

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = ["ChunkResult", "UploadChunksFn", "content_of", "worker_api"]

logger = logging.getLogger(__name__)


def _stage(uri: str, staging_dir: str) -> str:
    """A local copy of a remote (``gs://``) file, made once per worker."""
    key = hashlib.sha1(uri.encode()).hexdigest()[:16]
    target = os.path.join(staging_dir, f"{key}-{uri.rsplit('/', 1)[-1]}")
    if not os.path.exists(target):
        temp = f"{target}.{uuid.uuid4().hex}.part"
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as src, open(temp, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
        os.replace(temp, target)
    return target


def content_of(source: SourceFile | files.LocalFile, staging_dir: str) -> str | bytes:
    """Local path or bytes of a file, staging remote files locally."""
    if source.data is not None:
        return source.data
    uri = source.uri if isinstance(source, SourceFile) else source.source
    if not uri:
        raise ValueError(f"{source.path_in_repo} has neither content nor a source")
    return _stage(uri, staging_dir) if fs.is_remote(uri) else uri


def worker_api(plan: PublishPlan) -> HfApi:
    """A worker's ``HfApi``: its token from ``HF_TOKEN``, or from ``--hf_token_secret`` (Dataflow workers)."""
    if plan.token_secret:
        auth.use_token_secret(plan.token_secret)
    return auth.make_api(endpoint=plan.endpoint)


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """What uploading one chunk did: its index, start and end times, and its hashed files."""

    index: int
    started: float
    finished: float
    files: tuple[files.LocalFile, ...]


@dataclasses.dataclass(eq=False)
class _UploadPools:
    """The threads of one worker process's uploads, shared by all its upload DoFns (see :func:`_upload_pools`).

    Attributes:
        chunks: Runs whole chunks (hash, LFS batch call, wait for the transfers): ``parallel_chunks`` threads.
        transfers: Runs the transfers (files, or parts of a file): ``parallel_chunks x upload_threads`` threads;
            ``None`` when the client uploads through Xet itself.
        hashing: Lets as many chunks hash at a time as the process has cores, so the first (largest) chunks start
            uploading early instead of every chunk finishing its hashing late (bench/publish.py,
            ``hash_semaphore``).
    """

    chunks: concurrent.futures.ThreadPoolExecutor
    transfers: concurrent.futures.ThreadPoolExecutor | None
    hashing: threading.BoundedSemaphore


# One handle per worker process (Beam's per-process cache for DoFn resources): a Dataflow worker runs a DoFn
# instance per harness thread, and per-instance pools would multiply its threads (and its parallel transfers) by
# their number, so that --parallel_chunks would no longer mean "per worker process".
_UPLOAD_POOLS = shared.Shared()


def _upload_pools(parallel_chunks: int, upload_threads: int, *, xet: bool) -> _UploadPools:
    """This process's upload pools for these settings, made on first use.

    Idle pools are kept for the process's next job (they hold no connection or file); other settings replace them,
    and the threads of pools no DoFn holds any more exit once they are garbage-collected.
    """

    def start() -> _UploadPools:
        return _UploadPools(
            concurrent.futures.ThreadPoolExecutor(parallel_chunks, thread_name_prefix="upload"),
            None
            if xet
            else concurrent.futures.ThreadPoolExecutor(parallel_chunks * upload_threads, thread_name_prefix="transfer"),
            threading.BoundedSemaphore(os.cpu_count() or 1),
        )

    return _UPLOAD_POOLS.acquire(start, tag=(parallel_chunks, upload_threads, xet))


class UploadChunksFn(beam.DoFn):
    """Hashes the files of each chunk and uploads their LFS content; a bundle's chunks run concurrently.

    ``process`` hands each chunk to the worker process's chunk pool and ``finish_bundle`` waits for all of them,
    so a bundle's chunks hash and upload at the same time; the transfers (files, or the parts of a multipart file)
    share the transfer pool (:func:`_upload_pools`). Idempotent: content already on the Hub is skipped by the LFS
    batch call, so a retried bundle re-sends nothing that arrived.
    """

    def __init__(self, plan: PublishPlan) -> None:
        self._plan = plan
        self._chunks = beam.metrics.Metrics.counter("beam_seg", "publish_chunks_uploaded")
        self._bytes = beam.metrics.Metrics.counter("beam_seg", "publish_bytes_hashed")

    def setup(self) -> None:
        """A client, the process's upload pools and a staging folder for remote files."""
        plan = self._plan
        self._api = worker_api(plan)
        self._xet = lfs.xet_enabled()  # Then the client's own Xet transfer (chunked, parallel) is used instead.
        self._pools = _upload_pools(plan.parallel_chunks, plan.upload_threads, xet=self._xet)
        self._staging = tempfile.mkdtemp(prefix="beam_seg-publish-")

    def start_bundle(self) -> None:
        """Starts a bundle with no chunk in flight."""
        self._pending: list[concurrent.futures.Future[ChunkResult]] = []

    def process(self, element: tuple[int, list[SourceFile]]) -> None:
        """Hands one ``(index, files)`` chunk to the chunk pool."""
        index, chunk = element
        self._pending.append(self._pools.chunks.submit(self._upload, index, chunk))

    def finish_bundle(self) -> Iterator[beam.utils.windowed_value.WindowedValue]:
        """Waits for the bundle's chunks and emits one :class:`ChunkResult` each (the first failure is raised)."""
        concurrent.futures.wait(self._pending)
        pending, self._pending = self._pending, []
        for future in pending:
            result = future.result()  # Raises the first failure once every chunk has finished.
            self._chunks.inc()
            self._bytes.inc(sum(f.size for f in result.files))
            yield beam.transforms.window.GlobalWindows.windowed_value(result)

    def teardown(self) -> None:
        """Removes the staging folder (the pools belong to the process)."""
        shutil.rmtree(self._staging, ignore_errors=True)  # The pools are the process's (idle now), not ours.

    def _upload(self, index: int, chunk: list[SourceFile]) -> ChunkResult:
        plan = self._plan
        started = time.time()
        bodies = [content_of(source, self._staging) for source in chunk]  # Remote files are staged first.
        with self._pools.hashing:
            hashed = [
                files.local_file(source.path_in_repo, body, source=source.uri or None)
                for source, body in zip(chunk, bodies, strict=True)
            ]
        to_send = [f for f, source in zip(hashed, chunk, strict=True) if source.lfs_predicted]

        def content(f: files.LocalFile) -> str | bytes:
            return content_of(f, self._staging)

        if self._xet:
            preupload_files(self._api, repo_id=plan.model_repo, files=to_send, content=content)
        else:
            assert self._pools.transfers is not None
            lfs.upload_lfs_files(
                self._api, repo_id=plan.model_repo, files=to_send, content=content, executor=self._pools.transfers
            )
        size_mb = sum(f.size for f in hashed) / 1e6
        logger.info("chunk %d: %d files, %.1f MB in %.1fs", index, len(hashed), size_mb, time.time() - started)
        return ChunkResult(index, started, time.time(), tuple(hashed))
