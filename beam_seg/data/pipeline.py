"""Stage 1 as one Beam transform: PETS files → validated, encoded records in shards, a dead-letter file, statistics.

``BuildTFRecords`` reads like the job: ``ReadPetsFiles`` → ``PrepareExamples`` (decode, validate, convert, encode,
report) → ``Report`` (one ``CombineFn``: statistics, dead letters, ignored files) → ``ShardCounts`` →
``WriteShards`` (one ``GroupByKey``) → ``Finalize`` (accounting check, renames, reports; ``stats.json`` last).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor
from typing import ClassVar

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from beam_seg import cli, fs
from beam_seg.data import codec, examples, sharding, sources, splits
from beam_seg.data import options as flags
from beam_seg.data import stats as stats_lib
from beam_seg.data.report import DatasetReportFn
from beam_seg.data.stats import SplitStats
from beam_seg.formats import ERRORS_NAME, SCHEMA_NAME, SPLITS, STATS_NAME, shard_pattern

__all__ = [
    "JOB_FAILURES",
    "BuildTFRecords",
    "IncompleteOutputError",
    "JobSettings",
    "TFRecordGenOptions",
    "default_prepare_processes",
    "existing_outputs",
    "failures_of",
    "runs_in_one_process",
    "runs_on_many_workers",
]

logger = logging.getLogger(__name__)

_REPORT = "report"
# The Beam string set through which the job reports why it could not write a complete set (see _FinalizeFn).
JOB_FAILURES = "job_failures"


class TFRecordGenOptions(PipelineOptions):
    """The job's flags (:mod:`beam_seg.data.options`), registered with Beam and read with ``view_as``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        flags.add_flags(parser)


class IncompleteOutputError(RuntimeError):
    """The job would write a set that is not whole: no record at all, or records + errors != listed images.

    Found before anything in the output directory is touched, so an earlier complete set stays as it was.
    """


# Image names per batch and pool process: enough that a process rarely waits at a batch's end.
_BATCH_PER_PROCESS = 128
# Seconds between two progress lines of the heavy step.
PROGRESS_SECONDS = 10.0


class _Progress:
    """Records prepared in this process, logged every :data:`PROGRESS_SECONDS` (one line per process, not thread).

    Shared by the step's DoFn instances of one job in one process (the local runner runs one per thread), through
    :meth:`for_job`.
    """

    _lock = threading.Lock()
    _jobs: ClassVar[dict[str, _Progress]] = {}

    def __init__(self, listed: int | None, whole_job: bool) -> None:
        self._listed = listed
        self._whole_job = whole_job
        self._count = 0
        self._started = self._logged = time.monotonic()

    @classmethod
    def for_job(cls, job: str, listed: int | None, whole_job: bool) -> _Progress:
        """The tracker of ``job`` in this process (created by its first DoFn instance)."""
        with cls._lock:
            if job not in cls._jobs:
                cls._jobs[job] = cls(listed, whole_job)
            return cls._jobs[job]

    def add(self) -> None:
        """Counts one record; logs a progress line when one is due."""
        now = time.monotonic()
        with self._lock:
            self._count += 1
            if now - self._logged < PROGRESS_SECONDS:
                return
            self._logged, count = now, self._count
        rate = count / max(now - self._started, 1e-9)
        if self._whole_job and self._listed:
            logger.info("prepared %d of %d listed images (%.0f/s)", count, self._listed, rate)
        else:
            logger.info("prepared %d images in this worker process (%.0f/s)", count, rate)


