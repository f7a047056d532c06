"""Writes the example pictures of the Gradio Space template with the project's sample-data maker.

Usage::

    python scripts/make_app_examples.py [--output_dir apps/gradio/semantic_segmentation/examples] [--seed 7]

The pictures are synthetic pets from :func:`beam_seg.sample_data.make_sample_data` (no faults): two cats and
a dog, re-encoded small (two JPEGs, one half-size PNG) so each stays well under 50 KB. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import os
import sys
import tempfile
from collections.abc import Sequence

from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from beam_seg.data import sample as sample_data  # noqa: E402
from beam_seg.pets import CAT_BREEDS  # noqa: E402

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = os.path.join(REPO, "apps", "gradio", "semantic_segmentation", "examples")
MAX_BYTES = 50 * 1024


@dataclasses.dataclass(frozen=True)
class Config:
    """Parsed command line."""

    output_dir: str
    seed: int
    size: int


def _parse_args(argv: Sequence[str] | None) -> Config:
    parser = argparse.ArgumentParser(
        prog="python scripts/make_app_examples.py",
        description="Write the Space template's example pictures from the synthetic PETS sample data.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--output_dir", default=DEFAULT_OUTPUT_DIR, help="Folder for the pictures (replaced files).")
    parser.add_argument("--seed", type=int, default=7, help="Seed of the sample-data maker.")
    parser.add_argument("--size", type=int, default=256, help="Longest side of the pictures in pixels.")
    args = parser.parse_args(argv)
    return Config(output_dir=args.output_dir, seed=args.seed, size=args.size)


def _encode(path: str, fmt: str, size: int) -> bytes:
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if fmt == "PNG":
            image.save(buffer, format="PNG", optimize=True)
        else:
            image.save(buffer, format="JPEG", quality=85, optimize=True)
    return buffer.getvalue()


def make_examples(config: Config) -> list[str]:
    """Writes the pictures; returns their paths.

    Raises:
        ValueError: if a picture would be 50 KB or more (lower ``--size``).
    """
    os.makedirs(config.output_dir, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        data = sample_data.make_sample_data(
            tmp, num_images=37, min_size=200, max_size=320, faults=False, seed=config.seed
        )
        names = [*data.trainval, *data.test]
        cats = [n for n in names if n.rsplit("_", 1)[0] in CAT_BREEDS]
        dogs = [n for n in names if n.rsplit("_", 1)[0] not in CAT_BREEDS]
        for name, fmt in ((cats[0], "JPEG"), (dogs[0], "JPEG"), (cats[1], "PNG")):
            # Lossless PNG of the noisy synthetic textures is big: that one is drawn at half size.
            side = config.size // 2 if fmt == "PNG" else config.size
            payload = _encode(os.path.join(tmp, "images", f"{name}.jpg"), fmt, side)
            if len(payload) >= MAX_BYTES:
                raise ValueError(f"{name} encodes to {len(payload)} bytes as {fmt}, over {MAX_BYTES}; lower --size")
            target = os.path.join(config.output_dir, f"{name}.{'png' if fmt == 'PNG' else 'jpg'}")
            with open(target, "wb") as f:
                f.write(payload)
            written.append(target)
    return written


def run(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = _parse_args(argv)
    for path in make_examples(config):
        print(f"{path} ({os.path.getsize(path)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(run())
