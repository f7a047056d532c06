"""``python -m beam_seg.tfrecord_gen``: stage 1, PETS images + trimaps → TFRecords (:mod:`beam_seg.data.job`)."""

import sys

from beam_seg.data.job import run

if __name__ == "__main__":
    sys.exit(run())
