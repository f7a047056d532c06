"""Tests of the pure image functions: conversions, every rejection reason, resizing rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from beam_seg.data import imaging


def _jpeg(pixels: np.ndarray, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
    trimap = np.full((40, 50), 2, np.uint8)
    trimap[10:30, 10:40] = 1
    trimap[10, 10:40] = 3
    return pixels, trimap


def test_valid_rgb_jpeg_is_kept_byte_for_byte(pair):
    pixels, trimap = pair
    data = _jpeg(pixels)
    out = imaging.prepare_pair(data, _png(Image.fromarray(trimap)))
    assert out.image == data
    assert out.conversion == ""
    assert (out.height, out.width) == (40, 50)
    mask = imaging.decode_png_mask(out.mask)
    np.testing.assert_array_equal(mask, trimap - 1)


@pytest.mark.parametrize(
    ("make", "conversion"),
    [
        (lambda p: _jpeg(p, "CMYK"), "JPEG/CMYK"),
        (lambda p: _jpeg(p, "L"), "JPEG/L"),
        (lambda p: _png(Image.fromarray(p).convert("RGBA")), "PNG/RGBA"),
        (lambda p: _png(Image.fromarray(p).convert("P", palette=Image.Palette.ADAPTIVE)), "PNG/P"),
        (lambda p: _png(Image.fromarray(p)), "PNG/RGB"),
    ],
)
def test_other_modes_and_formats_are_converted_to_rgb_jpeg(pair, make, conversion):
    pixels, trimap = pair
    out = imaging.prepare_pair(make(pixels), _png(Image.fromarray(trimap)))
    assert out.conversion == conversion
    decoded = Image.open(io.BytesIO(out.image))
    assert decoded.format == "JPEG" and decoded.mode == "RGB"
    assert decoded.size == (50, 40)


def test_rgba_transparency_is_flattened_on_white(pair):
    _, trimap = pair
    rgba = Image.new("RGBA", (50, 40), (0, 0, 0, 0))
    out = imaging.prepare_pair(_png(rgba), _png(Image.fromarray(trimap)))
    assert out.pixels.min() == 255


@pytest.mark.parametrize(
    ("image", "trimap", "reason"),
    [
        (b"", None, "empty_image"),
        (b"MATLAB 5.0 MAT-file, Platform: GLNXA64", None, "unknown_format"),
        ("truncated", None, "undecodable_image"),
        (None, b"not a png", "undecodable_trimap"),
        (None, "rgb", "undecodable_trimap"),
        (None, "small", "size_mismatch"),
        (None, "values", "bad_trimap_values"),
    ],
)
def test_each_bad_input_raises_its_reason(pair, image, trimap, reason):
    pixels, good_trimap = pair
    good_image = _jpeg(pixels)
    if image == "truncated":
        image = good_image[: len(good_image) // 2]
    if trimap == "rgb":
        trimap = _png(Image.fromarray(good_trimap).convert("RGB"))
    elif trimap == "small":
        trimap = _png(Image.fromarray(good_trimap[:20]))
    elif trimap == "values":
        bad = good_trimap.copy()
        bad[0, 0] = 7
        trimap = _png(Image.fromarray(bad))
    with pytest.raises(imaging.BadInputError) as e:
        imaging.prepare_pair(
            good_image if image is None else image, _png(Image.fromarray(good_trimap)) if trimap is None else trimap
        )
    assert e.value.reason == reason
    if reason == "bad_trimap_values":
        assert "[7]" in str(e.value)


def test_resize_uses_nearest_for_masks_and_keeps_class_ids(pair):
    pixels, trimap = pair
    out = imaging.prepare_pair(_jpeg(pixels), _png(Image.fromarray(trimap)), resize=17)
    mask = imaging.decode_png_mask(out.mask)
    assert mask.shape == (17, 17) and out.pixels.shape == (17, 17, 3)
    assert set(np.unique(mask)) <= {0, 1, 2}
    assert set(np.unique(mask)) == {0, 1, 2}  # A 1-px border row still survives nearest sampling here.
    assert Image.open(io.BytesIO(out.image)).size == (17, 17)
    assert (out.source_height, out.source_width) == (40, 50)


def test_unknown_reason_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown dead-letter reason 'oops'"):
        imaging.BadInputError("oops", "x")
