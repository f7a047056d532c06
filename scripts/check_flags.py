"""Checks the flags run_dataflow.sh will give each stage, before stage 1 starts (no Beam, no TensorFlow import).

A flag that would only fail a later stage (``--resize 100``, which training cannot use, or a typo in
``--train_args``) then stops the run at once, not after the TFRecords are written. Usage::

    python scripts/check_flags.py STAGE FLAGS...

``STAGE`` is ``tfrecord_gen``, ``train`` or ``publish``; the flags are the stage's own (no Beam options). Exit
code 2 with the stage's one-line error, else 0.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from beam_seg import cli


def check(stage: str, argv: list[str]) -> None:
    """Raises ``cli.UsageError`` (one line) if ``argv`` would fail ``stage``'s flag checks."""
    if stage == "tfrecord_gen":
        from beam_seg.data import options

        options.parse_own_flags(argv)
    elif stage == "train":
        from beam_seg.train import config

        config.parse_args(argv)
    elif stage == "publish":
        from beam_seg.publish import options, plan

        plan.check_flags(options.parse_own_flags(argv), runner=cli.LOCAL_RUNNER)
    else:
        raise cli.UsageError(f"unknown stage {stage!r}; expected tfrecord_gen, train or publish")


def main(argv: Sequence[str]) -> int:
    """Checks ``STAGE FLAGS...``; returns the exit code."""
    if not argv:
        print("usage: check_flags.py STAGE FLAGS...", file=sys.stderr)
        return cli.EXIT_USAGE
    stage, flags = argv[0], list(argv[1:])
    try:
        check(stage, flags)
    except cli.UsageError as e:
        return cli.usage_exit_code(f"python -m beam_seg.{stage}", e)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
