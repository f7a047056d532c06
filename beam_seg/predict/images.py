"""Images checked and made ready for the model: the bytes its ``serving_default`` gets, the size the mask gets.

The model decodes and resizes inside its graph, so most images go to it as they are: JPEG (RGB or grey) and 8-bit
PNG. Like the demo app, an image is segmented as it is displayed: one with an EXIF orientation, and formats the app
does not pass through (CMYK JPEG, GIF, BMP, WebP, 16-bit PNG, ...), are decoded here, turned upright and re-encoded
losslessly as PNG. Only the header is read otherwise (format, size, orientation), which also turns what is not an
image, or is too large to decode, into a dead letter before it reaches a batch. Pure functions, no Beam.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import NamedTuple

from PIL import Image, ImageOps, UnidentifiedImageError

from beam_seg.predict.inputs import DeadLetter, NamedImage

__all__ = ["DEFAULT_MAX_PIXELS", "ImageInfo", "prepare_image"]

# Largest image accepted, in pixels: PIL's own decompression-bomb limit (~89.5 MP), as stage 1's default.
DEFAULT_MAX_PIXELS = 89_478_485
_EXIF_ORIENTATION = 0x0112
# Encodings the SavedModel decodes itself as a viewer shows them, by PIL format → modes passed on unchanged (the
# demo app's rule, apps/gradio/semantic_segmentation/segmenter.py).
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
        width: Width of the image as displayed (EXIF orientation applied), and of its mask.
        height: Height, likewise.
        reencoded: Whether the model gets a PNG re-encoded here rather than the source bytes.
    """

    name: str
    source: str
    width: int
    height: int
    reencoded: bool


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
            orientation = pil.getexif().get(_EXIF_ORIENTATION, 1)
            if orientation in (0, 1) and pil.mode in _PASS_THROUGH.get(pil.format or "", ()):
                return ImageInfo(image.name, image.source, width, height, reencoded=False), image.data
            pil.load()
            upright = ImageOps.exif_transpose(pil) if orientation not in (0, 1) else pil
            rgb = upright.convert("RGB")
    except UnidentifiedImageError:
        return _dead(image, "unknown_format", "not an image PIL or the model can read (JPEG, PNG, GIF, BMP, WebP)")
    except Image.DecompressionBombError as e:
        return _dead(image, "image_too_large", str(e).splitlines()[0])
    except _DECODE_ERRORS as e:
        return _dead(image, "undecodable_image", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return ImageInfo(image.name, image.source, rgb.width, rgb.height, reencoded=True), buffer.getvalue()
