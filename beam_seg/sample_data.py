"""``python -m beam_seg.sample_data``: a synthetic PETS dataset in the official layout (:mod:`beam_seg.data.sample`)."""

import sys

from beam_seg.data.sample import run

if __name__ == "__main__":
    sys.exit(run())
