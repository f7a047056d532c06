"""Stage 1's driver: ``python -m beam_seg.tfrecord_gen --input DIR --output_dir DIR [--resize 128] [Beam options]``.

Reads the extracted PETS layout or the two official archives (local or ``gs://``), pairs each listed image with its
trimap, validates and converts it, and writes ``{train,val,test}-SSSSS-of-NNNNN.tfrecord`` (record format:
:mod:`beam_seg.data.codec`), ``errors-00000-of-00001.jsonl`` (one line per listed image that could not become a
record), ``schema.pbtxt`` and ``stats.json``, last. Every listed image ends up in exactly one of records or errors.

Exit codes: 0 ok (also a Dataflow ``--dry_run``), 1 the job failed (no complete set was written; one line says why:
no records, a truncated archive, a full disk), 2 bad flags or input.

A failed run removes its temporary folder; a run that starts removes the ones that killed runs left behind.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beam_seg import cli, fs
from beam_seg.data import options as flags
from beam_seg.formats import SPLITS, STATS_NAME

if TYPE_CHECKING:
    import apache_beam as beam

__all__ = [
    "OutputExistsError",
    "Outputs",
    "build_pipeline",
    "job_failures",
    "remove_stale_temporaries",
    "run",
    "summarize",
]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1


class OutputExistsError(FileExistsError):
    """``--output_dir`` already holds a TFRecord set and ``--overwrite`` was not given."""


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Where a built job writes: the output directory, and its own temporary folder inside it."""

    output_dir: str
    temp_dir: str


def build_pipeline(argv: Sequence[str]) -> tuple[beam.Pipeline, Outputs]:
    """Validates flags and input; returns the constructed (not yet run) pipeline and where it writes.

    Touches nothing in the output directory.

    Raises:
        cli.UsageError: on an unknown flag or a bad value.
        ValueError: on input that is not a PETS dataset (:class:`~beam_seg.data.sources.InputError`, list files).
        OutputExistsError: if the output directory holds a TFRecord set and ``--overwrite`` is off.
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from beam_seg.data import pipeline, sources

    argv = list(argv)
    options = cli.parse_pipeline_options(argv)
    cli.apply_local_runner_defaults(
        options, argv, running_mode=flags.LOCAL_RUNNING_MODE, num_workers=flags.LOCAL_NUM_WORKERS
    )
    opts = options.view_as(pipeline.TFRecordGenOptions)
    flags.check_values(opts)
    FileSystems.set_options(options)  # Construction-time reads use the job's GCS settings (e.g. --no_auth).
    source = sources.find_input(opts.input, opts.input_layout, allow_missing_split_list=opts.allow_missing_split_list)
    existing = pipeline.existing_outputs(opts.output_dir)
    if existing and not opts.overwrite:
        raise OutputExistsError(
            f"--output_dir {opts.output_dir!r} already holds a TFRecord set ({existing[0]} …); "
            "pass --overwrite to replace it or choose another directory"
        )
    settings = pipeline.JobSettings(
        resize=opts.resize,
        max_pixels=opts.max_pixels,
        val_fraction=opts.val_fraction,
        split_seed=opts.split_seed,
        target_shard_bytes=int(opts.target_shard_mb * 1e6),
        shards_per_split=opts.shards_per_split,
        redistribute=pipeline.runs_on_many_workers(options),
        one_process=pipeline.runs_in_one_process(options),
        prepare_processes=opts.prepare_processes or pipeline.default_prepare_processes(options),
    )
    temp_dir = fs.join(opts.output_dir, f".tmp-{uuid.uuid4().hex}")
    p = beam.Pipeline(options=options)
    _ = p | "BuildTFRecords" >> pipeline.BuildTFRecords(source, settings, output_dir=opts.output_dir, temp_dir=temp_dir)
    return p, Outputs(output_dir=opts.output_dir, temp_dir=temp_dir)


def remove_stale_temporaries(output_dir: str) -> None:
    """Removes the temporary folders and files that killed runs left in ``output_dir`` (they hold no final data)."""
    stale = fs.glob(fs.join(output_dir, ".tmp-*")) + [
        p for p in fs.glob(fs.join(output_dir, "*")) if fs.is_temporary(p)
    ]
    if fs.is_remote(output_dir):  # Object stores list files, not folders.
        stale += fs.glob(fs.join(output_dir, ".tmp-*", "*"))
    if stale:
        logger.info("removing %d temporary files or folders that earlier runs left in %s", len(stale), output_dir)
        fs.delete(stale)


def _prepare_output_dir(output_dir: str) -> None:
    """Creates a local output directory (so an unwritable one fails here, in one line) and clears stale temporaries.

    Raises:
        OSError: if the directory cannot be created or cleaned.
    """
    if not fs.is_remote(output_dir):
        os.makedirs(output_dir, exist_ok=True)
        if not os.access(output_dir, os.W_OK):
            raise PermissionError(f"--output_dir {output_dir!r} is not writable")
    remove_stale_temporaries(output_dir)


def run(argv: Sequence[str] | None = None) -> int:
    """Builds and runs the job; returns the process exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if cli.wants_help(argv):
        flags.help_parser().print_help()
        return EXIT_OK
    from apache_beam.options.pipeline_options import StandardOptions, TestOptions

    cli.configure_logging(argv)
    try:
        p, outputs = build_pipeline(argv)
    except cli.UsageError as e:
        return cli.usage_exit_code(flags.PROG, e)
    except (ValueError, FileExistsError) as e:
        logger.error("%s", e)
        return cli.EXIT_USAGE
    dry_run = p.options.view_as(TestOptions).dry_run
    if not dry_run:
        try:
            _prepare_output_dir(outputs.output_dir)
        except OSError as e:
            logger.error("cannot prepare --output_dir %s: %s", outputs.output_dir, e)
            return cli.EXIT_USAGE
    try:
        result = p.run()
        result.wait_until_finish()
    except BaseException:
        _remove_quietly(outputs.temp_dir)
        raise
    failures = [] if dry_run else job_failures(result)
    if failures:
        _remove_quietly(outputs.temp_dir)
        more = f" (and {len(failures) - 1} more problems)" if len(failures) > 1 else ""
        logger.error("%s%s", failures[0], more)
        return EXIT_FAILED
    if dry_run:
        logger.info("dry run: the %s job was built and not submitted", p.options.view_as(StandardOptions).runner)
        return EXIT_OK
    print(summarize(outputs.output_dir))  # CLI summary.
    return EXIT_OK


