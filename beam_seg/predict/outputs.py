"""What the job writes, as pure functions: masks at the image's size, class fractions, PNGs, report lines.

The model's mask is ``S x S`` (the image was resized to the model's square without keeping its aspect); the mask
file has the image's size, upsampled with nearest neighbour (class ids are never interpolated), so it lays over the
image pixel for pixel. The class fractions are those of the written mask. Overlays are drawn by
:func:`beam_seg.drawing.overlay`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "PNG_COMPRESS_LEVEL",
    "class_fractions",
    "encode_png",
    "jsonl",
    "prediction_line",
    "upsample_mask",
]

# zlib level of the PNGs: 1 encodes masks in half the time and overlays in a quarter of level 6's (PIL's default),
# for masks of ~5 KB instead of ~3.5 KB and overlays of the same size (bench/README.md, "Predict").
PNG_COMPRESS_LEVEL = 1


def upsample_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """The ``S x S`` class-id mask at ``width x height``, nearest neighbour (PIL's, as the demo app draws it)."""
    mask = np.asarray(mask, dtype=np.uint8)
    if mask.shape == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))


def class_fractions(mask: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """``{class: share of the mask's pixels}`` in class order, rounded to 6 decimals (ids past the names ignored)."""
    counts = np.bincount(np.asarray(mask, dtype=np.intp).ravel(), minlength=len(class_names))[: len(class_names)]
    total = max(int(counts.sum()), 1)
    return {name: round(int(count) / total, 6) for name, count in zip(class_names, counts, strict=True)}


def encode_png(pixels: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """A PNG of uint8 ``[H, W]`` (one channel, e.g. class ids) or ``[H, W, 3]`` (RGB) pixels."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def prediction_line(
    *, name: str, source: str, width: int, height: int, fractions: dict[str, float], files: dict[str, str]
) -> dict[str, Any]:
    """The JSON object of one ``predictions.jsonl`` line."""
    return {
        "name": name,
        "source": source,
        "width": width,
        "height": height,
        "class_fractions": fractions,
        **files,
    }


def jsonl(items: Iterable[dict[str, Any]], *keys: str) -> bytes:
    """JSON lines of ``items`` (keys sorted) in the order of their ``keys`` values, then of the whole line.

    The same items give the same bytes whatever order they arrive in: the reports are deterministic.
    """
    lines = [(tuple(str(item.get(k, "")) for k in keys), json.dumps(item, sort_keys=True)) for item in items]
    return "".join(line + "\n" for _, line in sorted(lines)).encode("utf-8")
