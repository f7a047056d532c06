"""The evaluation's driver, ``python -m beam_seg.evaluate``, and :func:`run_evaluation`, the same as a library call.

``python -m beam_seg.evaluate --data_dir DIR --candidate MODEL [--baseline MODEL] [--split test] --output_dir DIR``:
one Beam pass over the split's shards of a complete ``tfrecord_gen`` output runs each model with ``RunInference``
and sums one confusion matrix per model in a ``CombineFn``; ``eval_report.json`` holds each model's numbers (those of
training's ``metrics.json`` for the same split and model) and the differences candidate − baseline, and
``eval_comparison.png`` draws them.

Exit codes: 0 ok, 1 the job failed (a model does not load on the workers, no record could be scored), 2 bad flags
or input (an incomplete TFRecord set, a split without records, a model location that holds no model).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from beam_seg import cli, fs
from beam_seg.evaluate import options as flags
from beam_seg.formats import EVAL_REPORT_NAME, STATS_NAME
from beam_seg.loader import ModelLoadError, check_location

if TYPE_CHECKING:
    import apache_beam as beam

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EvaluationFailedError",
    "IncompleteDataError",
    "Outputs",
    "build_pipeline",
    "run",
    "run_evaluation",
    "split_shards",
]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1
MODEL_NOT_LOADED_PREFIX = "the model did not load: "  # How beam_seg.inference says so (not imported: --help).


class IncompleteDataError(ValueError):
    """``--data_dir`` is not a complete ``tfrecord_gen`` output, or has no records of the split; one line."""


class EvaluationFailedError(RuntimeError):
    """The job ran and failed: a model did not load on the workers, or no record could be scored; one line."""


@dataclasses.dataclass(frozen=True)
class Outputs:
    """Where a built job writes its report."""

    output_dir: str

    @property
    def report(self) -> str:
        """The path of ``eval_report.json``."""
        return fs.join(self.output_dir, EVAL_REPORT_NAME)


def split_shards(data_dir: str, split: str) -> list[str]:
    """The shards of ``split`` that ``stats.json`` lists, each checked to exist.

    Raises:
        IncompleteDataError: no ``stats.json`` (the set is incomplete), no shard of the split, or a listed shard
            missing.
    """
    stats_path = fs.join(data_dir, STATS_NAME)
    if not fs.exists(stats_path):
        raise IncompleteDataError(
            f"{stats_path} does not exist: {data_dir} is not a complete tfrecord_gen output (stats.json is written "
            f"last); make it with python -m beam_seg.tfrecord_gen --input DIR --output_dir {data_dir}"
        )
    names = (fs.read_json(stats_path).get("shards") or {}).get(split) or []
    if not names:
        raise IncompleteDataError(f"{data_dir} has no {split} records ({stats_path} lists no {split} shard)")
    paths = [fs.join(data_dir, name) for name in names]
    missing = [path for path in paths if not fs.exists(path)]
    if missing:
        raise IncompleteDataError(
            f"{missing[0]} is listed in {stats_path} but does not exist; regenerate the set with python -m "
            "beam_seg.tfrecord_gen --overwrite"
        )
    return paths


def build_pipeline(argv: Sequence[str]) -> tuple[beam.Pipeline, Outputs]:
    """Validates flags, data and model locations; returns the constructed (not yet run) pipeline.

    Raises:
        cli.UsageError: an unknown flag or a bad value.
        IncompleteDataError: see :func:`split_shards`.
        ModelLoadError: a model location that holds no complete model.
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from beam_seg.evaluate import pipeline
    from beam_seg.evaluate.report import BASELINE, CANDIDATE

    argv = list(argv)
    options = cli.parse_pipeline_options(argv)
    cli.apply_local_runner_defaults(
        options, argv, running_mode=flags.LOCAL_RUNNING_MODE, num_workers=flags.LOCAL_NUM_WORKERS
    )
    opts = options.view_as(pipeline.EvaluateOptions)
    flags.check_values(opts)
    low, high = cli.batch_sizes(opts, flags.DEFAULT_MIN_BATCH_SIZE, flags.DEFAULT_MAX_BATCH_SIZE)
    FileSystems.set_options(options)
    shards = split_shards(opts.data_dir, opts.split)
    models = {CANDIDATE: opts.candidate, **({BASELINE: opts.baseline} if opts.baseline else {})}
    for role, location in models.items():
        try:
            check_location(location)
        except ModelLoadError as e:
            raise ModelLoadError(f"--{role}: {e}") from None
    verbose, level = cli.logging_flags(argv)
    settings = pipeline.EvaluationSettings(
        split=opts.split,
        data_dir=opts.data_dir,
        shards=tuple(shards),
        models=models,
        min_batch_size=low,
        max_batch_size=high,
        quiet_native_stderr=not verbose and level is None,
    )
    logger.info(
        "evaluating %s on the %s split of %s (%d shards)",
        " and ".join(f"{role} {location}" for role, location in models.items()),
        opts.split,
        opts.data_dir,
        len(shards),
    )
    p = beam.Pipeline(options=options)
    _ = p | "EvaluateModels" >> pipeline.EvaluateModels(settings, output_dir=opts.output_dir)
    return p, Outputs(output_dir=opts.output_dir)


