"""The predict job's driver: ``python -m beam_seg.predict --input DIR_OR_GLOB --model MODEL --output_dir DIR``.

Segments every image of ``--input`` (image files, or the records of stage 1's TFRecord shards) with a trained model
(a training output directory, local or ``gs://``, or ``hf://owner/name@revision``) in an Apache Beam job with
``RunInference``, and writes into ``--output_dir``: ``masks/<name>.png`` (class ids at the image's size),
``overlays/<name>.png`` with ``--overlay``, ``dead_letters.jsonl`` (every input that got no mask, with the reason)
and ``predictions.jsonl`` (one line per mask), last. Every input ends up in exactly one of the two.

Exit codes: 0 ok (also a Dataflow ``--dry_run``), 1 the job failed (the model does not load on the workers, a write
fails) or no input could be segmented, 2 bad flags or input (nothing to predict, no model there, outputs already in
``--output_dir`` without ``--overwrite``).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beam_seg import cli, fs
from beam_seg.formats import DEAD_LETTERS_NAME, MASKS_DIR, OVERLAYS_DIR, PREDICTIONS_JSONL_NAME
from beam_seg.loader import check_location
from beam_seg.predict import options as flags

if TYPE_CHECKING:
    import apache_beam as beam

    from beam_seg.predict.inputs import Inputs

__all__ = ["EXIT_FAILED", "EXIT_OK", "NothingPredictedError", "OutputExistsError", "Outputs", "build_pipeline", "run"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED = 0, 1


class OutputExistsError(FileExistsError):
    """``--output_dir`` already holds predictions and ``--overwrite`` was not given."""


class NothingPredictedError(RuntimeError):
    """The job ran, but not one input became a mask (every one is a dead letter)."""


@dataclasses.dataclass(frozen=True)
class Outputs:
    """What a built job reads and where it writes."""

    output_dir: str
    inputs: Inputs
    overwrite: bool


def existing_outputs(output_dir: str) -> list[str]:
    """The outputs of an earlier run in ``output_dir``: the two reports, masks and overlays (sorted)."""
    reports = (fs.join(output_dir, PREDICTIONS_JSONL_NAME), fs.join(output_dir, DEAD_LETTERS_NAME))
    found = [p for p in reports if fs.exists(p)]
    for folder in (MASKS_DIR, OVERLAYS_DIR):
        found += fs.glob(fs.join(output_dir, folder, "*.png"))
    return found


def build_pipeline(argv: Sequence[str]) -> tuple[beam.Pipeline, Outputs]:
    """Validates flags, input and model location; returns the constructed (not yet run) pipeline.

    Touches nothing in the output directory.

    Raises:
        cli.UsageError: an unknown flag, a bad value, an input with nothing to predict.
        ModelLoadError: a model location that holds no complete model.
        OutputExistsError: outputs of an earlier run in ``--output_dir`` and no ``--overwrite``.
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import StandardOptions

    from beam_seg.predict import inputs, pipeline

    argv = list(argv)
    options = cli.parse_pipeline_options(argv)
    cli.apply_local_runner_defaults(
        options, argv, running_mode=flags.LOCAL_RUNNING_MODE, num_workers=flags.LOCAL_NUM_WORKERS
    )
    opts = options.view_as(pipeline.PredictOptions)
    flags.check_values(opts)
    FileSystems.set_options(options)  # Construction-time reads use the job's GCS settings.
    found = inputs.find_inputs(opts.input)
    check_location(opts.model)
    existing = existing_outputs(opts.output_dir)
    if existing and not opts.overwrite:
        raise OutputExistsError(
            f"--output_dir {opts.output_dir!r} already holds predictions ({existing[0]} …); pass --overwrite to "
            "replace them or choose another directory"
        )
    runner = options.view_as(StandardOptions).runner
    if not cli.is_local_runner(runner) and not options.get_all_options().get("sdk_container_image"):
        logger.warning(
            "%s workers need TensorFlow, which the package's requirements leave out: pass --sdk_container_image with "
            "an image that has it (docker/predict.Dockerfile; see --help)",
            runner,
        )
    verbose, level = cli.logging_flags(argv)
    low, high = cli.batch_sizes(opts, flags.DEFAULT_MIN_BATCH_SIZE, flags.DEFAULT_MAX_BATCH_SIZE)
    settings = pipeline.PredictSettings(
        model=opts.model,
        overlay=opts.overlay,
        min_batch_size=low,
        max_batch_size=high,
        quiet_native_stderr=not verbose and level is None,
    )
    logger.info(
        "input %s: %d %s%s; model %s",
        opts.input,
        found.count,
        "image files" if found.kind == inputs.IMAGES else "TFRecord shards",
        f" ({found.ignored} other files ignored)" if found.ignored else "",
        opts.model,
    )
    p = beam.Pipeline(options=options)
    _ = p | "PredictImages" >> pipeline.PredictImages(found, settings, output_dir=opts.output_dir)
    return p, Outputs(output_dir=opts.output_dir, inputs=found, overwrite=opts.overwrite)


