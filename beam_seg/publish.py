"""Stage 3: publish a trained model to the Hugging Face Hub as an immutable version, and deploy its demo Space.

Usage::

    export HF_TOKEN=hf_...        # never a flag; or `hf auth login`
    python -m beam_seg.publish --model_dir DIR --model_repo user/name [--space_repo user/demo] [Beam options]

A Beam job (DirectRunner locally; DataflowRunner with a ``gs://`` model directory):

1. The driver creates the model repo (and the Space) with ``exist_ok=True`` while it builds the job, so a bad
   token or a missing write permission stops the run before any worker starts; any other error stops it too.
2. ``GroupIntoChunks`` (the listed files, about ``--chunk_size_mb`` each) → ``UploadChunks``: each worker builds
   one ``HfApi`` and its thread pools in ``setup()``, hashes each file once and sends the LFS content of its chunks
   concurrently (:func:`beam_seg.hub.upload_lfs_files`: the client's LFS batch call skips objects already on the
   Hub; a file the Hub wants in parts goes up in parallel parts).
3. ``CommitVersion`` (fan-in): ONE commit on ``main`` carrying every file of the training output directory plus
   the model card (``checkpoints/`` excluded), made exact (stale files deleted) and split only above the Hub's
   per-commit limit (:data:`beam_seg.hub.MAX_FILES_PER_COMMIT`); then a tag AND a branch named ``--version``.
   The refs, the head's files and the client's preupload are read concurrently before ``create_commit``.
4. ``PushSpace``: the ``--app_dir`` template rendered for that commit and pushed to the Space's ``main``.
5. ``WriteManifest``: ``publish_manifest.json`` (schema: :mod:`beam_seg.manifest`).

Re-running is safe: uploads already on the Hub are skipped, a commit that landed is detected and never repeated,
a branch head that already holds exactly these files is reused, and re-publishing a version with identical
content is a no-op (with different content it is an error). A model below ``--min_miou`` is not pushed.
On Dataflow, workers have no ``HF_TOKEN``: give ``--hf_token_secret`` (a Secret Manager secret) and each reads it once.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as _dt
import fnmatch
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.io.filesystems import CompressionTypes, FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.utils import shared

from beam_seg import export, hub, manifest, model_card, space
from beam_seg.options import OutputOptions
from beam_seg.tfrecord_gen import configure_logging, make_pipeline_options

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "CreatedRepos",
    "PublishModel",
    "PublishOptions",
    "PublishPlan",
    "build_pipeline",
    "create_repos",
    "plan_chunks",
    "run",
]

logger = logging.getLogger(__name__)

DEFAULT_APP_DIR = "apps/gradio/semantic_segmentation"
CARD_NAME = "README.md"
# Not part of the published model: training state and this stage's own outputs.
EXCLUDED_DIRS: tuple[str, ...] = ("checkpoints", "publish_preview")
EXCLUDED_FILES: tuple[str, ...] = (manifest.MANIFEST_NAME, CARD_NAME)
_TEMP_FILE = re.compile(r".*\.tmp-\d+$")
# Local runner defaults: uploads are I/O bound and threaded inside the DoFn, so one in-memory worker is fastest
# (bench/publish.py); tfrecord_gen's multi-process default would only add start-up time.
LOCAL_RUNNING_MODE = "in_memory"
LOCAL_NUM_WORKERS = 1
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_BLESSED = 0, 1, 2, 3
_SAMPLE_BYTES = 512


class PublishOptions(PipelineOptions):
    """Options of the publish job; ``--output_dir`` is the shared :class:`~beam_seg.options.OutputOptions` flag."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--model_dir",
            help="Training output directory (local or gs://): saved_model/, model_config.json, metrics.json, ... "
            "Required unless --rollback.",
        )
        parser.add_argument("--model_repo", help="Model repository on the Hub, user/name or org/name. Required.")
        parser.add_argument(
            "--space_repo", help="Gradio Space to deploy, user/name (default: none, no Space is touched)."
        )
        parser.add_argument(
            "--app_dir",
            default=DEFAULT_APP_DIR,
            help="Local folder of the Space template; $MODEL_REPO_ID, $MODEL_VERSION, $MODEL_REVISION, "
            "$MODEL_REPO_URL are replaced in its text files (default: %(default)s).",
        )
        parser.add_argument(
            "--version",
            default=None,
            help="Version to publish, created as a tag and a branch; immutable once published "
            "(default: v<UTC timestamp>, e.g. v20261123T010203Z).",
        )
        parser.add_argument(
            "--min_miou",
            type=float,
            default=0.0,
            help="Blessing gate: push only if the val (else test) mean IoU in metrics.json is at least this; "
            "below it nothing is pushed and the manifest says why (default: %(default)s = no gate).",
        )
        parser.add_argument(
            "--private", action="store_true", help="Create the model repo and the Space as private repositories."
        )
        parser.add_argument(
            "--chunk_size_mb",
            type=float,
            default=16.0,
            help="Target size of one upload work item; a file larger than this is a chunk of its own "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--upload_threads",
            type=int,
            default=4,
            help="Transfers (files, or parts of a file the Hub wants in parts) per chunk: a worker process runs up "
            "to parallel_chunks x upload_threads at a time (defaults tuned with bench/publish.py; default: "
            "%(default)s).",
        )
        parser.add_argument(
            "--parallel_chunks",
            type=int,
            default=16,
            help="Chunks a worker process uploads at the same time, whatever its number of bundles or harness "
            "threads (default: %(default)s).",
        )
        parser.add_argument(
            "--publish_dry_run",
            action="store_true",
            help="Alias --dry_run. Touch no network: render the Space and the model card under "
            "<output_dir>/publish_preview/ and list what would be uploaded in the manifest and the log.",
        )
        parser.add_argument(
            "--placeholder",
            action="append",
            default=None,
            metavar="KEY=VALUE",
            help="Extra $KEY placeholder for the Space template (repeatable).",
        )
        parser.add_argument(
            "--hf_token_secret",
            default=None,
            metavar="projects/P/secrets/S[/versions/V]",
            help="Secret Manager secret holding the Hub token, for Dataflow workers (their containers have no "
            "HF_TOKEN): each worker reads it once with its own service account, which needs "
            "roles/secretmanager.secretAccessor. A token already in the environment wins. The token itself is "
            "never a flag.",
        )
        parser.add_argument(
            "--rollback",
            default=None,
            metavar="VERSION",
            help="Re-point --space_repo at an already published VERSION of --model_repo (resolved from its tag); "
            "uploads no model file and runs no Beam job.",
        )


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of the model directory (or the generated card) to publish.

    Attributes:
        path_in_repo: Destination path.
        uri: Where to read it (local path or ``gs://``); empty for generated files.
        size: Size in bytes.
        lfs_predicted: Whether the Hub will store it with LFS (local prediction, see :func:`predict_lfs`).
        data: Content of a generated file.
    """

    path_in_repo: str
    uri: str
    size: int
    lfs_predicted: bool
    data: bytes | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class PublishPlan:
    """Everything decided on the driver; shipped to the workers (no token in it)."""

    model_repo: str
    space_repo: str | None
    version: str
    endpoint: str
    private: bool
    output_dir: str
    model_dir: str | None
    files: tuple[SourceFile, ...]
    blessing: model_card.Blessing | None
    template: dict[str, bytes] | None
    placeholders: dict[str, str]
    chunk_bytes: int
    upload_threads: int
    parallel_chunks: int
    dry_run: bool
    rollback: str | None
    runner: str
    started: float
    plan_seconds: float
    retry: hub.RetryPolicy
    token_secret: str | None = None


@dataclasses.dataclass(frozen=True)
class CreatedRepos:
    """The repositories the driver created (or found) before launching the job.

    Attributes:
        urls: ``{"model": url}``, plus ``"space"`` when a Space is deployed.
        seconds: Time the creation took.
    """

    urls: dict[str, str]
    seconds: float


# --------------------------------------------------------------------------------------------- pure helpers

# The LFS patterns of the .gitattributes the Hub puts in every new repository.
_LFS_PATTERNS: tuple[str, ...] = (
    "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*", "*.mlmodel",
    "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
    "*.pth", "*.rar", "*.safetensors", "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst",
    "*tfevents*",
)  # fmt: skip


def predict_lfs(path_in_repo: str, size: int, sample: bytes) -> bool:
    """Whether the Hub will store a file with LFS: ``saved_model/**`` or an LFS extension in its default
    ``.gitattributes``, binary content (NUL byte or invalid UTF-8 in the first 512 bytes), or 10 MiB and more."""
    if size >= hub.LFS_MIN_BYTES or path_in_repo.startswith("saved_model/"):
        return True
    name = path_in_repo.rsplit("/", 1)[-1]
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in _LFS_PATTERNS):
        return True
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:  # A multi-byte character cut by the 512-byte sample is still text.
        return not (e.reason == "unexpected end of data" and e.start >= len(sample) - 3)
    return False


def plan_chunks(files: Iterable[SourceFile], chunk_bytes: int) -> list[list[SourceFile]]:
    """Groups files into chunks of at most ``chunk_bytes`` (first fit, largest first; deterministic).

    A file larger than ``chunk_bytes`` is a chunk of its own. Chunks are ordered largest first, so the longest
    uploads start first.
    """
    chunks: list[list[SourceFile]] = []
    sizes: list[int] = []
    for f in sorted(files, key=lambda f: (-f.size, f.path_in_repo)):
        for i, used in enumerate(sizes):
            if used + f.size <= chunk_bytes:
                chunks[i].append(f)
                sizes[i] += f.size
                break
        else:
            chunks.append([f])
            sizes.append(f.size)
    return [sorted(c, key=lambda f: f.path_in_repo) for c in chunks]


def default_version(now: float | None = None) -> str:
    """``v<UTC timestamp>``, e.g. ``v20261123T010203Z``."""
    moment = _dt.datetime.fromtimestamp(time.time() if now is None else now, _dt.timezone.utc)
    return "v" + moment.strftime("%Y%m%dT%H%M%SZ")


def _is_remote(path: str) -> bool:
    return "://" in path


def _read_head(uri: str, size: int = _SAMPLE_BYTES) -> bytes:
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read(size)


def _read_json(model_dir: str, name: str) -> dict[str, Any]:
    path = FileSystems.join(model_dir, name)
    if not FileSystems.exists(path):
        logger.warning("%s has no %s; the model card will lack what it holds", model_dir, name)
        return {}
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        try:
            value = json.loads(f.read())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); is --model_dir a complete training output?") from None
    return value if isinstance(value, dict) else {}


def list_model_files(model_dir: str) -> list[SourceFile]:
    """Every file to publish from ``model_dir`` (local or ``gs://``), ``checkpoints/`` and our outputs excluded."""
    root = model_dir.rstrip("/")
    result = FileSystems.match([FileSystems.join(root, "**")])[0]
    files = []
    for meta in result.metadata_list:
        relative = meta.path[len(root) + 1 :].replace(os.sep, "/")
        top = relative.split("/", 1)[0]
        if top in EXCLUDED_DIRS or relative in EXCLUDED_FILES or _TEMP_FILE.match(relative):
            continue
        head = _read_head(meta.path) if meta.size_in_bytes else b""
        lfs = predict_lfs(relative, meta.size_in_bytes, head)
        files.append(SourceFile(relative, meta.path, meta.size_in_bytes, lfs))
    return sorted(files, key=lambda f: f.path_in_repo)


def _stage(uri: str, staging_dir: str) -> str:
    """A local copy of a remote (``gs://``) file, made once per worker."""
    key = hashlib.sha1(uri.encode()).hexdigest()[:16]  # noqa: S324 - a file name, not security.
    target = os.path.join(staging_dir, f"{key}-{uri.rsplit('/', 1)[-1]}")
    if not os.path.exists(target):
        temp = f"{target}.{uuid.uuid4().hex}.part"
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as src, open(temp, "wb") as dst:
            shutil.copyfileobj(src, dst, 8 * 1024 * 1024)
        os.replace(temp, target)
    return target


def _content(source: SourceFile | hub.LocalFile, staging_dir: str) -> str | bytes:
    """Local path or bytes of a file, staging remote files locally."""
    if source.data is not None:
        return source.data
    uri = source.uri if isinstance(source, SourceFile) else source.source
    if not uri:
        raise ValueError(f"{source.path_in_repo} has neither content nor a source")
    return _stage(uri, staging_dir) if _is_remote(uri) else uri


# --------------------------------------------------------------------------------------------- DoFns


def _worker_api(plan: PublishPlan) -> HfApi:
    """A worker's ``HfApi``: its token from ``HF_TOKEN``, or from ``--hf_token_secret`` (Dataflow workers)."""
    if plan.token_secret:
        hub.use_token_secret(plan.token_secret)
    return hub.make_api(endpoint=plan.endpoint)


def create_repos(api: HfApi, plan: PublishPlan) -> CreatedRepos:
    """Creates the model repo and the Space (concurrently) unless they exist; any other error is raised.

    Raises:
        HubError: One line naming the repo (bad token, no write access, network...).
    """
    started = time.time()
    wanted = {"model": plan.model_repo, **({"space": plan.space_repo} if plan.space_repo else {})}
    with concurrent.futures.ThreadPoolExecutor(len(wanted), thread_name_prefix="create-repo") as pool:
        futures = {kind: pool.submit(hub.ensure_repo, api, repo_id=repo_id, repo_type=kind, private=plan.private,
                                     policy=plan.retry)
                   for kind, repo_id in wanted.items()}  # fmt: skip
    return CreatedRepos({kind: future.result() for kind, future in futures.items()}, time.time() - started)


@dataclasses.dataclass(frozen=True)
class _ChunkResult:
    index: int
    started: float
    finished: float
    files: tuple[hub.LocalFile, ...]


def _started_pool(workers: int, name: str) -> concurrent.futures.ThreadPoolExecutor:
    """A thread pool whose ``workers`` threads are all running (idle) when it is returned.

    ``ThreadPoolExecutor`` starts a thread per submission until it is full, and each start waits for the new thread
    to take the GIL: done lazily, while the chunks hash and send, the last transfers of a bundle would start up to
    tenths of a second late. Started up front, the ~0.5 ms per thread is paid before any work competes for the GIL.
    """
    pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix=name)
    barrier = threading.Barrier(workers)
    concurrent.futures.wait([pool.submit(barrier.wait) for _ in range(workers)])  # All started: none was idle.
    return pool


@dataclasses.dataclass(eq=False)
class _UploadPools:
    """The threads of one worker process's uploads, shared by all its upload DoFns (see :func:`_upload_pools`).

    Attributes:
        chunks: Runs whole chunks (hash, LFS batch call, wait for the transfers): ``parallel_chunks`` threads.
        transfers: Runs the transfers (files, or parts of a file): ``parallel_chunks x upload_threads`` threads;
            ``None`` when the client uploads through Xet itself.
        hashing: Lets as many chunks hash at a time as the process has cores, so the first (largest) chunks start
            uploading early instead of every chunk finishing its hashing late.
    """

    chunks: concurrent.futures.ThreadPoolExecutor
    transfers: concurrent.futures.ThreadPoolExecutor | None
    hashing: threading.BoundedSemaphore


# One handle per worker process (Beam's per-process cache for DoFn resources): a Dataflow worker runs a DoFn
# instance per harness thread, and per-instance pools would multiply its threads (and its parallel transfers) by
# their number; one process that publishes again reuses the threads instead of starting ~80 more.
_UPLOAD_POOLS = shared.Shared()


def _upload_pools(parallel_chunks: int, upload_threads: int, *, xet: bool) -> _UploadPools:
    """This process's upload pools for these settings, started on first use (all their threads running).

    Idle pools are kept for the process's next job (they hold no connection or file); other settings replace them,
    and the threads of pools no DoFn holds any more exit once they are garbage-collected.
    """

    def start() -> _UploadPools:
        return _UploadPools(
            _started_pool(parallel_chunks, "upload"),
            None if xet else _started_pool(parallel_chunks * upload_threads, "transfer"),
            threading.BoundedSemaphore(os.cpu_count() or 1),
        )

    return _UPLOAD_POOLS.acquire(start, tag=(parallel_chunks, upload_threads, xet))


class _UploadChunksFn(beam.DoFn):
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
        plan = self._plan
        self._api = _worker_api(plan)
        self._xet = hub.xet_enabled()  # Then the client's own Xet transfer (chunked, parallel) is used instead.
        self._pools = _upload_pools(plan.parallel_chunks, plan.upload_threads, xet=self._xet)
        self._staging = tempfile.mkdtemp(prefix="beam_seg-publish-")

    def start_bundle(self) -> None:
        self._pending: list[concurrent.futures.Future[_ChunkResult]] = []

    def process(self, element: tuple[int, list[SourceFile]]) -> None:
        index, chunk = element
        self._pending.append(self._pools.chunks.submit(self._upload, index, chunk))

    def finish_bundle(self) -> Iterator[beam.utils.windowed_value.WindowedValue]:
        concurrent.futures.wait(self._pending)
        pending, self._pending = self._pending, []
        for future in pending:
            result = future.result()  # Raises the first failure once every chunk has finished.
            self._chunks.inc()
            self._bytes.inc(sum(f.size for f in result.files))
            yield beam.transforms.window.GlobalWindows.windowed_value(result)

    def teardown(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)  # The pools are the process's (idle now), not ours.

    def _upload(self, index: int, chunk: list[SourceFile]) -> _ChunkResult:
        plan = self._plan
        started = time.time()
        bodies = [_content(source, self._staging) for source in chunk]  # Remote files are staged first.
        with self._pools.hashing:
            files = [hub.local_file(source.path_in_repo, body, source=source.uri or None,
                                    lfs_expected=source.lfs_predicted)
                     for source, body in zip(chunk, bodies)]  # fmt: skip
        lfs = [f for f, source in zip(files, chunk) if source.lfs_predicted]
        content = lambda f: _content(f, self._staging)  # noqa: E731
        if self._xet:
            hub.preupload_files(self._api, repo_id=plan.model_repo, files=lfs, content=content)
        else:
            assert self._pools.transfers is not None
            hub.upload_lfs_files(self._api, repo_id=plan.model_repo, files=lfs, content=content,
                                 executor=self._pools.transfers)  # fmt: skip
        logger.info("chunk %d: %d files, %.1f MB in %.1fs", index, len(files), sum(f.size for f in files) / 1e6,
                    time.time() - started)  # fmt: skip
        return _ChunkResult(index, started, time.time(), tuple(files))


class _CommitVersionFn(beam.DoFn):
    """Fan-in: one exact commit of every file on ``main``, then the version's tag and branch."""

    def __init__(self, plan: PublishPlan) -> None:
        self._plan = plan

    def setup(self) -> None:
        self._api = _worker_api(self._plan)
        self._staging = tempfile.mkdtemp(prefix="beam_seg-commit-")

    def teardown(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)

    def process(self, group: tuple[None, Iterable[_ChunkResult]]) -> Iterator[dict[str, Any]]:
        plan = self._plan
        chunks = list(group[1])
        files = sorted((f for c in chunks for f in c.files), key=lambda f: f.path_in_repo)
        result = hub.publish_version(self._api, repo_id=plan.model_repo, version=plan.version, files=files,
                                     content=lambda f: _content(f, self._staging), policy=plan.retry,
                                     read_ahead=not _is_remote(plan.model_dir or ""))  # fmt: skip
        logger.info("model %s version %s -> %s (%s)", plan.model_repo, plan.version, result.sha[:12],
                    "reused" if result.reused else "new commit")  # fmt: skip
        yield _pushed_manifest(plan, files, result, chunks=chunks)


class _PushSpaceFn(beam.DoFn):
    """Renders the Space template for the pushed commit and pushes it in one commit."""

    def __init__(self, plan: PublishPlan) -> None:
        self._plan = plan

    def setup(self) -> None:
        self._api = _worker_api(self._plan)

    def process(self, doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        started = time.time()
        entry = deploy_space(self._api, self._plan, version=self._plan.version, revision=doc["model"]["commit_sha"])
        yield {**doc, "space": entry, "durations_s": {**doc["durations_s"], "space": round(time.time() - started, 3)}}


class _WriteManifestFn(beam.DoFn):
    """Writes ``publish_manifest.json`` once everything is pushed, with the repositories the driver created."""

    def __init__(self, plan: PublishPlan, repos: CreatedRepos | None) -> None:
        self._plan = plan
        self._repos = repos

    def process(self, doc: dict[str, Any]) -> Iterator[str]:
        if self._repos is not None:  # The URLs as the Hub returned them (canonical names).
            urls = self._repos.urls
            doc = {**doc, "model": {**doc["model"], "url": urls["model"]},
                   "durations_s": {**doc["durations_s"], "create_repos": round(self._repos.seconds, 3)}}  # fmt: skip
            if doc.get("space") and "space" in urls:
                doc["space"] = {**doc["space"], "url": urls["space"]}
        yield _finish_manifest(self._plan, doc)


class _Gather(beam.PTransform):
    """All elements as one ``(None, elements)`` group (one GroupByKey: lighter than ``ToList``'s global combine)."""

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        # Declared output types: Beam would otherwise infer them from the lambdas' bytecode at construction.
        keyed = pcoll | "KeyAll" >> beam.Map(lambda element: (None, element)).with_output_types(tuple[None, Any])
        return keyed | "Group" >> beam.GroupByKey()


class GroupIntoChunks(beam.PTransform):
    """PBegin → ``(index, [files])`` chunks of about ``chunk_bytes``.

    The chunks are planned from the listing made on the driver (the plan needs it anyway for the model card and
    the gate), which spares the job a global gather of the file list. A reshuffle spreads them over the workers
    (``spread=False`` skips it for a single local worker, which runs a bundle's chunks concurrently anyway).
    """

    def __init__(self, files: Sequence[SourceFile], chunk_bytes: int, *, spread: bool = True) -> None:
        super().__init__()
        self._chunks = list(enumerate(plan_chunks(files, chunk_bytes)))
        self._spread = spread

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        chunks = (
            pbegin
            | "Start" >> beam.Impulse()
            | "PlanChunks" >> beam.FlatMap(lambda _, chunks: chunks, self._chunks).with_output_types(
                tuple[int, list[SourceFile]]
            )
        )
        return chunks | "Spread" >> beam.Reshuffle() if self._spread and len(self._chunks) > 1 else chunks


class PublishModel(beam.PTransform):
    """The whole job as one transform: PBegin → the manifest path, once the version and the Space are pushed.

    The repositories must exist: :func:`run` creates them on the driver (:func:`create_repos`) while it builds the
    job. ``repos`` gives their URLs and creation time to the manifest; it is called last, once the rest of the job
    is built, so that the round trip overlaps the construction. The default records no creation (a job built
    offline, :func:`build_pipeline`).
    """

    def __init__(self, plan: PublishPlan, repos: Callable[[], CreatedRepos | None] = lambda: None) -> None:
        super().__init__()
        self._plan = plan
        self._repos = repos

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        plan = self._plan
        # One local worker uploads a bundle's chunks concurrently anyway; a reshuffle only helps remote workers.
        spread = not _is_local_runner(plan.runner)
        published = (
            pbegin
            | "GroupIntoChunks" >> GroupIntoChunks(plan.files, plan.chunk_bytes, spread=spread)
            | "UploadChunks" >> beam.ParDo(_UploadChunksFn(plan))
            | "CollectUploads" >> _Gather()
            | "CommitVersion" >> beam.ParDo(_CommitVersionFn(plan))
        )
        if plan.space_repo:
            published = published | "PushSpace" >> beam.ParDo(_PushSpaceFn(plan))
        return published | "WriteManifest" >> beam.ParDo(_WriteManifestFn(plan, self._repos()))


# --------------------------------------------------------------------------------------------- Space and manifest


def deploy_space(api: Any, plan: PublishPlan, *, version: str, revision: str) -> dict[str, Any]:
    """Renders the template for ``version``/``revision`` and makes the Space's ``main`` hold exactly that."""
    assert plan.space_repo and plan.template is not None
    values = space.placeholder_values(model_repo=plan.model_repo, version=version, revision=revision,
                                      endpoint=plan.endpoint, extra=plan.placeholders)  # fmt: skip
    files = space.render_template(plan.template, values)
    _warn_leftovers(files)
    result = space.push_space(api, repo_id=plan.space_repo, files=files, policy=plan.retry,
                              message=f"Serve {plan.model_repo} {version} ({revision[:12]})")  # fmt: skip
    if plan.private:
        logger.warning("the Space %s serves a private model: add a read token as its HF_TOKEN secret in the Space "
                       "settings, or it cannot download %s", plan.space_repo, plan.model_repo)  # fmt: skip
    return _space_entry(plan, files, version=version, revision=revision, sha=result.sha,
                        commits_created=result.commits_created)  # fmt: skip


def _space_entry(plan: PublishPlan, files: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    assert plan.space_repo and plan.template is not None
    return {
        "repo_id": plan.space_repo,
        "url": hub.repo_url(plan.endpoint, plan.space_repo, "space"),
        "commit_sha": extra.get("sha"),
        "commits_created": extra.get("commits_created", 0),
        "reused_commit": extra.get("commits_created", 0) == 0 if extra.get("sha") else None,
        "model_version": extra["version"],
        "model_revision": extra["revision"],
        "files": [{"path": p, "size": len(d), "rendered": d != plan.template[p]} for p, d in sorted(files.items())],
        **({"preview_dir": extra["preview_dir"]} if "preview_dir" in extra else {}),
    }


def _warn_leftovers(files: dict[str, bytes]) -> None:
    for path, names in space.leftover_placeholders(files).items():
        logger.warning("Space file %s still holds unknown placeholders %s (not replaced)", path, names)


def _base_manifest(plan: PublishPlan, status: str, reason: str | None = None) -> dict[str, Any]:
    doc = manifest.new_manifest(status=status, version=plan.version, started=plan.started, endpoint=plan.endpoint,
                                model_dir=plan.model_dir, model_repo=plan.model_repo, private=plan.private,
                                reason=reason)  # fmt: skip
    doc["blessing"] = plan.blessing.to_json() if plan.blessing else None
    doc["durations_s"]["plan"] = round(plan.plan_seconds, 3)
    doc["pipeline"] = {"runner": plan.runner, "chunks": None, "chunk_size_mb": plan.chunk_bytes / 1e6,
                       "upload_threads": plan.upload_threads, "parallel_chunks": plan.parallel_chunks}  # fmt: skip
    return doc


def _pushed_manifest(
    plan: PublishPlan,
    files: Sequence[hub.LocalFile],
    result: hub.VersionCommit,
    *,
    chunks: Sequence[_ChunkResult],
) -> dict[str, Any]:
    """The manifest of a pushed version (the Space entry and the end time are added downstream)."""
    changed = set(result.tree.changed) if result.tree else set()
    predicted = {f.path_in_repo: f.lfs_predicted for f in plan.files}
    doc = _base_manifest(plan, "pushed")
    doc["files"] = [
        {"path": f.path_in_repo, "size": f.size, "sha256": f.sha256, "lfs": f.path_in_repo in result.lfs_paths,
         "lfs_predicted": predicted.get(f.path_in_repo, False),
         "action": "uploaded" if f.path_in_repo in changed else "skipped"}
        for f in files
    ]  # fmt: skip
    doc["deleted"] = list(result.tree.deleted) if result.tree else []
    doc["totals"] = manifest.totals(doc["files"])
    base = plan.endpoint.rstrip("/")
    doc["model"].update(
        url=hub.repo_url(plan.endpoint, plan.model_repo),  # The URL the Hub returned replaces it (WriteManifest).
        commit_sha=result.sha, branch=plan.version, tag=plan.version,
        commit_url=f"{base}/{plan.model_repo}/commit/{result.sha}",
        version_url=f"{base}/{plan.model_repo}/tree/{plan.version}",
        commits_created=result.tree.commits_created if result.tree else 0, reused_commit=result.reused,
    )  # fmt: skip
    doc["durations_s"].update(
        create_repos=None,
        upload=round(max(c.finished for c in chunks) - min(c.started for c in chunks), 3),
        commit=round(result.commit_seconds, 3),
        refs=round(result.refs_seconds, 3),
    )
    doc["pipeline"]["chunks"] = len(chunks)
    return doc


def _planned_files(plan: PublishPlan) -> list[dict[str, Any]]:
    return [
        {"path": f.path_in_repo, "size": f.size, "sha256": None, "lfs": None, "lfs_predicted": f.lfs_predicted,
         "action": "planned"}
        for f in plan.files
    ]  # fmt: skip


def _finish_manifest(plan: PublishPlan, doc: dict[str, Any]) -> str:
    """Stamps the finish time and total duration (on a copy) and writes the manifest; returns its path."""
    finished = time.time()
    durations = {**doc["durations_s"], "total": round(finished - plan.started, 3)}
    return manifest.write_manifest(plan.output_dir, {**doc, "finished_at": manifest.utc_iso(finished),
                                                     "durations_s": durations})  # fmt: skip


# --------------------------------------------------------------------------------------------- driver


def _help_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m beam_seg.publish",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""\
  --dry_run             Same as --publish_dry_run. (Beam's own --dry_run of TestOptions takes a value and
                        would clash; a bare --dry_run or --dry_run=true given to this command means ours.)

Token and endpoint: HF_TOKEN (or the token saved by `hf auth login`), never a flag; HF_ENDPOINT (read at
run time, default https://huggingface.co). On Dataflow, workers read it from --hf_token_secret (Secret Manager).

Apache Beam pipeline options are accepted too, for example:
  --runner DirectRunner|DataflowRunner   default: FnApiRunner (the DirectRunner's batch engine, without
                                         its Prism download attempt) with
                                         --direct_running_mode={LOCAL_RUNNING_MODE}
                                         --direct_num_workers={LOCAL_NUM_WORKERS}
  --direct_running_mode, --direct_num_workers
  Dataflow: --project, --region, --temp_location gs://..., --staging_location gs://...,
            --setup_file ./setup.py, --machine_type, --max_num_workers, --sdk_container_image

Exit codes: 0 pushed / dry run / rolled back, 1 failed (Hub, network or version conflict),
            2 bad arguments, input or missing token, 3 not blessed (below --min_miou).

Outputs: the model repo's main, tag and branch --version; the Space's main;
  <output_dir>/{manifest.MANIFEST_NAME}   what was pushed (schema: beam_seg/manifest.py)
  <output_dir>/publish_preview/          model card and rendered Space (--dry_run only)
""",
    )
    PublishOptions._add_argparse_args(parser)
    parser.add_argument("--output_dir", help=_OUTPUT_DIR_HELP)
    return parser


_OUTPUT_DIR_HELP = (
    "Where publish_manifest.json (and the dry-run preview) go (default: --model_dir when it is local, else the "
    "current directory; must be gs:// on Dataflow)."
)
_TRUE = {"", "true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """Maps ``--dry_run`` (bare, ``=true``/``=false`` or followed by true/false) to ``--publish_dry_run``."""
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if item == "--dry_run" or item.startswith("--dry_run="):
            value = item.partition("=")[2].lower()
            if item == "--dry_run" and i + 1 < len(items) and items[i + 1].lower() in _TRUE | _FALSE:
                value = items[i + 1].lower()
                i += 1
            if value not in _TRUE | _FALSE:
                raise ValueError(f"--dry_run {value!r}: use a bare --dry_run, or true/false")
            if value in _TRUE:
                out.append("--publish_dry_run")
        else:
            out.append(item)
        i += 1
    return out


def _check_repo_id(flag: str, repo_id: str | None) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id is None:
        return
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise ValueError(f"{flag} {repo_id!r} is not a valid repo id: {str(e).splitlines()[0]}") from None
    if repo_id.count("/") != 1:
        raise ValueError(f"{flag} {repo_id!r} must name its owner: user/name or org/name")


def _is_local_runner(runner: str) -> bool:
    return runner.rsplit(".", 1)[-1] in (*StandardOptions.LOCAL_RUNNERS, "direct")


def output_dir_option(options: PipelineOptions) -> str | None:
    """``--output_dir``, the shared :class:`~beam_seg.options.OutputOptions` flag."""
    return options.view_as(OutputOptions).output_dir


def _validate(opts: PublishOptions, runner: str, output_dir: str | None) -> None:
    if not opts.model_repo:
        raise ValueError("--model_repo is required (see --help)")
    _check_repo_id("--model_repo", opts.model_repo)
    _check_repo_id("--space_repo", opts.space_repo)
    if opts.rollback:
        if not opts.space_repo:
            raise ValueError("--rollback re-points a Space: give --space_repo")
        if opts.version:
            raise ValueError("--rollback VERSION names the version; do not also give --version")
    elif not opts.model_dir:
        raise ValueError("--model_dir is required (see --help)")
    if not 0.0 <= opts.min_miou <= 1.0:
        raise ValueError(f"--min_miou {opts.min_miou} must be in [0, 1]")
    if opts.chunk_size_mb <= 0 or opts.upload_threads < 1 or opts.parallel_chunks < 1:
        raise ValueError(
            f"--chunk_size_mb {opts.chunk_size_mb} must be > 0, --upload_threads {opts.upload_threads} and "
            f"--parallel_chunks {opts.parallel_chunks} >= 1"
        )
    if not _is_local_runner(runner) and not opts.rollback:
        if not _is_remote(opts.model_dir or ""):
            raise ValueError(f"--model_dir {opts.model_dir!r} must be gs:// with --runner {runner} (workers read it)")
        if output_dir is None or not _is_remote(output_dir):
            raise ValueError(f"--output_dir must be gs:// with --runner {runner} (workers write the manifest)")


def make_publish_options(argv: Sequence[str]) -> PipelineOptions:
    """Pipeline options with this job's local defaults (``tfrecord_gen.make_pipeline_options``: ``FnApiRunner``
    unless ``--runner`` is given) and one in-memory worker, since threads in the DoFn do the I/O."""
    return make_pipeline_options(argv, running_mode=LOCAL_RUNNING_MODE, num_workers=LOCAL_NUM_WORKERS)


def prepare(argv: Sequence[str]) -> tuple[PipelineOptions, PublishPlan]:
    """Parses and validates the arguments and reads the model directory; no Hub call.

    Raises:
        ValueError: bad arguments (quoting the value) or an unusable model directory / template.
        FileNotFoundError: a missing model directory or Space template.
    """
    started = time.time()
    options = make_publish_options(normalize_argv(argv))
    opts = options.view_as(PublishOptions)
    runner = str(options.view_as(StandardOptions).runner)
    _validate(opts, runner, output_dir_option(options))
    FileSystems.set_options(options)
    version = hub.validate_version(opts.rollback or opts.version or default_version(started))
    placeholders = space.parse_placeholders(opts.placeholder or [])
    template = space.load_template(opts.app_dir) if opts.space_repo else None
    model_dir = opts.model_dir
    if model_dir and not _is_remote(model_dir):
        model_dir = os.path.abspath(model_dir)
    output_dir = output_dir_option(options) or (model_dir if model_dir and not _is_remote(model_dir) else os.getcwd())
    files: list[SourceFile] = []
    blessing = None
    if not opts.rollback:
        assert model_dir is not None
        saved_model = FileSystems.join(model_dir, export.SAVED_MODEL_DIR, "saved_model.pb")
        if not FileSystems.exists(saved_model):
            raise FileNotFoundError(f"{saved_model} does not exist; --model_dir must be a training output directory")
        config = _read_json(model_dir, export.CONFIG_NAME)
        metrics = _read_json(model_dir, "metrics.json")
        blessing = model_card.evaluate_blessing(metrics, opts.min_miou)
        files = list_model_files(model_dir)
        names = [f.path_in_repo for f in files] + [CARD_NAME]
        card = model_card.render_model_card(repo_id=opts.model_repo, version=version, config=config,
                                            metrics=metrics, files=names).encode("utf-8")  # fmt: skip
        files = sorted([*files, SourceFile(CARD_NAME, "", len(card), False, card)], key=lambda f: f.path_in_repo)
    plan = PublishPlan(
        model_repo=opts.model_repo,
        space_repo=opts.space_repo,
        version=version,
        endpoint=hub.resolve_endpoint(),
        token_secret=hub.secret_version_name(opts.hf_token_secret) if opts.hf_token_secret else None,
        private=bool(opts.private),
        output_dir=output_dir,
        model_dir=model_dir,
        files=tuple(files),
        blessing=blessing,
        template=template,
        placeholders=placeholders,
        chunk_bytes=max(1, int(opts.chunk_size_mb * 1e6)),
        upload_threads=opts.upload_threads,
        parallel_chunks=opts.parallel_chunks,
        dry_run=bool(opts.publish_dry_run),
        rollback=opts.rollback,
        runner=runner,
        started=started,
        plan_seconds=time.time() - started,
        retry=hub.DEFAULT_RETRY,
    )
    return options, plan


def build_pipeline(argv: Sequence[str]) -> tuple[beam.Pipeline, PublishPlan]:
    """Validates the arguments, reads the model directory and returns the constructed (not yet run) pipeline.

    No network: the repositories are not created (:func:`run` creates them on the driver while it builds the same
    job), so the manifest would record no creation time.

    Raises:
        ValueError, FileNotFoundError: see :func:`prepare`.
    """
    options, plan = prepare(argv)
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | "PublishModel" >> PublishModel(plan)
    return pipeline, plan


def _dry_run(plan: PublishPlan) -> int:
    """Renders the previews and writes the manifest; touches no network."""
    preview = FileSystems.join(plan.output_dir, "publish_preview")
    card = next(f.data for f in plan.files if f.path_in_repo == CARD_NAME)
    doc = _base_manifest(plan, "dry-run")
    doc["files"] = _planned_files(plan)
    doc["totals"] = manifest.totals(doc["files"])
    doc["pipeline"]["chunks"] = len(plan_chunks(plan.files, plan.chunk_bytes))
    if plan.space_repo and plan.template is not None:
        values = space.placeholder_values(model_repo=plan.model_repo, version=plan.version, revision=plan.version,
                                          endpoint=plan.endpoint, extra=plan.placeholders)  # fmt: skip
        files = space.render_template(plan.template, values)
        _warn_leftovers(files)
        space.write_preview(files, FileSystems.join(preview, "space"))
        doc["space"] = _space_entry(plan, files, version=plan.version, revision=plan.version,
                                    preview_dir=FileSystems.join(preview, "space"))  # fmt: skip
    with FileSystems.create(FileSystems.join(preview, CARD_NAME)) as f:
        f.write(card or b"")
    for entry in doc["files"]:
        logger.info("dry run: would upload %-55s %12d bytes%s", entry["path"], entry["size"],
                    "  (LFS)" if entry["lfs_predicted"] else "")  # fmt: skip
    path = _finish_manifest(plan, doc)
    t = doc["totals"]
    print(f"publish (dry run): {plan.model_repo}@{plan.version}: would upload {t['files']} files, "
          f"{t['bytes'] / 1e6:.1f} MB ({t['lfs_files']} LFS); previews in {preview}; manifest {path}")  # CLI summary.
    return EXIT_OK


def _rollback(plan: PublishPlan) -> int:
    """Re-points the Space at an already published version; no model upload, no Beam job."""
    assert plan.space_repo and plan.rollback
    api = hub.make_api(endpoint=plan.endpoint, token=hub.require_token(plan.space_repo))
    doc = _base_manifest(plan, "rolled-back")
    started = time.time()
    hub.ensure_repo(api, repo_id=plan.space_repo, repo_type="space", private=plan.private, policy=plan.retry)
    doc["durations_s"]["create_repos"] = round(time.time() - started, 3)
    _, tags = hub.list_refs(api, repo_id=plan.model_repo, policy=plan.retry)
    sha = tags.get(plan.rollback)
    if sha is None:
        known = ", ".join(sorted(tags)[-5:]) or "none"
        raise hub.VersionNotFoundError(
            f"version {plan.rollback!r} is not a tag of model repo {plan.model_repo} (latest tags: {known}); "
            "publish it first or pick a listed version",
            repo_id=plan.model_repo,
        )
    started = time.time()
    doc["space"] = deploy_space(api, plan, version=plan.rollback, revision=sha)
    doc["durations_s"]["space"] = round(time.time() - started, 3)
    base = plan.endpoint.rstrip("/")
    doc["model"].update(commit_sha=sha, commit_url=f"{base}/{plan.model_repo}/commit/{sha}",
                        version_url=f"{base}/{plan.model_repo}/tree/{plan.rollback}", tag=plan.rollback)  # fmt: skip
    path = _finish_manifest(plan, doc)
    print(f"publish: Space {plan.space_repo} now serves {plan.model_repo}@{plan.rollback} ({sha[:12]}); "
          f"manifest {path}")  # CLI summary.
    return EXIT_OK


def _fail(plan: PublishPlan, line: str, *, status: str = "failed") -> None:
    """Logs the one-line reason and records it in the manifest."""
    logger.error("%s", line)
    doc = _base_manifest(plan, status, reason=line)
    doc["files"] = _planned_files(plan)
    doc["totals"] = manifest.totals(doc["files"])
    try:
        _finish_manifest(plan, doc)
    except OSError as e:  # The reason is already logged; do not hide it behind a write error.
        logger.error("could not write the manifest to %s: %s", plan.output_dir, e)


class _ReportedErrorFilter(logging.Filter):
    """Drops Beam's traceback records of a Hub error: run() reports those as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, hub.HubError):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_REPORTED_ERRORS = _ReportedErrorFilter()


def _configure_logging() -> None:
    """tfrecord_gen's CLI logging, minus one INFO line per HTTP request and Beam's tracebacks of reported errors."""
    configure_logging()
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    for name in ("apache_beam.runners.common", "apache_beam.runners.worker.sdk_worker"):
        logging.getLogger(name).addFilter(_REPORTED_ERRORS)  # The same object: adding it twice is a no-op.


def run(argv: Sequence[str] | None = None) -> int:
    """Publishes (or dry-runs / rolls back); returns the exit code (0 ok, 1 failed, 2 bad input, 3 not blessed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        _help_parser().print_help()
        return EXIT_OK
    _configure_logging()
    try:
        options, plan = prepare(argv)
    except (ValueError, FileNotFoundError) as e:
        logger.error("%s", e)
        return EXIT_BAD_INPUT
    if plan.blessing is not None and not plan.blessing.blessed:
        _fail(plan, f"not blessed, nothing pushed to {plan.model_repo}: {plan.blessing.reason}", status="not-blessed")
        return EXIT_NOT_BLESSED
    if plan.dry_run:
        return _dry_run(plan)
    try:
        if plan.token_secret:
            hub.use_token_secret(plan.token_secret)
        hub.require_token(plan.model_repo)
    except hub.MissingTokenError as e:
        _fail(plan, str(e))
        return EXIT_BAD_INPUT
    try:
        if plan.rollback:
            return _rollback(plan)
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="create-repos") as pool:
            created = pool.submit(create_repos, hub.make_api(endpoint=plan.endpoint), plan)
            pipeline = beam.Pipeline(options=options)  # Meanwhile: the round trip overlaps the job's construction.
            _ = pipeline | "PublishModel" >> PublishModel(plan, created.result)  # Raises its error (401...), if any.
        pipeline.run().wait_until_finish()
    except Exception as e:  # noqa: BLE001 - every failure ends as one line + a failed manifest.
        logger.debug("publish failed", exc_info=True)
        _fail(plan, hub.one_line(e))
        return EXIT_FAILED
    doc = manifest.read_manifest(plan.output_dir)
    t = doc["totals"]
    space_note = f"; Space {doc['space']['repo_id']} -> {doc['model']['commit_sha'][:12]}" if doc["space"] else ""
    print(f"publish: {plan.model_repo}@{plan.version} = {doc['model']['commit_sha'][:12]} "
          f"({'reused' if doc['model']['reused_commit'] else 'new commit'}): {t['files_uploaded']} files / "
          f"{t['bytes_uploaded'] / 1e6:.1f} MB uploaded, {t['files_skipped']} unchanged{space_note}; "
          f"manifest {os.path.join(plan.output_dir, manifest.MANIFEST_NAME)}")  # CLI summary.
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