class _PrepareExamplesFn(beam.DoFn):
    """Turns batches of image names' joined files into records, dead-letter entries and ignored files.

    The work is :func:`~beam_seg.data.examples.prepare_group`, run by a pool of ``processes`` processes that this
    DoFn starts in ``setup()`` (or in this process when ``processes`` is 1, as on Dataflow, which runs a worker
    process per core already). Main output: ``(split, (shard key, name, serialized example))``; tagged output
    ``report``: the items :class:`~beam_seg.data.report.DatasetReportFn` combines.
    """

    def __init__(
        self,
        settings: examples.PrepareSettings,
        *,
        processes: int = 1,
        progress: tuple[str, int | None, bool] | None = None,
    ) -> None:
        self._settings = settings
        self._processes = processes
        self._progress_key = progress
        self._images_read = beam.metrics.Metrics.counter("beam_seg", "images_read")
        self._records_written = beam.metrics.Metrics.counter("beam_seg", "records_written")
        self._images_failed = beam.metrics.Metrics.counter("beam_seg", "images_failed")
        self._files_ignored = beam.metrics.Metrics.counter("beam_seg", "files_ignored")
        self._pool: Executor | None = None
        self._progress: _Progress | None = None

    def setup(self) -> None:
        """Starts the pool (and lets PIL open images up to ``max_pixels`` here too)."""
        self._pool = examples.make_pool(self._processes, self._settings.max_pixels)
        if self._progress_key is not None:
            self._progress = _Progress.for_job(*self._progress_key)

    def process(self, batch: list[tuple[str, dict[str, Iterable]]]) -> Iterator:
        """Prepares one batch; yields its records and report items."""
        assert self._pool is not None
        # Plain lists: a CoGroupByKey's lazy iterables do not pickle to the pool.
        groups = [(name, {"listing": list(g["listing"]), "files": list(g["files"])}) for name, g in batch]
        work = functools.partial(examples.prepare_group, settings=self._settings)
        for prepared in self._pool.map(work, groups, chunksize=examples.chunk_size(groups, self._processes)):
            self._images_read.inc(prepared.images_read)
            for item in prepared.report:
                if item[0] == stats_lib.ERROR:
                    self._images_failed.inc()
                elif item[0] == stats_lib.IGNORED:
                    self._files_ignored.inc()
                yield beam.pvalue.TaggedOutput(_REPORT, item)
            if prepared.record is not None:
                self._records_written.inc()
                if self._progress is not None:
                    self._progress.add()
                yield prepared.record

    def teardown(self) -> None:
        """Stops the pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class _FinalizeFn(beam.DoFn):
    """Runs once, after every shard is written: checks the accounting, renames shards into place, writes reports.

    A job that cannot produce a complete set (no records, an accounting mismatch, an unreadable archive, a shard or
    report that cannot be written) does not raise: Finalize adds why to the ``beam_seg:job_failures`` string set and
    emits nothing, the driver reports the reason in one line, and no runner prints tracebacks or retries a failure
    that a retry cannot mend. Nothing is moved into the output directory then, except when a write fails midway
    through the renames; ``stats.json`` is then missing, so the directory does not look complete.
    """

    def __init__(
        self,
        *,
        output_dir: str,
        temp_dir: str,
        listed: int | None,
        config: dict[str, object],
        dataset: dict[str, object],
    ) -> None:
        self._output_dir = output_dir
        self._temp_dir = temp_dir
        self._listed = listed
        self._config = config
        self._dataset = dataset
        self._failures = beam.metrics.Metrics.string_set("beam_seg", JOB_FAILURES)

    def process(self, unused_impulse: bytes, report: dict | None, shards: list[dict]) -> Iterator[dict]:
        if report is None:  # Nothing at all was read: the report of an empty input.
            empty = DatasetReportFn()
            report = empty.extract_output(empty.create_accumulator())
        stats = self._stats(report, [s for s in shards if "error" not in s])
        failures = failures_of(report, shards, stats)
        if failures:
            fs.delete([self._temp_dir])
            for failure in failures:
                self._failures.add(failure)
            return
        try:
            self._publish(report["errors"], shards)
            fs.write_bytes(fs.join(self._output_dir, STATS_NAME), json.dumps(stats, indent=2, sort_keys=True).encode())
        except OSError as e:  # The temporary folder may still hold shards: the driver removes it.
            self._failures.add(f"cannot finish the TFRecord set in {self._output_dir}: {e}")
            return
        fs.delete([self._temp_dir])
        yield stats

    def _stats(self, report: dict, shards: list[dict]) -> dict[str, object]:
        """The ``stats.json`` contents."""
        split_stats, errors = report["splits"], report["errors"]
        records = sum(s["num_examples"] for s in split_stats.values())
        by_reason: dict[str, int] = {}
        for e in errors:
            by_reason[e["reason"]] = by_reason.get(e["reason"], 0) + 1
        return {
            "splits": {split: split_stats.get(split, SplitStats().summary()) for split in SPLITS},
            "shards": {split: sorted(s["name"] for s in shards if s["split"] == split) for split in SPLITS},
            "listed": self._listed if self._listed is not None else records + len(errors),
            "records": records,
            "errors": len(errors),
            "errors_by_reason": dict(sorted(by_reason.items())),
            "ignored_files": dict(sorted(report["ignored"].items())),
            "dataset": self._dataset,
            "config": self._config,
        }

    def _publish(self, errors: list[dict], shards: list[dict]) -> None:
        """Moves the new set into place; the previous set's ``stats.json`` goes first, so no mix looks complete."""
        out = self._output_dir
        staged = {
            ERRORS_NAME: "".join(json.dumps(e, sort_keys=True) + "\n" for e in errors).encode("utf-8"),
            SCHEMA_NAME: str(codec.make_schema()).encode("utf-8"),
        }
        for name, data in staged.items():
            with FileSystems.create(FileSystems.join(self._temp_dir, name)) as f:
                f.write(data)
        moves = [(s["temp_path"], FileSystems.join(out, s["name"])) for s in shards]
        moves += [(FileSystems.join(self._temp_dir, name), FileSystems.join(out, name)) for name in staged]
        # The previous set's files that the new set does not replace (renames overwrite the others).
        new_paths = {dst for _, dst in moves}
        stale = [path for path in existing_outputs(out) if path not in new_paths]
        if stale:
            logger.info("removing %d files of the previous TFRecord set in %s", len(stale), out)
            stats_path = FileSystems.join(out, STATS_NAME)
            for group in ([p for p in stale if p == stats_path], [p for p in stale if p != stats_path]):
                if group:
                    FileSystems.delete(group)
        # A retried bundle finds some files already moved: move only what is still in the temp dir.
        moves = [(src, dst) for src, dst in moves if FileSystems.exists(src)]
        if moves:
            FileSystems.rename([src for src, _ in moves], [dst for _, dst in moves])


