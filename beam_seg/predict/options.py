"""The flags of ``python -m beam_seg.predict``, defined once for ``--help`` and for the job's options.

Plain ``argparse`` (no Beam import), so ``--help`` answers at once; :class:`beam_seg.predict.pipeline.PredictOptions`
registers the same flags with Beam.
"""

from __future__ import annotations

import argparse

from beam_seg import cli
from beam_seg.formats import DEAD_LETTERS_NAME, MASKS_DIR, OVERLAYS_DIR, PREDICTIONS_JSONL_NAME

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_MIN_BATCH_SIZE",
    "LOCAL_NUM_WORKERS",
    "LOCAL_RUNNING_MODE",
    "PROG",
    "add_flags",
    "check_values",
    "help_parser",
]

PROG = "python -m beam_seg.predict"
# Local runner defaults: one in-memory worker, as for stages 1 and 3; TensorFlow spreads each batch over the cores.
# A worker thread per core sharing the model measured no steadier gain on 2 cores (bench/predict.py, job_threads).
LOCAL_RUNNING_MODE = "in_memory"
LOCAL_NUM_WORKERS = 1
# RunInference's batches (beam.BatchElements grows them from min to max as long as a bigger batch pays).
DEFAULT_MIN_BATCH_SIZE = 8
DEFAULT_MAX_BATCH_SIZE = 32

GPU_EXAMPLE = """\
On Dataflow the workers need TensorFlow, which the package's own requirements leave out (stages 1 and 3 never
use it): give them an image that has it, docker/predict.Dockerfile (Apache Beam's SDK image with TensorFlow and its
CUDA libraries, for CPU and GPU workers alike). For GPU workers, ask Dataflow for an accelerator and its driver:
  --runner DataflowRunner --project P --region us-central1 --temp_location gs://B/tmp --setup_file ./setup.py
  --sdk_container_image REGION-docker.pkg.dev/P/beam-seg/predict:TAG --machine_type n1-standard-4
  --dataflow_service_options "worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"
Each SDK process of a worker loads its own copy of the model (a few MB); TensorFlow's GPU memory grows on demand
(TF_FORCE_GPU_ALLOW_GROWTH), so the processes share the GPU."""


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the job's own flags to ``parser``."""
    cli.add_shared_argument(
        parser,
        "--input",
        help="Images or TFRecords, local or gs://: a directory (its image files, or its *.tfrecord* shards, not "
        "recursive), a glob (quote it) or one file. Required.",
    )
    cli.add_shared_argument(
        parser,
        "--output_dir",
        help=f"Directory (local or gs://) for {MASKS_DIR}/, {OVERLAYS_DIR}/, {PREDICTIONS_JSONL_NAME} and "
        f"{DEAD_LETTERS_NAME}. Required.",
    )
    parser.add_argument(
        "--model",
        help="A training output directory (local or gs://), or a published version on the Hugging Face Hub, "
        "hf://owner/name@revision. Required.",
    )
    parser.add_argument(
        "--overlay",
        action="store_true",
        help=f"Also write {OVERLAYS_DIR}/<name>.png: the image with its mask blended in, in the palette's colours.",
    )
    cli.add_batch_size_flags(parser, DEFAULT_MIN_BATCH_SIZE, DEFAULT_MAX_BATCH_SIZE)
    cli.add_shared_argument(
        parser,
        "--overwrite",
        action="store_true",
        help="Replace the outputs already in --output_dir (otherwise the job refuses to start).",
    )
    cli.add_logging_flags(parser)


def check_values(opts: argparse.Namespace) -> None:
    """Checks the parsed values of the job's flags, quoting the first bad one.

    Raises:
        cli.UsageError: one line.
    """
    if not opts.input or not opts.output_dir or not opts.model:
        raise cli.UsageError("--input, --model and --output_dir are required (see --help)")
    cli.batch_sizes(opts, DEFAULT_MIN_BATCH_SIZE, DEFAULT_MAX_BATCH_SIZE)


def help_parser() -> argparse.ArgumentParser:
    """The parser behind ``--help``: the job's flags, and the Beam options that matter most."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="An Apache Beam batch job: images or stage 1's TFRecords -> one mask per image, with a trained "
        "model (Beam RunInference, the model loaded once per worker process, images in batches).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""\
Apache Beam pipeline options are accepted too (any other flag is an error), for example:
  --runner DirectRunner|DataflowRunner   default: {cli.LOCAL_RUNNER} (the DirectRunner's batch engine) with
                                         --direct_running_mode={LOCAL_RUNNING_MODE}
                                         --direct_num_workers={LOCAL_NUM_WORKERS}
  Dataflow: --project, --region, --temp_location gs://..., --setup_file ./setup.py, --machine_type,
            --max_num_workers, --sdk_container_image, --dry_run True (build the job without submitting it)

{GPU_EXAMPLE}

Outputs in --output_dir:
  {MASKS_DIR}/<name>.png        one-channel PNG of class ids (0 pet, 1 background, 2 border) at the image's size
                          (the model's SxS mask, upsampled with nearest neighbour)
  {OVERLAYS_DIR}/<name>.png     with --overlay: the image with its mask blended in
  {PREDICTIONS_JSONL_NAME}       one line per mask: name, source, width, height, class_fractions, mask; sorted
                          by name; written last
  {DEAD_LETTERS_NAME}      one line per input that got no mask: name, source, reason, detail

<name> is the image file's name without its extension, or a record's file_name. The model reads an image's
pixels in their stored order, as training did (an EXIF Orientation tag is ignored); the mask and overlay files
are then turned by the tag, so they line up with the picture every viewer shows (as the demo app does). Two
inputs of the same name: the first by source path gets it, the others are duplicate_name dead letters.

Exit codes: 0 ok (also a Dataflow --dry_run), 1 the job failed or no input could be segmented, 2 bad flags or input.
""",
    )
    add_flags(parser)
    return parser
