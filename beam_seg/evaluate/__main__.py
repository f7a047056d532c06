"""``python -m beam_seg.evaluate``: a split's records scored by one or two models (:mod:`beam_seg.evaluate.job`)."""

from beam_seg.cli import exit_now
from beam_seg.evaluate.job import run

if __name__ == "__main__":
    exit_now(run())
