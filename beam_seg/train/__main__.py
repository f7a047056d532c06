"""``python -m beam_seg.train``: stage 2, TFRecords → trained, evaluated SavedModel (:mod:`beam_seg.train.job`)."""

import sys

from beam_seg.train.job import run

if __name__ == "__main__":
    sys.exit(run())
