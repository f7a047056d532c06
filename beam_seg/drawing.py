"""Masks drawn over photos, and pictures turned the way their EXIF Orientation says: numpy and PIL only.

One look for every picture of a mask the project draws (training's ``predictions.png``, the predict job's overlays,
and the two Space templates, whose standalone copies — ``segmenter.py`` of the Gradio app, ``segmentation.js`` of
the static page — tests keep equal to this one pixel for pixel): each class's palette colour blended in with its own
opacity, so the thin ``border`` class stands out and the ``background`` stays readable, and an opaque outline
around the ``pet``. A plain 50/50 blend makes pet and
border hard to tell apart and matches neither legend colour.

Every model here reads a photo's pixels in their stored order (EXIF Orientation ignored, as in training); what is
shown or written for a person is then turned by the tag (:func:`upright`), photo and mask together, so they look
like the photo does in any viewer and still line up pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image

__all__ = [
    "CLASS_ALPHA",
    "DEFAULT_ALPHA",
    "EXIF_ORIENTATION",
    "OUTLINE_CLASS",
    "OUTLINE_WIDTH",
    "displayed_size",
    "overlay",
    "upright",
]

# Opacity of each class's colour over the photo (others: DEFAULT_ALPHA).
CLASS_ALPHA: Mapping[str, float] = {"background": 0.25, "border": 0.85}
DEFAULT_ALPHA = 0.5
# The class outlined in its own colour, and the outline's width in pixels.
OUTLINE_CLASS = "pet"
OUTLINE_WIDTH = 2

EXIF_ORIENTATION = 0x0112
# EXIF Orientation -> the transposition that shows the stored pixels upright (as PIL's ImageOps.exif_transpose).
_UPRIGHT: Mapping[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _inner_edge(region: np.ndarray, width: int) -> np.ndarray:
    """The pixels of ``region`` within ``width`` pixels (4-neighbour steps) of its outside; the frame is not outside."""
    inner = region
    for _ in range(width):
        padded = np.pad(inner, 1, mode="edge")
        inner = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return region & ~inner


def overlay(
    pixels: np.ndarray,
    mask: np.ndarray,
    palette: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
) -> np.ndarray:
    """Draws the classes over the photo so their colours stay the legend's: uint8 RGB ``[H, W, 3]``.

    Each class's colour is blended in with its opacity from :data:`CLASS_ALPHA` (:data:`DEFAULT_ALPHA` for the
    others): ``round((1 - alpha) * pixel + alpha * colour)``, looked up in a table of every pixel value per class and
    channel (twice as fast as the arithmetic on every pixel). The :data:`OUTLINE_CLASS` region also gets an opaque
    outline :data:`OUTLINE_WIDTH` pixels wide in its colour.

    Args:
        pixels: uint8 RGB ``[H, W, 3]``.
        mask: Class ids ``[H, W]`` (ids beyond the palette take its last colour).
        palette: One RGB colour per class.
        class_names: The classes' names, in id order.

    Raises:
        ValueError: ``pixels`` and ``mask`` differ in size.
    """
    pixels = np.asarray(pixels, dtype=np.uint8)
    if pixels.shape[:2] != np.shape(mask)[:2]:
        raise ValueError(f"image {pixels.shape[:2]} and mask {np.shape(mask)[:2]} sizes differ")
    palette = np.asarray(palette, dtype=np.uint8)
    ids = np.clip(np.asarray(mask, dtype=np.intp), 0, len(palette) - 1)
    alphas = np.array([CLASS_ALPHA.get(name, DEFAULT_ALPHA) for name in class_names[: len(palette)]])
    values = np.arange(256, dtype=np.float64)
    # [C, 3, 256]: the blended value of every channel value, per class and channel.
    tables = np.rint((1 - alphas)[:, None, None] * values + (alphas[:, None] * palette)[:, :, None]).astype(np.uint8)
    out = tables.reshape(-1)[(ids[..., None] * 3 + np.arange(3)) * 256 + pixels]
    if OUTLINE_CLASS in class_names:
        outlined = list(class_names).index(OUTLINE_CLASS)
        out[_inner_edge(ids == outlined, OUTLINE_WIDTH)] = palette[outlined]
    return out


def displayed_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    """The ``(width, height)`` a viewer shows stored pixels of ``width x height`` in, after the EXIF turn."""
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels (``[H, W]`` or ``[H, W, 3]``) turned as a viewer shows them for EXIF ``orientation`` (1: as is)."""
    method = _UPRIGHT.get(orientation)
    return pixels if method is None else np.asarray(Image.fromarray(pixels).transpose(method))
