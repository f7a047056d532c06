"""Pure image functions: decode a PETS image and trimap, validate, convert, resize and encode them.

No Beam and no TensorFlow here, so every rule is unit-testable on bytes. Each rejection raises
:class:`BadInputError` whose ``reason`` is one of :data:`REASONS`, which the pipeline writes to its
dead-letter file; conversions that are *not* errors (CMYK, grayscale, RGBA, palette, a PNG named
``.jpg``) are recorded on :class:`PreparedPair` instead.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "JPEG_QUALITY",
    "REASONS",
    "BadInputError",
    "PreparedPair",
    "decode_png_mask",
    "decode_rgb",
    "prepare_pair",
]

# Quality for images that must be re-encoded (resized or converted); the spec asks for >= 95.
JPEG_QUALITY = 95

REASONS: tuple[str, ...] = (
    "missing_image",  # listed in a split file but no image file exists
    "duplicate_image",  # two image files share a name (e.g. X.jpg and X.png)
    "unknown_breed",  # no split lists, and the name's breed is not a PETS breed
    "missing_trimap",  # the image has no annotations/trimaps/<name>.png
    "empty_image",  # a zero-byte image file
    "unknown_format",  # bytes that no image decoder recognises (e.g. a .mat file named .jpg)
    "undecodable_image",  # a recognised but truncated or corrupt image
    "undecodable_trimap",  # the trimap PNG cannot be decoded, or is not a single-channel image
    "size_mismatch",  # image and trimap sizes differ
    "bad_trimap_values",  # trimap values outside {1, 2, 3}
)


class BadInputError(ValueError):
    """An input file that cannot become a record; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown dead-letter reason {reason!r}; expected one of {REASONS}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class PreparedPair:
    """A validated image/mask pair ready for a record, with what was done to it.

    Attributes:
        image: JPEG bytes (the original bytes when they could be kept).
        mask: PNG bytes of a uint8 mask with values 0=pet, 1=background, 2=border.
        height: Stored image height in pixels (after any resize).
        width: Stored image width in pixels.
        source_height: Height of the source image.
        source_width: Width of the source image.
        conversion: ``"<source format>/<source mode>"`` when the source was not an RGB JPEG
            (``"JPEG/CMYK"``, ``"JPEG/L"``, ``"PNG/RGBA"``, ``"PNG/P"`` …), else ``""``.
        rgb_image: The stored RGB image (for statistics; :attr:`pixels` as an array).
        mask_image: The stored mask as a mode ``L`` image (for statistics; :attr:`mask_pixels`).
    """

    image: bytes
    mask: bytes
    height: int
    width: int
    source_height: int
    source_width: int
    conversion: str
    rgb_image: Image.Image
    mask_image: Image.Image

    @property
    def pixels(self) -> np.ndarray:
        """The stored RGB pixels as uint8 ``[height, width, 3]``."""
        return np.asarray(self.rgb_image)

    @property
    def mask_pixels(self) -> np.ndarray:
        """The stored mask as uint8 ``[height, width]``, values 0=pet, 1=background, 2=border."""
        return np.asarray(self.mask_image)


def _open_image(data: bytes) -> Image.Image:
    if not data:
        raise BadInputError("empty_image", "the image file has 0 bytes")
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise BadInputError(
            "unknown_format", f"no image decoder recognises the bytes (starting {data[:8]!r})"
        ) from None
    try:
        img.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise BadInputError("undecodable_image", f"{img.format} image cannot be decoded: {e}") from None
    return img


def _to_rgb(img: Image.Image) -> tuple[Image.Image, str]:
    """Converts any decoded mode to RGB; returns the image and the mode it was converted from."""
    if img.mode == "RGB":
        return img, ""
    source_mode = img.mode
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        # Flatten on white: transparent areas of a photo are background, not black.
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat, source_mode
    return img.convert("RGB"), source_mode


def _open_trimap(data: bytes) -> np.ndarray:
    try:
        trimap = Image.open(io.BytesIO(data))
        trimap.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise BadInputError("undecodable_trimap", f"trimap cannot be decoded: {e}") from None
    if trimap.mode not in ("L", "P", "I", "I;16"):
        raise BadInputError("undecodable_trimap", f"trimap has mode {trimap.mode!r}; expected a single-channel PNG")
    return np.asarray(trimap)


def _encode_jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def prepare_pair(image_bytes: bytes, trimap_bytes: bytes, resize: int | None = None) -> PreparedPair:
    """Validates and converts one image and its trimap into record-ready bytes.

    The original JPEG bytes are kept untouched when they are a valid RGB JPEG and no resize is
    asked; everything else is re-encoded as JPEG at quality :data:`JPEG_QUALITY`. Images are
    resized bilinearly (PIL antialiases when downscaling), masks with nearest neighbour so class
    ids are never interpolated.

    Args:
        image_bytes: The image file's bytes (any format PIL decodes).
        trimap_bytes: The trimap PNG's bytes, values 1=pet, 2=background, 3=border.
        resize: Square output side in pixels, or ``None`` to keep the source size.

    Returns:
        The prepared pair.

    Raises:
        BadInputError: with the dead-letter reason when the pair cannot become a record.
    """
    img = _open_image(image_bytes)
    source_format = img.format or "UNKNOWN"
    rgb, source_mode = _to_rgb(img)
    conversion = "" if (source_format, source_mode) == ("JPEG", "") else f"{source_format}/{source_mode or 'RGB'}"
    trimap = _open_trimap(trimap_bytes)
    if trimap.shape != (rgb.height, rgb.width):
        raise BadInputError(
            "size_mismatch",
            f"image is {rgb.width}x{rgb.height} but trimap is {trimap.shape[1]}x{trimap.shape[0]} (width x height)",
        )
    if trimap.dtype != np.uint8:  # 16/32-bit PNGs: only values that fit uint8 can be valid.
        if trimap.min() < 0 or trimap.max() > 255:
            raise BadInputError(
                "bad_trimap_values", f"trimap values span {trimap.min()}..{trimap.max()}, outside {{1, 2, 3}}"
            )
        trimap = trimap.astype(np.uint8)
    mask = trimap - np.uint8(1)  # 0 wraps to 255, so every value outside {1, 2, 3} lands above 2.
    outside = mask > 2
    if outside.any():
        unexpected = np.unique(trimap[outside]).tolist()[:10]
        raise BadInputError("bad_trimap_values", f"trimap has values {unexpected} outside {{1, 2, 3}}")

    keep_original = source_format == "JPEG" and not conversion and resize is None
    mask_image = Image.fromarray(mask)
    if resize is not None:
        rgb = rgb.resize((resize, resize), Image.Resampling.BILINEAR)
        mask_image = mask_image.resize((resize, resize), Image.Resampling.NEAREST)
    encoded = image_bytes if keep_original else _encode_jpeg(rgb)
    mask_png = io.BytesIO()
    mask_image.save(mask_png, format="PNG")
    return PreparedPair(
        image=encoded,
        mask=mask_png.getvalue(),
        height=rgb.height,
        width=rgb.width,
        source_height=img.height,
        source_width=img.width,
        conversion=conversion,
        rgb_image=rgb,
        mask_image=mask_image,
    )


def decode_png_mask(data: bytes) -> np.ndarray:
    """Decodes a stored mask PNG to a uint8 ``[height, width]`` array."""
    return np.asarray(Image.open(io.BytesIO(data)))


def decode_rgb(data: bytes) -> np.ndarray:
    """Decodes stored image bytes to uint8 ``[height, width, 3]`` RGB."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
