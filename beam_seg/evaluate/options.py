"""The flags of ``python -m beam_seg.evaluate``, defined once for ``--help`` and for the job's options.

Plain ``argparse`` (no Beam import), so ``--help`` answers at once; :class:`beam_seg.evaluate.pipeline.EvaluateOptions`
registers the same flags with Beam.
"""

from __future__ import annotations

import argparse

from beam_seg import cli
from beam_seg.formats import EVAL_COMPARISON_NAME, EVAL_REPORT_NAME, SPLITS

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

PROG = "python -m beam_seg.evaluate"
# Local runner defaults: one in-memory worker (as for beam_seg.predict); TensorFlow spreads each batch over the cores.
LOCAL_RUNNING_MODE = "in_memory"
LOCAL_NUM_WORKERS = 1
DEFAULT_MIN_BATCH_SIZE = 8
DEFAULT_MAX_BATCH_SIZE = 32


def add_flags(parser: argparse.ArgumentParser) -> None:
    """Adds the job's own flags to ``parser``."""
    cli.add_shared_argument(
        parser,
        "--data_dir",
        help="A complete tfrecord_gen output (local or gs://): stats.json and the shards it lists. Required.",
    )
    parser.add_argument(
        "--candidate",
        help="The model to evaluate: a training output directory (local or gs://) or hf://owner/name@revision. "
        "Required.",
    )
    parser.add_argument(
        "--baseline",
        help="A second model, evaluated on the same records in the same pass; the report then has the differences "
        "candidate - baseline (default: none).",
    )
    parser.add_argument(
        "--split",
        default="test",
        choices=SPLITS,
        help="Which split's records to evaluate on (default: %(default)s).",
    )
    cli.add_shared_argument(
        parser,
        "--output_dir",
        help=f"Directory (local or gs://) for {EVAL_REPORT_NAME} and {EVAL_COMPARISON_NAME} (replaced). Required.",
    )
    cli.add_batch_size_flags(parser, DEFAULT_MIN_BATCH_SIZE, DEFAULT_MAX_BATCH_SIZE)
    cli.add_logging_flags(parser)


def check_values(opts: argparse.Namespace) -> None:
    """Checks the parsed values of the job's flags, quoting the first bad one.

    Raises:
        cli.UsageError: one line.
    """
    if not opts.data_dir or not opts.candidate or not opts.output_dir:
        raise cli.UsageError("--data_dir, --candidate and --output_dir are required (see --help)")
    cli.batch_sizes(opts, DEFAULT_MIN_BATCH_SIZE, DEFAULT_MAX_BATCH_SIZE)


def help_parser() -> argparse.ArgumentParser:
    """The parser behind ``--help``: the job's flags, and the Beam options that matter most."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="An Apache Beam batch job: one pass over a split's TFRecords, segmented by a candidate model "
        "and, optionally, a baseline (Beam RunInference), scored as training scores metrics.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""\
Apache Beam pipeline options are accepted too (any other flag is an error), for example:
  --runner DirectRunner|DataflowRunner   default: {cli.LOCAL_RUNNER} with
                                         --direct_running_mode={LOCAL_RUNNING_MODE}
                                         --direct_num_workers={LOCAL_NUM_WORKERS}
  Dataflow: as for python -m beam_seg.predict (workers need TensorFlow: --sdk_container_image)

The numbers are training's (metrics.json): labels resized to each model's size S with nearest neighbour, IoU per
class over every pixel of the split, mean IoU over the classes present, pixel accuracy.

Outputs in --output_dir (replaced):
  {EVAL_REPORT_NAME}      per model: mean_iou, per_class_iou, pixel_accuracy, confusion_matrix, num_examples,
                        num_pixels, image_size; and differences (candidate - baseline)
  {EVAL_COMPARISON_NAME}   per-class IoU bars of the models side by side

Exit codes: 0 ok, 1 the job failed (a model does not load, no record could be scored), 2 bad flags or input.
""",
    )
    add_flags(parser)
    return parser
