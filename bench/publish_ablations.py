"""The speed-only pieces of ``beam_seg.publish`` that ``bench/publish.py --ablate`` removes, one at a time.

Each variant is a patch of module attributes applied only around that variant's publish calls (restored on exit:
``unittest.mock.patch.object``), so the product carries no bench toggle. Each patch also feeds a :class:`Probe`
(what the ablated code did), and the variant's check proves after every measured run that the ablated path really
ran: a variant whose patch did not take effect stops the bench instead of measuring the shipped code twice.

The variants (:func:`variants`) are the optimisations the product keeps: ``own_lfs_transfer``, ``send_block``,
``hash_semaphore``, ``no_reshuffle_local``, ``known_sha256``, ``largest_first``, ``version_refs_parallel``,
``shared_pools``, ``gather_by_key``, ``read_ahead``, ``repos_overlap`` and ``parallel_parts`` (multipart transfers
only). Those found not to pay were removed from the product, and their variants from here (bench/README.md lists
them with their measured effect).

The upload thread pools belong to the worker process (``uploads._UPLOAD_POOLS``, Beam's ``Shared``), and Beam keeps
only the most recently acquired shared object alive. So every variant, the baseline included, gets its own cache
(:class:`VariantPools`, swapped in by :meth:`Variant.applied`) that keeps its pools between its runs, as the only
publisher of a process would: no variant reuses another's pools (a variant that builds them differently does build
its own), and none pays a thread start-up per run that the product would not.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import os
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from unittest import mock

import apache_beam as beam
from apache_beam.utils import shared

from beam_seg.hub import commits, files, lfs, versions
from beam_seg.publish import job, pipeline, uploads

__all__ = ["Probe", "Variant", "VariantPools", "baseline", "check_own_pools", "select", "variants"]


class Probe:
    """What one variant's patched code did, over all its runs (thread-safe counters)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()

    def hit(self, key: str, n: int = 1) -> None:
        """Counts ``n`` occurrences of ``key``."""
        with self._lock:
            self.counts[key] += n

    def snapshot(self) -> collections.Counter[str]:
        """A copy of the counters."""
        with self._lock:
            return collections.Counter(self.counts)


class VariantPools(shared.Shared):
    """A variant's own cache of upload pools (``uploads._UPLOAD_POOLS`` while it runs), kept between its runs.

    Beam's per-process map keeps only the last acquired object alive: with several variants in one process, each
    acquire would let the others' pools be collected. This handle keeps its own pools alive instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pools: Any = None

    def acquire(self, constructor_fn: Callable[[], Any], tag: Any = None) -> Any:
        """Beam's acquire, keeping a reference to the result."""
        self.pools = super().acquire(constructor_fn, tag)
        return self.pools


Patch = Callable[[Probe], contextlib.AbstractContextManager[Any]]
# (this run's counters, the variant's probe, the variant's upload pools) -> why the ablation did not take effect.
Check = Callable[[collections.Counter[str], Probe, Any], "str | None"]


@dataclasses.dataclass
class Variant:
    """The shipped publish with one piece removed (or nothing, for the baseline).

    Attributes:
        name: Short name (``--ablate`` takes it).
        ablated: How the piece is removed, in one line.
        patch: Builds the patch's context manager, feeding the probe.
        check: After each measured run: ``None`` if the ablated path ran, else why not.
        needs: A condition of the bench's settings for the piece to matter at all (``None``: always).
    """

    name: str
    ablated: str
    patch: Patch
    check: Check
    needs: str | None = None
    probe: Probe = dataclasses.field(default_factory=Probe)
    cache: VariantPools = dataclasses.field(default_factory=VariantPools)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The variant's own pool cache and its patch, for one publish; everything restored on exit."""
        with mock.patch.object(uploads, "_UPLOAD_POOLS", self.cache), self.patch(self.probe):
            yield

    def verify(self, before: collections.Counter[str]) -> None:
        """Raises unless the last run (counters ``before`` it) took the ablated path."""
        after = self.probe.snapshot()
        this_run = collections.Counter({k: after[k] - before.get(k, 0) for k in after})
        reason = self.check(this_run, self.probe, self.cache.pools)
        if reason:
            raise RuntimeError(f"ablation {self.name!r} did not take effect: {reason}")