def failures_of(report: dict, shards: list[dict], stats: dict[str, object]) -> list[str]:
    """Why the job cannot write a complete set (unreadable archives, unwritten shards, incomplete accounting)."""
    failures = [*report["failures"], *sorted(s["error"] for s in shards if "error" in s)]
    if not failures:
        try:
            _check_complete(stats, report["errors"])
        except IncompleteOutputError as e:
            failures.append(str(e))
    return failures


def _check_complete(stats: dict[str, object], errors: list[dict]) -> None:
    """Raises :class:`IncompleteOutputError` unless the set has records and accounts for every listed image."""
    records, failed, listed = stats["records"], stats["errors"], stats["listed"]
    if records == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in stats["errors_by_reason"].items()) or "no image files found"
        first = f"; first: {errors[0]['name']}: {errors[0]['reason']} ({errors[0]['detail']})" if errors else ""
        raise IncompleteOutputError(
            f"no records: none of the {listed} listed images became a record ({reasons}){first}; "
            "nothing was written to the output directory"
        )
    if records + failed != listed:
        raise IncompleteOutputError(
            f"accounting mismatch: {records} records + {failed} errors != {listed} listed images; "
            "nothing was written to the output directory (please report this as a bug)"
        )


def runs_in_one_process(options: PipelineOptions) -> bool:
    """Whether every worker runs in the driver's process: a local runner not in multi-processing mode."""
    runner = options.view_as(StandardOptions).runner
    return cli.is_local_runner(runner or cli.LOCAL_RUNNER) and (
        options.view_as(DirectOptions).direct_running_mode != "multi_processing"
    )


def default_prepare_processes(options: PipelineOptions) -> int:
    """Pool processes per worker when ``--prepare_processes`` is 0.

    The cores, shared by the workers of a local runner that keeps them in this process; 1 elsewhere (the
    multi-processing mode and Dataflow run a worker process per core).
    """
    if not runs_in_one_process(options):
        return 1
    workers = max(1, options.view_as(DirectOptions).direct_num_workers or 1)
    return max(1, (os.cpu_count() or 1) // workers)


def runs_on_many_workers(options: PipelineOptions) -> bool:
    """False only for the local default runner given a single worker, where redistributing is pure overhead."""
    runner = options.view_as(StandardOptions).runner
    return runner not in (None, cli.LOCAL_RUNNER) or (options.view_as(DirectOptions).direct_num_workers or 1) > 1


def existing_outputs(output_dir: str) -> list[str]:
    """The files of a TFRecord set already in ``output_dir`` (shards, reports), sorted."""
    patterns = [FileSystems.join(output_dir, shard_pattern(split)) for split in SPLITS]
    patterns += [FileSystems.join(output_dir, name) for name in ("errors-*.jsonl", STATS_NAME, SCHEMA_NAME)]
    return sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)


