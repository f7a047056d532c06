"""Pure image functions: decode a PETS image and trimap, validate, convert, resize and encode them.

No Beam and no TensorFlow here, so every rule is unit-testable on bytes. Each rejection raises
:class:`BadInputError` whose ``reason`` is one of :data:`REASONS`, which the pipeline writes to its
dead-letter file; conversions that are *not* errors (CMYK, grayscale, RGBA, palette, a PNG named
``.jpg``, a dropped EXIF orientation tag) are recorded on :class:`PreparedPair` instead.

Input bytes are untrusted: a file that declares more than ``max_pixels`` pixels is refused from its header,
before anything is decoded, and any error a decoder raises on a file becomes that file's dead letter.

Orientation: pixels are used in their stored order, the order the trimaps were drawn in (TensorFlow's
decoders ignore EXIF too). A kept JPEG's EXIF Orientation tag is set to 1 (normal) in the stored bytes, so that
EXIF-aware readers (PIL's ``exif_transpose``, browsers) show the image the way its mask labels it.
"""

from __future__ import annotations

import dataclasses
import io
import struct

import numpy as np
from PIL import Image, UnidentifiedImageError

from beam_seg.data.options import DEFAULT_MAX_PIXELS

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "JPEG_QUALITY",
    "JPEG_SUBSAMPLING",
    "ORIENTATION_DROPPED",
    "REASONS",
    "BadInputError",
    "PreparedPair",
    "decode_png_mask",
    "decode_rgb",
    "drop_orientation",
    "prepare_pair",
]

# Re-encoded images (resized or converted) are JPEG at quality 95 with full-resolution chroma (4:4:4). PIL's default
# 4:2:0 halves the colour resolution, right where the 1-3 px border class lives; on a noisy 128 px image its mean
# absolute error is 22/255 against 3.1/255 for 4:4:4, for 2.0x the bytes (1.25x on photos; bench/README.md,
# "Stage 1: re-encoding").
JPEG_QUALITY = 95
JPEG_SUBSAMPLING = 0  # PIL's code for 4:4:4


# The ``conversion`` of a kept JPEG whose EXIF Orientation tag was set to 1.
ORIENTATION_DROPPED = "JPEG/RGB orientation tag dropped"