def _run_and_read(p: beam.Pipeline, outputs: Outputs) -> dict[str, Any]:
    """Runs a built job and returns its report.

    Raises:
        EvaluationFailedError: a model did not load on the workers, or no record could be scored.
    """
    p.run().wait_until_finish()
    report = fs.read_json(outputs.report)
    for role in ("candidate", "baseline"):
        entry = report.get(role)
        if entry is not None and not entry["num_examples"]:
            first = entry["skipped_records"][0] if entry["skipped_records"] else None
            if first and first["detail"].startswith(MODEL_NOT_LOADED_PREFIX):
                raise EvaluationFailedError(f"--{role} {entry['model']}: {first['detail']}")
            why = f"; first: {first['name']}: {first['detail']}" if first else ""
            raise EvaluationFailedError(
                f"no record of {report['data_dir']}'s {report['split']} split could be scored by the {role} "
                f"{entry['model']} ({report['num_records']} records read){why}"
            )
    return report


def run_evaluation(
    *,
    data_dir: str,
    candidate: str,
    output_dir: str,
    baseline: str | None = None,
    split: str = "test",
    beam_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluates ``candidate`` (and ``baseline``) on ``data_dir``'s ``split`` in one Beam pass; returns the report.

    The report (also written as ``<output_dir>/eval_report.json``, with ``eval_comparison.png``) has ``candidate``
    and ``baseline`` entries (``mean_iou``, ``per_class_iou``, ``pixel_accuracy``, ``confusion_matrix``,
    ``num_examples``, ...; ``baseline`` is ``None`` without one) and ``differences``, candidate − baseline.

    Args:
        data_dir: A complete ``tfrecord_gen`` output, local or ``gs://``.
        candidate: A model location, as :func:`beam_seg.loader.load_model` takes it.
        output_dir: Where the report and its picture go (replaced), local or ``gs://``.
        baseline: A second model location, or ``None``.
        split: ``train``, ``val`` or ``test``.
        beam_args: Apache Beam pipeline options (``--runner``, ...; default: the local runner).

    Raises:
        cli.UsageError: a bad argument.
        IncompleteDataError: ``data_dir`` is not a complete set, or has no records of ``split``.
        ModelLoadError: a model location that holds no model.
        EvaluationFailedError: a model did not load on the workers, or no record could be scored.
    """
    argv = ["--data_dir", data_dir, "--candidate", candidate, "--split", split, "--output_dir", output_dir]
    if baseline:
        argv += ["--baseline", baseline]
    p, outputs = build_pipeline([*argv, *beam_args])
    return _run_and_read(p, outputs)


def summarize(report: dict[str, Any], outputs: Outputs) -> str:
    """One line describing a finished evaluation."""

    def numbers(entry: dict[str, Any]) -> str:
        return f"mean IoU {entry['mean_iou']:.4f}, pixel accuracy {entry['pixel_accuracy']:.4f}"

    line = (
        f"evaluate: {report['split']} split, {report['candidate']['num_examples']} of {report['num_records']} records: "
        f"candidate {numbers(report['candidate'])}"
    )
    if report.get("baseline"):
        line += f"; baseline {numbers(report['baseline'])}; difference {report['differences']['mean_iou']:+.4f}"
    return f"{line} → {outputs.report}"


def run(argv: Sequence[str] | None = None) -> int:
    """Builds and runs the job; returns the process exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if cli.wants_help(argv):
        flags.help_parser().print_help()
        return EXIT_OK
    cli.configure_logging(argv)
    try:
        p, outputs = build_pipeline(argv)
    except cli.UsageError as e:
        return cli.usage_exit_code(flags.PROG, e)
    except (ValueError, OSError) as e:  # IncompleteDataError and ModelLoadError are ValueErrors.
        logger.error("%s", e)
        return cli.EXIT_USAGE
    try:
        report = _run_and_read(p, outputs)
    except EvaluationFailedError as e:
        logger.error("%s", e)
        return EXIT_FAILED
    print(summarize(report, outputs))  # CLI summary.
    return EXIT_OK
