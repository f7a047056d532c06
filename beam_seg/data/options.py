"""The flags of ``python -m beam_seg.tfrecord_gen``, defined once for ``--help`` and for the job's options.

Plain ``argparse`` (no Beam import), so ``--help`` answers at once; :class:`beam_seg.data.job.TFRecordGenOptions`
registers the same flags with Beam.
"""

from __future__ import annotations

import argparse

from beam_seg import cli
from beam_seg.formats import ERRORS_NAME, SCHEMA_NAME, STATS_NAME

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "LOCAL_NUM_WORKERS",
    "LOCAL_RUNNING_MODE",
    "PROG",
    "add_flags",
    "check_values",
    "help_parser",
    "parse_own_flags",
]

PROG = "python -m beam_seg.tfrecord_gen"
# The local running mode and worker count: one in-memory Beam worker (the least overhead), whose heavy step runs in a
# pool of one process per core (--prepare_processes); the fastest setup measured by bench/tfrecord_gen.py.
LOCAL_RUNNING_MODE = "in_memory"
LOCAL_NUM_WORKERS = 1
# Largest image or trimap accepted, in pixels: PIL's own decompression-bomb warning limit (~89.5 MP), far above any
# PETS image (the largest has a few MP).
DEFAULT_MAX_PIXELS = 89_478_485


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the job's own flags to ``parser``."""
    cli.add_shared_argument(
        parser,
        "--input",
        help="Directory (local or gs://) with the official images.tar.gz + annotations.tar.gz, or with their "
        "extracted images/ and annotations/ folders. Required.",
    )
    cli.add_shared_argument(
        parser, "--output_dir", help="Directory (local or gs://) for shards and statistics. Required."
    )
    parser.add_argument(
        "--input_layout",
        default="auto",
        choices=("auto", "archives", "extracted"),
        help="Which layout to read; auto prefers the archives when both are present (default: %(default)s).",
    )
    parser.add_argument(
        "--resize",
        type=int,
        default=None,
        help="Resize images and masks to SxS (bilinear with antialias for images, nearest for masks). "
        "Default: keep the source size and the source JPEG bytes.",
    )
    parser.add_argument(
        "--max_pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="Largest image or trimap accepted, in pixels, checked from the file's header before decoding; larger "
        "ones (decompression bombs) become image_too_large dead letters (default: %(default)s, PIL's own limit).",
    )
    parser.add_argument(
        "--allow_missing_split_list",
        action="store_true",
        help="Accept an input with only one of annotations/trainval.txt and test.txt (the images the missing list "
        "would name are then ignored as unlisted). Without it such an input is refused.",
    )
    parser.add_argument(
        "--val_fraction",
        type=float,
        default=0.1,
        help="Share of trainval carved out as val by a stable hash of the image name (default: %(default)s).",
    )
    parser.add_argument(
        "--split_seed",
        type=int,
        default=0,
        help="Seed of the stable hashes that pick val images and order records (default: %(default)s).",
    )
    parser.add_argument(
        "--target_shard_mb",
        type=float,
        default=128.0,
        help="Target shard size in MB; shard counts come from the data, at least one per split (default: %(default)s).",
    )
    parser.add_argument(
        "--shards_per_split",
        type=int,
        default=0,
        help="Fixed number of shards per split, overriding --target_shard_mb (default: 0 = from the data).",
    )
    cli.add_shared_argument(  # Shared: beam_seg.predict has an --overwrite too.
        parser,
        "--overwrite",
        action="store_true",
        help="Replace an existing TFRecord set in --output_dir (otherwise the job refuses to start).",
    )
    parser.add_argument(
        "--prepare_processes",
        type=int,
        default=0,
        help="Processes that decode, validate and encode images inside each Beam worker. Default 0: one per core "
        "with a local runner that keeps its workers in this process (divided among --direct_num_workers), else 1 "
        "(Dataflow runs a worker process per core already).",
    )
    cli.add_logging_flags(parser)


def check_values(opts: argparse.Namespace) -> None:
    """Checks the parsed values of the job's flags, quoting the first bad one.

    Raises:
        cli.UsageError: one line.
    """
    if not opts.input or not opts.output_dir:
        raise cli.UsageError("--input and --output_dir are required (see --help)")
    if opts.resize is not None and not 8 <= opts.resize <= 4096:
        raise cli.UsageError(f"--resize {opts.resize} is out of range; use a side between 8 and 4096 pixels")
    if opts.prepare_processes < 0:
        raise cli.UsageError(f"--prepare_processes {opts.prepare_processes} must be >= 0 (0: automatic)")
    if opts.max_pixels < 1:
        raise cli.UsageError(f"--max_pixels {opts.max_pixels} must be >= 1")
    if not 0.0 <= opts.val_fraction < 1.0:
        raise cli.UsageError(f"--val_fraction {opts.val_fraction} must be in [0, 1)")
    if opts.target_shard_mb <= 0:
        raise cli.UsageError(f"--target_shard_mb {opts.target_shard_mb} must be > 0")
    if opts.shards_per_split < 0:
        raise cli.UsageError(f"--shards_per_split {opts.shards_per_split} must be >= 0")


def parse_own_flags(argv: list[str]) -> argparse.Namespace:
    """The job's own flags, parsed and checked without Beam (no Beam option may be among them).

    For a caller that builds the command line, such as run_dataflow.sh, to fail before stage 1 rather than in it.

    Raises:
        cli.UsageError: one line.
    """
    parser = cli.StrictArgumentParser(prog=PROG)
    add_flags(parser)
    opts = parser.parse_args(argv)
    check_values(opts)
    return opts


def help_parser() -> argparse.ArgumentParser:
    """The parser behind ``--help``: the job's flags, and the Beam options that matter most."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="An Apache Beam batch job: Oxford-IIIT Pet images + trimaps -> sharded TFRecords, a dead-letter "
        "file and statistics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""\
Apache Beam pipeline options are accepted too (any other flag is an error), for example:
  --runner DirectRunner|DataflowRunner   default: {cli.LOCAL_RUNNER} (the DirectRunner's batch engine,
                                         without its Prism download attempt) with
                                         --direct_running_mode={LOCAL_RUNNING_MODE}
                                         --direct_num_workers={LOCAL_NUM_WORKERS} (and --prepare_processes
                                         <number of cores>)
  --direct_running_mode, --direct_num_workers
  Dataflow: --project, --region, --temp_location gs://..., --staging_location gs://...,
            --setup_file ./setup.py, --machine_type, --max_num_workers,
            --sdk_container_image, --dry_run (build the job without submitting it)

Outputs in --output_dir:
  {{train,val,test}}-SSSSS-of-NNNNN.tfrecord   records (format: see README "Record format")
  {ERRORS_NAME}                listed images that could not become records
  {SCHEMA_NAME}                               tensorflow_metadata Schema of the records
  {STATS_NAME}                                 per-split statistics; written last

Exit codes: 0 ok, 1 the job failed, 2 bad flags or input.
""",
    )
    add_flags(parser)
    return parser
