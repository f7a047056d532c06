"""``python -m beam_seg.tfrecord_gen``: stage 1, PETS images + trimaps → TFRecords (:mod:`beam_seg.data.job`)."""

from beam_seg.cli import exit_now
from beam_seg.data.job import run

if __name__ == "__main__":
    exit_now(run())