@contextlib.contextmanager
def _patches(*patches: tuple[Any, str, Any]) -> Iterator[None]:
    """Sets ``(owner, attribute, value)`` for the duration of the block."""
    with contextlib.ExitStack() as stack:
        for owner, name, value in patches:
            stack.enter_context(mock.patch.object(owner, name, value))
        yield


# --- baseline ------------------------------------------------------------------------------------------------------


def _baseline_check(run: collections.Counter[str], probe: Probe, pools: Any) -> str | None:
    if pools is None:
        return "no upload pools were acquired through the variant's cache"
    if pools.transfers is None or not isinstance(pools.hashing, threading.BoundedSemaphore):
        return f"the baseline's pools are not the shipped ones: {pools}"
    return None


def baseline() -> Variant:
    """The shipped publish, with its own pool cache like every variant."""
    return Variant("baseline", "nothing (the shipped publish)", lambda probe: contextlib.nullcontext(), _baseline_check)


# --- 1. own_lfs_transfer ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client_lfs_transfer(probe: Probe) -> Iterator[None]:
    """Each chunk's LFS content sent by ``HfApi.preupload_lfs_files`` (its own batch call, threads and PUTs)."""
    preupload, own = uploads.preupload_files, lfs.upload_lfs_files

    def client_preupload(*args: Any, **kwargs: Any) -> Any:
        probe.hit("chunks sent by HfApi.preupload_lfs_files")
        return preupload(*args, **kwargs)

    def own_upload(*args: Any, **kwargs: Any) -> Any:
        probe.hit("chunks sent by hub.lfs.upload_lfs_files")
        return own(*args, **kwargs)

    # The path uploads takes when the client would use Xet; with HF_HUB_DISABLE_XET=1 the client speaks plain LFS.
    with _patches(
        (lfs, "xet_enabled", lambda: True),
        (uploads, "preupload_files", client_preupload),
        (lfs, "upload_lfs_files", own_upload),
    ):
        yield


def _client_lfs_transfer_check(run: collections.Counter[str], probe: Probe, pools: Any) -> str | None:
    if run["chunks sent by hub.lfs.upload_lfs_files"] or not run["chunks sent by HfApi.preupload_lfs_files"]:
        return f"chunks still sent by our own transfer ({dict(run)})"
    return "the variant's pools have a transfer pool" if pools is None or pools.transfers is not None else None


# --- 2. send_block ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client_reads_body(probe: Probe) -> Iterator[None]:
    """Request bodies the HTTP client reads itself, 64 KiB at a time (shipped: it iterates our 1 MiB blocks)."""

    class ReadableFilePart(lfs._FilePart):
        """The shipped request body plus ``read``: the HTTP client then reads it 64 KiB at a time."""

        def read(self, size: int = -1) -> bytes:
            if self._position == 0:
                probe.hit("bodies read by the client")  # Once per body: the probe stays off the send path.
            remaining = self._length - self._position
            wanted = remaining if size is None or size < 0 else min(size, remaining)
            block = os.pread(self._file.fileno(), wanted, self._start + self._position) if wanted > 0 else b""
            self._position += len(block)
            return block

        def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
            probe.hit("1 MiB block iterations")
            return super().__iter__()

    with _patches((lfs, "_FilePart", ReadableFilePart)):
        yield


