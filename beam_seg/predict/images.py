"""Images checked and made ready for the model: the bytes its ``serving_default`` gets, the size the mask gets.

The model decodes and resizes inside its graph, so most images go to it as they are: JPEG (RGB or grey) and 8-bit
PNG, whose pixels it reads in their stored order, ignoring any EXIF Orientation, as training read them. Formats
it does not read as PIL shows them (CMYK JPEG, GIF, BMP, WebP, 16-bit PNG, ...) are decoded here, converted to RGB
and re-encoded losslessly as PNG, still in their stored order. The EXIF Orientation is kept in :class:`ImageInfo`:
the mask is written turned by it (:func:`beam_seg.drawing.upright`), so it lines up with the image as every viewer
shows it, as the demo app does. Only the header is read otherwise (format, size, orientation), which also turns
what is not an image, or is too large to decode, into a dead letter before it reaches a batch. Pure functions, no
Beam.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import NamedTuple

from PIL import Image, UnidentifiedImageError

from beam_seg.drawing import EXIF_ORIENTATION, displayed_size
from beam_seg.predict.inputs import DeadLetter, NamedImage

__all__ = ["DEFAULT_MAX_PIXELS", "ImageInfo", "prepare_image"]

# Largest image accepted, in pixels: PIL's own decompression-bomb limit (~89.5 MP), as stage 1's default.
DEFAULT_MAX_PIXELS = 89_478_485
# Encodings the SavedModel decodes to the pixels PIL decodes (up to its JPEG IDCT), by PIL format → modes passed on
# unchanged.
_PASS_THROUGH: Mapping[str, frozenset[str]] = {
    "JPEG": frozenset({"RGB", "L"}),
    "PNG": frozenset({"RGB", "RGBA", "L", "LA", "P"}),
}
# What PIL raises for a file it identified but cannot decode (truncated, corrupt).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


class ImageInfo(NamedTuple):
    """One image on its way through the model (the key ``RunInference`` carries past it).

    Attributes:
        name: Its name (the mask is ``masks/<name>.png``).
        source: Where it came from.
        width: Width of the image as displayed (EXIF Orientation applied), and of its mask file.
        height: Height, likewise.
        reencoded: Whether the model gets a PNG re-encoded here rather than the source bytes.
        orientation: The EXIF Orientation (1: none; 2..8: how to turn the stored pixels for display).
    """

    name: str
    source: str
    width: int
    height: int
    reencoded: bool
    orientation: int = 1

    @property
    def stored_size(self) -> tuple[int, int]:
        """``(width, height)`` of the pixels as stored, which the model reads."""
        return displayed_size(self.width, self.height, self.orientation)


def _dead(image: NamedImage, reason: str, detail: str) -> DeadLetter:
    return DeadLetter(image.name, image.source, reason, detail)


def prepare_image(image: NamedImage, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[ImageInfo, bytes] | DeadLetter:
    """The image's :class:`ImageInfo` and the encoded bytes to give the model; or why it cannot be segmented.

    Args:
        image: The input, read.
        max_pixels: Largest image accepted, in pixels, checked from its header before anything is decoded.

    Returns:
        ``(info, model bytes)``, or a :class:`DeadLetter` (``empty_image``, ``unknown_format``, ``image_too_large``,
        ``undecodable_image``). A file whose pixels are corrupt but whose header reads may still pass here: the
        model's decoder then fails on it alone (:func:`beam_seg.inference.segment_batch`).
    """
    if not image.data:
        return _dead(image, "empty_image", "the file is empty")
    try:
        with Image.open(io.BytesIO(image.data)) as pil:
            width, height = pil.size
            if width * height > max_pixels:
                return _dead(
                    image, "image_too_large", f"{width}x{height} is over {max_pixels} pixels (a decompression bomb?)"
                )
            orientation = pil.getexif().get(EXIF_ORIENTATION, 1)
            orientation = orientation if orientation in range(2, 9) else 1
            shown = displayed_size(width, height, orientation)
            if pil.mode in _PASS_THROUGH.get(pil.format or "", ()):
                return ImageInfo(image.name, image.source, *shown, reencoded=False, orientation=orientation), image.data
            pil.load()
            rgb = pil.convert("RGB")
    except UnidentifiedImageError:
        return _dead(image, "unknown_format", "not an image PIL or the model can read (JPEG, PNG, GIF, BMP, WebP)")
    except Image.DecompressionBombError as e:
        return _dead(image, "image_too_large", str(e).splitlines()[0])
    except _DECODE_ERRORS as e:
        return _dead(image, "undecodable_image", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return ImageInfo(image.name, image.source, *shown, reencoded=True, orientation=orientation), buffer.getvalue()