def _clear_outputs(output_dir: str) -> None:
    """Removes an earlier run's outputs, ``predictions.jsonl`` first (so no mix of two runs ever looks complete)."""
    existing = existing_outputs(output_dir)
    if existing:
        logger.info("removing %d outputs of an earlier run in %s", len(existing), output_dir)
        marker = fs.join(output_dir, PREDICTIONS_JSONL_NAME)
        fs.delete([p for p in existing if p == marker])
        fs.delete([p for p in existing if p != marker])


def read_reports(output_dir: str) -> tuple[list[dict], list[dict]]:
    """The ``predictions.jsonl`` and ``dead_letters.jsonl`` lines of a finished run."""

    def lines(name: str) -> list[dict]:
        return [json.loads(line) for line in fs.read_text(fs.join(output_dir, name)).splitlines() if line.strip()]

    return lines(PREDICTIONS_JSONL_NAME), lines(DEAD_LETTERS_NAME)


def summarize(output_dir: str, found: Inputs) -> str:
    """One line describing a finished run, read from its reports.

    Raises:
        NothingPredictedError: no input became a mask (the model did not load, or every input is a dead letter).
    """
    from beam_seg.inference import MODEL_NOT_LOADED

    predictions, dead = read_reports(output_dir)
    unloaded = next((d for d in dead if d["reason"] == MODEL_NOT_LOADED), None)
    if unloaded is not None:
        raise NothingPredictedError(unloaded["detail"])
    reasons = collections.Counter(d["reason"] for d in dead)
    by_reason = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "none"
    if not predictions:
        first = f"; first: {dead[0]['name'] or dead[0]['source']}: {dead[0]['detail']}" if dead else ""
        raise NothingPredictedError(
            f"no input could be segmented: {len(dead)} dead letters ({by_reason}){first}; see "
            f"{fs.join(output_dir, DEAD_LETTERS_NAME)}"
        )
    ignored = f"; {found.ignored} other files ignored" if found.ignored else ""
    return (
        f"predict: {len(predictions)} masks of {len(predictions) + len(dead)} inputs → {output_dir}; "
        f"{len(dead)} dead letters ({by_reason}){ignored}"
    )


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
    except (ValueError, FileExistsError) as e:  # ModelLoadError is a ValueError.
        logger.error("%s", e)
        return cli.EXIT_USAGE
    dry_run = p.options.view_as(TestOptions).dry_run
    if dry_run:
        p.run().wait_until_finish()
        logger.info("dry run: the %s job was built and not submitted", p.options.view_as(StandardOptions).runner)
        return EXIT_OK
    try:
        if outputs.overwrite:
            _clear_outputs(outputs.output_dir)
        elif not fs.is_remote(outputs.output_dir):
            os.makedirs(outputs.output_dir, exist_ok=True)
    except OSError as e:
        logger.error("cannot prepare --output_dir %s: %s", outputs.output_dir, e)
        return cli.EXIT_USAGE
    p.run().wait_until_finish()
    try:
        print(summarize(outputs.output_dir, outputs.inputs))  # CLI summary.
    except NothingPredictedError as e:
        logger.error("%s", e)
        return EXIT_FAILED
    return EXIT_OK