# --- 3. hash_semaphore ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _unlimited_hashing(probe: Probe) -> Iterator[None]:
    """Upload pools whose hashing "semaphore" lets every chunk hash at once."""
    original = uploads._UploadPools

    def pools_without_limit(chunks: Any, transfers: Any, hashing: Any) -> Any:
        probe.hit("pools built without a hashing limit")
        return original(chunks, transfers, contextlib.nullcontext())  # type: ignore[arg-type]

    with _patches((uploads, "_UploadPools", pools_without_limit)):
        yield


def _unlimited_hashing_check(run: collections.Counter[str], probe: Probe, pools: Any) -> str | None:
    if pools is None or not isinstance(pools.hashing, contextlib.nullcontext):
        return f"the variant's pools still limit hashing ({None if pools is None else pools.hashing})"
    return None


# --- 4. no_reshuffle_local --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _always_reshuffle(probe: Probe) -> Iterator[None]:
    """``GroupIntoChunks`` spreads the chunks with a ``Reshuffle`` on the local runner too."""

    class ReshufflingGroupIntoChunks(pipeline.GroupIntoChunks):
        def __init__(self, items: Sequence[Any], chunk_bytes: int, *, spread: bool = True) -> None:
            super().__init__(items, chunk_bytes, spread=True)
            if len(self._chunks) > 1:
                probe.hit("chunk groups reshuffled")

    with _patches((pipeline, "GroupIntoChunks", ReshufflingGroupIntoChunks)):
        yield


# --- 5. known_sha256 --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _client_hashes_again(probe: Probe) -> Iterator[None]:
    """``CommitOperationAdd`` s made without the sha256 the upload step computed: the client hashes each file again.

    Patched where ``commits`` looks the name up (it imports ``lfs.hashed_addition``): its preupload and its commits.
    """

    def addition(f: files.LocalFile, body: str | bytes) -> Any:
        from huggingface_hub import CommitOperationAdd

        if isinstance(body, str):
            probe.hit("additions hashed again by the client")
        return CommitOperationAdd(f.path_in_repo, body)  # Its sha256 is computed (a full read) when first used.

    with _patches((commits, "hashed_addition", addition)):
        yield


# --- 6. largest_first -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _chunks_in_random_order(probe: Probe) -> Iterator[None]:
    """The planned chunks in another order than largest first."""
    original = pipeline.plan_chunks

    def plan_chunks(items: Any, chunk_bytes: int) -> list[list[Any]]:
        chunks = original(items, chunk_bytes)
        # Not the listing's (path) order: for the bench's model it is the same as largest first.
        rng = random.Random(probe.counts["chunk plans"])  # Another order in every run, none of them the shipped one.
        probe.hit("chunk plans")
        reordered = list(chunks)
        while len(chunks) > 1 and all(a is b for a, b in zip(reordered, chunks, strict=True)):
            rng.shuffle(reordered)
        if len(chunks) > 1:
            probe.hit("chunk plans reordered")
        return reordered

    with _patches((pipeline, "plan_chunks", plan_chunks)):
        yield


# --- 7. version_refs_parallel: concurrent ref calls of the commit step ------------------------------------------------


