"""``python -m beam_seg.predict``: images or TFRecords → masks with a trained model (:mod:`beam_seg.predict.job`)."""

from beam_seg.cli import exit_now
from beam_seg.predict.job import run

if __name__ == "__main__":
    exit_now(run())
