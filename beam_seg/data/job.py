"""Stage 1's driver: ``python -m beam_seg.tfrecord_gen --input DIR --output_dir DIR [--resize 128] [Beam options]``.

Reads the extracted PETS layout or the two official archives (local or ``gs://``), pairs each listed image with its
trimap, validates and converts it, and writes ``{train,val,test}-SSSSS-of-NNNNN.tfrecord`` (record format:
:mod:`beam_seg.data.codec`), ``errors-00000-of-00001.jsonl`` (one line per listed image that could not become a
record), ``schema.pbtxt`` and ``stats.json``, last. Every listed image ends up in exactly one of records or errors.

Exit codes: 0 ok (also a Dataflow ``--dry_run``), 1 the job failed (no complete set was written), 2 bad flags or
input.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beam_seg import cli, fs
from beam_seg.data import options as flags
from beam_seg.formats import SPLITS, STATS_NAME

if TYPE_CHECKING:
    import apache_beam as beam

__all__ = ["OutputExistsError", "build_pipeline", "run", "summarize"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1


class OutputExistsError(FileExistsError):
    """``--output_dir`` already holds a TFRecord set and ``--overwrite`` was not given."""


def build_pipeline(argv: Sequence[str]) -> tuple[beam.Pipeline, str]:
    """Validates flags and input; returns the constructed (not yet run) pipeline and its output directory.

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
    cli.apply_local_runner_defaults(options, argv, running_mode=flags.LOCAL_RUNNING_MODE)
    opts = options.view_as(pipeline.TFRecordGenOptions)
    flags.check_values(opts)
    FileSystems.set_options(options)  # Construction-time reads use the job's GCS settings (e.g. --no_auth).
    source = sources.find_input(opts.input, opts.input_layout)
    existing = pipeline.existing_outputs(opts.output_dir)
    if existing and not opts.overwrite:
        raise OutputExistsError(
            f"--output_dir {opts.output_dir!r} already holds a TFRecord set ({existing[0]} …); "
            "pass --overwrite to replace it or choose another directory"
        )
    settings = pipeline.JobSettings(
        resize=opts.resize,
        val_fraction=opts.val_fraction,
        split_seed=opts.split_seed,
        target_shard_bytes=int(opts.target_shard_mb * 1e6),
        shards_per_split=opts.shards_per_split,
        redistribute=pipeline.runs_on_many_workers(options),
    )
    temp_dir = fs.join(opts.output_dir, f".tmp-{uuid.uuid4().hex}")
    p = beam.Pipeline(options=options)
    _ = p | "BuildTFRecords" >> pipeline.BuildTFRecords(source, settings, output_dir=opts.output_dir, temp_dir=temp_dir)
    return p, opts.output_dir


def run(argv: Sequence[str] | None = None) -> int:
    """Builds and runs the job; returns the process exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if cli.wants_help(argv):
        flags.help_parser().print_help()
        return EXIT_OK
    from apache_beam.options.pipeline_options import StandardOptions, TestOptions

    from beam_seg.data.pipeline import IncompleteOutputError

    cli.configure_logging(reported=(IncompleteOutputError,))

    try:
        p, output_dir = build_pipeline(argv)
    except cli.UsageError as e:
        return cli.usage_exit_code(flags.PROG, e)
    except (ValueError, FileExistsError) as e:
        logger.error("%s", e)
        return cli.EXIT_USAGE
    try:
        p.run().wait_until_finish()
    except Exception as e:
        reason = cli.find_error(e, IncompleteOutputError)
        if reason is None:
            raise
        logger.error("%s", reason)
        return EXIT_FAILED
    if p.options.view_as(TestOptions).dry_run:
        logger.info("dry run: the %s job was built and not submitted", p.options.view_as(StandardOptions).runner)
        return EXIT_OK
    print(summarize(output_dir))  # CLI summary.
    return EXIT_OK


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