def _serialized(probe: Probe, key: str, *targets: tuple[Any, str]) -> contextlib.AbstractContextManager[None]:
    """Patches each ``(module, function)`` so that these functions run one at a time (one shared lock)."""
    lock = threading.Lock()

    def serial(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                probe.hit(key)
                return function(*args, **kwargs)

        return call

    return _patches(*((module, name, serial(getattr(module, name))) for module, name in targets))


# --- 8. shared_pools --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _pools_per_job(probe: Probe) -> Iterator[None]:
    """Upload pools of the job rather than of the process."""
    cache = VariantPools()  # Fresh for every publish: the job builds its own pools (and starts their threads)...
    with _patches((uploads, "_UPLOAD_POOLS", cache)):
        yield
    if cache.pools is not None:  # ...and shuts them down when it is done, as a DoFn's teardown would.
        probe.hit("jobs with their own pools")
        for pool in (cache.pools.chunks, cache.pools.transfers):
            if pool is not None:
                pool.shutdown(wait=False)


# --- 9. gather_by_key -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _gather_with_to_list(probe: Probe) -> Iterator[None]:
    """The fan-in through ``ToList`` (a global combine with its default-value steps) instead of one GroupByKey."""

    class GatherWithToList(beam.PTransform):
        """All elements as one ``(None, elements)`` group through ``ToList``'s global combine."""

        def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
            probe.hit("gathers through ToList")
            return pcoll | "ToList" >> beam.combiners.ToList() | "Key" >> beam.Map(lambda elements: (None, elements))

    with _patches((pipeline, "_Gather", GatherWithToList)):
        yield


# --- 10. read_ahead: the commit step's reads at once ------------------------------------------------------------------


@contextlib.contextmanager
def _reads_in_turn(probe: Probe) -> Iterator[None]:
    """The commit step reads the refs, then the head, then lets ``create_commit`` preupload (no read-ahead)."""
    original = versions.publish_version

    def publish_version(*args: Any, **kwargs: Any) -> Any:
        probe.hit("versions published without read-ahead")
        return original(*args, **{**kwargs, "read_ahead": False})

    with (
        _serialized(probe, "reads in turn", (versions, "list_refs"), (versions, "read_head")),
        _patches((versions, "publish_version", publish_version)),
    ):
        yield


# --- 11. repos_overlap: the driver's Hub calls during the job's construction ------------------------------------------


@contextlib.contextmanager
def _hub_then_job(probe: Probe) -> Iterator[None]:
    """The driver makes its Hub calls (create the repos, check the version), then builds the job."""

    def build_job(options: Any, plan: Any) -> beam.Pipeline:
        probe.hit("jobs built after the Hub calls")
        created = job._prepare_hub(plan)
        p = beam.Pipeline(options=options)
        _ = p | "PublishModel" >> pipeline.PublishModel(plan, lambda: created)
        return p

    with _patches((job, "_build_job", build_job)):
        yield


# --- 12. parallel_parts -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _parts_in_sequence(probe: Probe) -> Iterator[None]:
    """The parts of one multipart file sent one at a time (a lock per file), as the client sends them."""
    original = lfs._put_part
    locks: collections.defaultdict[str, threading.Lock] = collections.defaultdict(threading.Lock)
    guard = threading.Lock()

    def put_part(body: str | bytes, action: Any, index: int) -> str:
        with guard:
            lock = locks[action.file.sha256]
        with lock:  # One part of a file at a time, as the client sends them.
            probe.hit("parts sent one at a time")
            return original(body, action, index)

    with _patches((lfs, "_put_part", put_part)):
        yield


def _counted(key: str, *, per_run: int = 1) -> Check:
    """A check that this run counted at least ``per_run`` of ``key``."""

    def check(run: collections.Counter[str], probe: Probe, pools: Any) -> str | None:
        return None if run[key] >= per_run else f"{key!r}: {run[key]} in this run, expected >= {per_run}"

    return check


def _only(key: str, forbidden: str) -> Check:
    """A check that this run counted ``key`` and no ``forbidden``."""

    def check(run: collections.Counter[str], probe: Probe, pools: Any) -> str | None:
        if not run[key] or run[forbidden]:
            return f"expected {key!r} and no {forbidden!r}, got {dict(run)}"
        return None

    return check


def variants() -> list[Variant]:
    """Every ablation still measured (the optimisations the product keeps), fresh probes and caches."""
    return [
        Variant(
            "own_lfs_transfer",
            "lfs.xet_enabled -> True: uploads sends each chunk with HfApi.preupload_lfs_files "
            "(commits.preupload_files; plain LFS, HF_HUB_DISABLE_XET=1) and builds no transfer pool",
            _client_lfs_transfer,
            _client_lfs_transfer_check,
        ),
        Variant(
            "send_block",
            "lfs._FilePart + read(): the HTTP client reads the body 64 KiB at a time (shipped: 1 MiB iteration)",
            _client_reads_body,
            _only("bodies read by the client", "1 MiB block iterations"),
        ),
        Variant(
            "hash_semaphore",
            "uploads._UploadPools(hashing=nullcontext()): every chunk hashes at once",
            _unlimited_hashing,
            _unlimited_hashing_check,
        ),
        Variant(
            "no_reshuffle_local",
            "pipeline.GroupIntoChunks(spread=True) on the local runner: the chunks go through a Reshuffle",
            _always_reshuffle,
            _counted("chunk groups reshuffled"),
        ),
        Variant(
            "known_sha256",
            "commits.hashed_addition without the known sha256: the client re-reads and hashes each LFS file it commits",
            _client_hashes_again,
            _counted("additions hashed again by the client"),
        ),
        Variant(
            "largest_first",
            "pipeline.plan_chunks: the same chunks in a random order, another in every run (shipped: largest first)",
            _chunks_in_random_order,
            _counted("chunk plans reordered"),
        ),
        Variant(
            "version_refs_parallel",
            "versions: create_branch, create_tag and the LFS listing one at a time (shipped: concurrently)",
            lambda probe: _serialized(
                probe, "serialized ref calls", (versions, "call_with_retry"), (versions, "lfs_paths")
            ),
            _counted("serialized ref calls", per_run=3),
        ),
        Variant(
            "shared_pools",
            "uploads._UPLOAD_POOLS fresh for every publish: each job builds its own pools and starts their threads",
            _pools_per_job,
            _counted("jobs with their own pools"),
        ),
        Variant(
            "gather_by_key",
            "pipeline._Gather -> beam.combiners.ToList() + key (shipped: Map to (None, x) + GroupByKey)",
            _gather_with_to_list,
            _counted("gathers through ToList"),
        ),
        Variant(
            "read_ahead",
            "versions.publish_version(read_ahead=False), list_refs then read_head: the commit step's reads in turn "
            "(shipped: refs, head and the client's preupload at once)",
            _reads_in_turn,
            _counted("versions published without read-ahead"),
        ),
        Variant(
            "repos_overlap",
            "job._build_job: the driver's Hub calls first, then the job's construction (shipped: at the same time)",
            _hub_then_job,
            _counted("jobs built after the Hub calls"),
        ),
        Variant(
            "parallel_parts",
            "lfs._put_part one part of a file at a time (shipped: a file's parts concurrently)",
            _parts_in_sequence,
            _counted("parts sent one at a time"),
            needs="--multipart_mb > 0 (the server asks for multipart transfers)",
        ),
    ]


def select(names: str, *, multipart: bool) -> list[Variant]:
    """The variants named in ``names`` (comma-separated, or ``all``), after the baseline.

    ``all`` leaves out the variants whose piece cannot matter with these settings (``parallel_parts`` without
    multipart transfers); naming such a variant explicitly is an error.

    Raises:
        ValueError: an unknown name, or a variant that cannot be exercised.
    """
    known = {v.name: v for v in variants()}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if wanted == ["all"]:
        return [baseline(), *(v for v in known.values() if v.needs is None or multipart)]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown ablation(s) {', '.join(unknown)}; known: all, {', '.join(known)}")
    for name in wanted:
        if known[name].needs is not None and not multipart:
            raise ValueError(f"ablation {name!r} needs {known[name].needs}")
    return [baseline(), *(known[n] for n in dict.fromkeys(wanted))]


def check_own_pools(ran: Sequence[Variant]) -> None:
    """Raises if two variants ran on the same upload pools (each must use, and build, its own).

    Raises:
        RuntimeError: naming both variants.
    """
    owners: dict[int, str] = {}
    for variant in ran:
        if variant.cache.pools is not None:
            owner = owners.setdefault(id(variant.cache.pools), variant.name)
            if owner != variant.name:
                raise RuntimeError(f"variants {owner!r} and {variant.name!r} ran on the same upload pools")
