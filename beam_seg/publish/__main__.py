"""``python -m beam_seg.publish``: stage 3, the model and its Space on the Hub (:mod:`beam_seg.publish.job`)."""

import sys

from beam_seg.publish.job import run

if __name__ == "__main__":
    sys.exit(run())