def job_failures(result: beam.runners.runner.PipelineResult) -> list[str]:
    """Why a finished job wrote no complete set (its ``beam_seg:job_failures`` string set), sorted; empty if it did."""
    from apache_beam.metrics.metric import MetricsFilter

    from beam_seg.data.pipeline import JOB_FAILURES

    query = result.metrics().query(MetricsFilter().with_namespace("beam_seg").with_name(JOB_FAILURES))
    found: set[str] = set()
    for metric in query.get("string_sets", []):
        found.update(metric.committed if metric.committed is not None else metric.attempted or ())
    return sorted(found)


def _remove_quietly(path: str) -> None:
    """Removes a failed run's temporary folder; a failure to (e.g. on a full disk) is logged, never raised."""
    try:
        fs.delete([path])
    except OSError as e:
        logger.warning("could not remove the temporary folder %s: %s", path, e)


def summarize(output_dir: str) -> str:
    """One line describing a finished output directory, read from its ``stats.json``."""
    stats = fs.read_json(fs.join(output_dir, STATS_NAME))
    counts = ", ".join(
        f"{split} {stats['splits'][split]['num_examples']} ({len(stats['shards'][split])} shards)" for split in SPLITS
    )
    errors = ", ".join(f"{k} {v}" for k, v in stats["errors_by_reason"].items()) or "none"
    ignored = sum(stats["ignored_files"].values())
    return (
        f"tfrecord_gen: {stats['records']} records of {stats['listed']} listed images → {output_dir}: {counts}; "
        f"{stats['errors']} errors ({errors}); {ignored} ignored files"
    )