REASONS: tuple[str, ...] = (
    "missing_image",  # listed in a split file but no image file exists
    "duplicate_image",  # two image files share a name (e.g. X.jpg and X.png)
    "unknown_breed",  # no split lists, and the name's breed is not a PETS breed
    "missing_trimap",  # the image has no annotations/trimaps/<name>.png
    "unreadable_file",  # the image or trimap file cannot be read (permissions, vanished, I/O error)
    "empty_image",  # a zero-byte image file
    "image_too_large",  # the image or trimap declares more pixels than --max_pixels (a decompression bomb)
    "unknown_format",  # bytes that no image decoder recognises (e.g. a .mat file named .jpg)
    "undecodable_image",  # a recognised but truncated or corrupt image
    "undecodable_trimap",  # the trimap PNG cannot be decoded, or is not a single-channel image
    "size_mismatch",  # image and trimap sizes differ
    "bad_trimap_values",  # trimap values outside {1, 2, 3}, or a palette trimap whose colours are not grey
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
            (``"JPEG/CMYK"``, ``"JPEG/L"``, ``"PNG/RGBA"``, ``"PNG/P"`` …), :data:`ORIENTATION_DROPPED` for a
            kept JPEG whose EXIF Orientation tag was reset, else ``""``.
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


def _check_size(img: Image.Image, what: str, max_pixels: int) -> None:
    """Refuses an image whose header declares more than ``max_pixels`` pixels, before it is decoded."""
    if img.width * img.height > max_pixels:
        raise BadInputError(
            "image_too_large",
            f"{what} declares {img.width}x{img.height} = {img.width * img.height:,} pixels, "
            f"more than --max_pixels {max_pixels:,}",
        )


def _open(data: bytes, what: str, undecodable: str, max_pixels: int) -> Image.Image:
    """Opens and decodes untrusted bytes; every failure is a :class:`BadInputError`.

    Any exception a decoder raises is caught on purpose: the bytes are untrusted input, and PIL's plugins raise
    ``OSError``, ``SyntaxError``, ``ValueError``, ``struct.error``, ``IndexError`` … for corrupt files, which are
    the file's problem, not the job's.
    """
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if what == "trimap":
            raise BadInputError(
                undecodable, f"no image decoder recognises the trimap (starting {data[:8]!r})"
            ) from None
        raise BadInputError(
            "unknown_format", f"no image decoder recognises the bytes (starting {data[:8]!r})"
        ) from None
    except Image.DecompressionBombError as e:
        raise BadInputError("image_too_large", f"{what}: {e}") from None
    except Exception as e:  # Untrusted bytes: see the docstring.
        raise BadInputError(undecodable, f"{what} header cannot be read: {type(e).__name__}: {e}") from None
    _check_size(img, what, max_pixels)
    try:
        img.load()
    except Exception as e:  # Untrusted bytes: see the docstring.
        raise BadInputError(undecodable, f"{img.format} {what} cannot be decoded: {type(e).__name__}: {e}") from None
    return img


def _open_image(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise BadInputError("empty_image", "the image file has 0 bytes")
    return _open(data, "image", "undecodable_image", max_pixels)


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


def _palette_levels(trimap: Image.Image) -> np.ndarray:
    """The grey levels a palette trimap shows, per pixel; a colour that is not grey is a bad value.

    An editor may store a trimap as a palette image and reorder its palette: the indices then mean nothing, only
    the colours they point to do.
    """
    indices = np.asarray(trimap)
    palette = np.asarray(trimap.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    used = np.unique(indices)
    if used.size and int(used.max()) >= len(palette):
        raise BadInputError(
            "undecodable_trimap", f"palette trimap uses index {int(used.max())} but its palette has {len(palette)}"
        )
    colours = palette[used]
    coloured = colours[(colours[:, 0] != colours[:, 1]) | (colours[:, 1] != colours[:, 2])]
    if len(coloured):
        shown = [tuple(int(v) for v in c) for c in coloured[:5]]
        raise BadInputError(
            "bad_trimap_values", f"palette trimap shows colours {shown} (RGB), not the grey levels 1, 2, 3"
        )
    return palette[:, 0][indices]


def _open_trimap(data: bytes, max_pixels: int) -> np.ndarray:
    """The trimap's values as shown: grey levels of 8- and 16-bit greyscale, or of a palette's grey colours."""
    trimap = _open(data, "trimap", "undecodable_trimap", max_pixels)
    if trimap.mode == "P":
        return _palette_levels(trimap)
    if trimap.mode not in ("L", "I", "I;16", "I;16B"):
        raise BadInputError("undecodable_trimap", f"trimap has mode {trimap.mode!r}; expected a single-channel PNG")
    return np.asarray(trimap)


def _exif_orientation_offset(jpeg: bytes, tiff: int, end: int) -> tuple[int, str] | None:
    """Where IFD0's Orientation value sits in an EXIF block starting at ``tiff``, and the byte order."""
    order = {b"II": "<", b"MM": ">"}.get(jpeg[tiff : tiff + 2])
    if order is None or tiff + 8 > end:
        return None
    ifd = tiff + struct.unpack_from(order + "I", jpeg, tiff + 4)[0]
    if ifd + 2 > end:
        return None
    for i in range(struct.unpack_from(order + "H", jpeg, ifd)[0]):
        entry = ifd + 2 + 12 * i
        if entry + 12 > end:
            return None
        tag, kind, count = struct.unpack_from(order + "HHI", jpeg, entry)
        if tag == 0x0112 and kind == 3 and count == 1:  # Orientation, one SHORT
            return entry + 8, order
    return None


def drop_orientation(jpeg: bytes) -> tuple[bytes, int]:
    """Sets a JPEG's EXIF Orientation tag to 1 (normal), leaving every other byte as it was.

    Returns:
        The bytes (``jpeg`` itself when there was nothing to change) and the orientation they had (1 when the tag
        is absent or unreadable).
    """
    pos = 2  # after SOI
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no metadata after this
            break
        length = struct.unpack_from(">H", jpeg, pos + 2)[0]
        if marker == 0xE1 and jpeg[pos + 4 : pos + 10] == b"Exif\0\0":
            found = _exif_orientation_offset(jpeg, pos + 10, min(len(jpeg), pos + 2 + length))
            if found is not None:
                offset, order = found
                value = struct.unpack_from(order + "H", jpeg, offset)[0]
                if value == 1:
                    return jpeg, 1
                return jpeg[:offset] + struct.pack(order + "H", 1) + jpeg[offset + 2 :], value
        pos += 2 + length
    return jpeg, 1


def _encode_jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING)
    return buf.getvalue()


def prepare_pair(
    image_bytes: bytes, trimap_bytes: bytes, resize: int | None = None, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> PreparedPair:
    """Validates and converts one image and its trimap into record-ready bytes.

    The original JPEG bytes are kept when they are a valid RGB JPEG and no resize is asked (with an EXIF
    Orientation tag set to 1, see the module docstring); everything else is re-encoded as JPEG at quality
    :data:`JPEG_QUALITY`, without EXIF. Images are resized bilinearly (PIL antialiases when downscaling), masks
    with nearest neighbour so class ids are never interpolated.

    Args:
        image_bytes: The image file's bytes (any format PIL decodes).
        trimap_bytes: The trimap PNG's bytes, values 1=pet, 2=background, 3=border.
        resize: Square output side in pixels, or ``None`` to keep the source size.
        max_pixels: Largest image (and trimap) accepted, in pixels, checked from the headers.

    Returns:
        The prepared pair.

    Raises:
        BadInputError: with the dead-letter reason when the pair cannot become a record.
    """
    img = _open_image(image_bytes, max_pixels)
    source_format = img.format or "UNKNOWN"
    try:
        rgb, source_mode = _to_rgb(img)
    except Exception as e:  # Untrusted bytes, as in _open.
        raise BadInputError(
            "undecodable_image", f"{source_format}/{img.mode} image cannot be converted to RGB: {e}"
        ) from None
    conversion = "" if (source_format, source_mode) == ("JPEG", "") else f"{source_format}/{source_mode or 'RGB'}"
    trimap = _open_trimap(trimap_bytes, max_pixels)
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
    if keep_original:
        encoded, orientation = drop_orientation(image_bytes)
        if orientation != 1:
            conversion = ORIENTATION_DROPPED
    else:
        encoded = _encode_jpeg(rgb)
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
