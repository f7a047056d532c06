"""Stage 2's command line: ``python -m beam_seg.train --data_dir DIR --output_dir DIR [--epochs N] [--resume]``.

Trains, evaluates and exports as :mod:`beam_seg.train.trainer` describes. Exit codes: 0 ok; 2 bad flags or data, one
line ``python -m beam_seg.train: ...`` on stderr naming the file (no ``stats.json``, shards other than the ones it
names, a corrupt shard, a record that lacks a feature or whose image does not decode; nothing is written then);
3 the loss became NaN (the last good checkpoint is kept, nothing is exported). Without TensorFlow (the package
installed without its ``train`` extra, as on the Dataflow workers of stages 1 and 3) it exits 2 with one line saying
``pip install 'beam_seg[train]'``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Sequence

from beam_seg import cli
from beam_seg.train.config import PROG, parse_args

__all__ = ["EXIT_DIVERGED", "run"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_DIVERGED = 0, 3

# The top-level modules of setup.py's ``train`` extra that training imports.
_TRAIN_MODULES = ("tensorflow", "keras", "matplotlib", "ai_edge_litert")


def _missing_train_module() -> str | None:
    """The first module of the ``train`` extra that is not installed, or ``None`` (looked up, not imported)."""
    return next((name for name in _TRAIN_MODULES if importlib.util.find_spec(name) is None), None)


def run(argv: Sequence[str] | None = None) -> int:
    """Parses the flags, trains, and returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse_args(argv)
    except cli.UsageError as e:
        return cli.usage_exit_code(PROG, e)
    missing = _missing_train_module()
    if missing is not None:  # Before TensorFlow's import, and before a training run that would end in ImportError.
        line = f"{missing} is not installed; training needs the train extra: pip install 'beam_seg[train]'"
        print(f"{PROG}: {line}", file=sys.stderr)  # CLI error line, as for a bad flag.
        return cli.EXIT_USAGE
    verbose, level = cli.configure_logging(argv)
    quiet = not verbose and level is None
    if quiet:  # TensorFlow's C++ INFO/WARNING/ERROR lines (a CUDA probe on a CPU machine is an "error").
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with cli.native_stderr_quieted(quiet):  # What TensorFlow prints at import, before its logging starts.
        import tensorflow  # noqa: F401 - imported here (seconds) only past the flags.

        from beam_seg.train import trainer

    try:
        result = trainer.train(config)
    except (trainer.input_pipeline.InputDataError, trainer.OutputExistsError, cli.UsageError) as e:
        print(f"{PROG}: {cli.first_line(e)}", file=sys.stderr)  # CLI error line, as for a bad flag.
        return cli.EXIT_USAGE
    except trainer.TrainingDivergedError as e:
        logger.error("%s", e)
        return EXIT_DIVERGED
    val = result.metrics.get("val", {})
    print(  # CLI summary.
        f"train: {len(result.history)} epochs in {result.seconds:.0f}s → {result.output_dir}; "
        f"val mean IoU {val.get('mean_iou', float('nan')):.4f}, "
        f"pixel accuracy {val.get('pixel_accuracy', float('nan')):.4f}"
    )
    return EXIT_OK