def _shard_counts(report: dict, target_bytes: int, fixed: int) -> dict[str, int]:
    return {
        split: splits.num_shards_for(s["record_bytes"], target_bytes, fixed) for split, s in report["splits"].items()
    }


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """The job's validated settings, as :class:`BuildTFRecords` needs them (no Beam options object).

    Attributes:
        resize: Square side of stored images and masks, or ``None`` to keep the source size and bytes.
        max_pixels: Largest image or trimap accepted, in pixels (larger ones are dead letters).
        val_fraction: Share of trainval carved out as val.
        split_seed: Seed of the stable hashes (val membership, shard and order).
        target_shard_bytes: Shard size target.
        shards_per_split: Fixed shard count per split (0: from ``target_shard_bytes``).
        redistribute: Spread the file groups over workers before the heavy step (see :class:`ReadPetsFiles`).
        one_process: Every worker runs in the driver's process (the local runner's in-memory and multi-threading
            modes), so a progress line can count the whole job.
        prepare_processes: Processes each worker's heavy step runs in (a pool; 1: the worker's own process).
    """

    resize: int | None
    max_pixels: int
    val_fraction: float
    split_seed: int
    target_shard_bytes: int
    shards_per_split: int
    redistribute: bool
    one_process: bool = False
    prepare_processes: int = 1


class BuildTFRecords(beam.PTransform):
    """The whole job as one transform: PBegin → a single ``stats`` dict once the output is final."""

    def __init__(self, source: sources.PetsInput, settings: JobSettings, *, output_dir: str, temp_dir: str) -> None:
        super().__init__()
        self._source = source
        self._settings = settings
        self._output_dir = output_dir
        self._temp_dir = temp_dir

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        """PBegin → the ``stats.json`` contents, once the set is in place."""
        settings, source = self._settings, self._source
        # (name, {"listing": [(split, label, species)], "files": [(kind, payload)]})
        files = pbegin | "ReadPetsFiles" >> sources.ReadPetsFiles(source, redistribute=settings.redistribute)
        # records: (split, (shard key, name, serialized example)); report: statistics, dead letters, ignored files
        batch = _BATCH_PER_PROCESS * settings.prepare_processes
        prepared = (
            files
            | "Batch" >> beam.BatchElements(min_batch_size=batch, max_batch_size=batch)
            | "PrepareExamples"
            >> beam.ParDo(
                _PrepareExamplesFn(
                    examples.PrepareSettings(
                        has_lists=source.listing is not None,
                        resize=settings.resize,
                        max_pixels=settings.max_pixels,
                        val_fraction=settings.val_fraction,
                        seed=settings.split_seed,
                    ),
                    processes=settings.prepare_processes,
                    progress=(
                        self._temp_dir,
                        len(source.listing) if source.listing is not None else None,
                        settings.one_process,
                    ),
                )
            ).with_outputs(_REPORT, main="records")
        )
        # One dict. Without defaults: Finalize substitutes the empty report itself, which spares the three steps
        # CombineGlobally adds to inject one.
        report = prepared[_REPORT] | "Report" >> beam.CombineGlobally(DatasetReportFn()).without_defaults()
        # {split: shard count}
        num_shards = report | "ShardCounts" >> beam.Map(
            _shard_counts, settings.target_shard_bytes, settings.shards_per_split
        )
        # One dict per shard written to the temp dir.
        shards = prepared.records | "WriteShards" >> sharding.WriteShards(
            self._temp_dir, beam.pvalue.AsSingleton(num_shards)
        )
        # Side inputs are complete before a consumer runs, so Finalize sees every shard written.
        finalize = _FinalizeFn(
            output_dir=self._output_dir,
            temp_dir=self._temp_dir,
            listed=len(source.listing) if source.listing is not None else None,
            config={
                "input": source.root,
                "input_layout": source.layout,
                "resize": settings.resize,
                "max_pixels": settings.max_pixels,
                "val_fraction": settings.val_fraction,
                "split_seed": settings.split_seed,
            },
            dataset=source.dataset,
        )
        return (
            pbegin
            | "FinalizeAfterAll" >> beam.Impulse()
            | "Finalize"
            >> beam.ParDo(
                finalize,
                report=beam.pvalue.AsSingleton(report, default_value=None),
                shards=beam.pvalue.AsList(shards),
            )
        )
