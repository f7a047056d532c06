"""Tests of the pure image functions: conversions, every rejection reason, resizing rules."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import declaring_size
from PIL import Image, ImageOps

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


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # The job's DoFn silences it in setup().
@pytest.mark.parametrize("bomb", ["image", "trimap"])
def test_a_decompression_bomb_is_refused_from_its_header(pair, bomb):
    pixels, trimap = pair
    image, mask = _jpeg(pixels), _png(Image.fromarray(trimap))
    if bomb == "image":
        image = declaring_size(image, 12000, 12000)
    else:
        mask = declaring_size(mask, 12000, 12000)
    with pytest.raises(imaging.BadInputError, match=f"{bomb} declares 12000x12000 = 144,000,000 pixels") as e:
        imaging.prepare_pair(image, mask)
    assert e.value.reason == "image_too_large"
    # Past PIL's own hard limit (twice its warning limit): the same reason, from PIL's check.
    with pytest.raises(imaging.BadInputError, match="image: Image size .400000000 pixels. exceeds limit") as e:
        imaging.prepare_pair(declaring_size(_jpeg(pixels), 20000, 20000), _png(Image.fromarray(trimap)))
    assert e.value.reason == "image_too_large"


def test_max_pixels_is_the_limit(pair):
    pixels, trimap = pair
    image, mask = _jpeg(pixels), _png(Image.fromarray(trimap))
    assert imaging.prepare_pair(image, mask, max_pixels=40 * 50).height == 40
    with pytest.raises(imaging.BadInputError, match="more than --max_pixels 1,999") as e:
        imaging.prepare_pair(image, mask, max_pixels=40 * 50 - 1)
    assert e.value.reason == "image_too_large"


def test_a_palette_trimap_is_read_by_the_grey_levels_it_shows(pair):
    pixels, trimap = pair
    # An editor's palette: index 1 shows grey 2, index 2 shows grey 3, index 3 shows grey 1.
    indices = np.select([trimap == 1, trimap == 2, trimap == 3], [3, 1, 2]).astype(np.uint8)
    palette_trimap = Image.fromarray(indices, "P")
    palette_trimap.putpalette([0, 0, 0, 2, 2, 2, 3, 3, 3, 1, 1, 1])
    out = imaging.prepare_pair(_jpeg(pixels), _png(palette_trimap))
    np.testing.assert_array_equal(out.mask_pixels, trimap - 1)


def test_a_palette_trimap_with_colours_is_rejected_naming_them(pair):
    pixels, trimap = pair
    coloured = Image.fromarray(trimap, "P")
    coloured.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    with pytest.raises(imaging.BadInputError, match=r"colours \[\(255, 0, 0\), \(0, 255, 0\), \(0, 0, 255\)\]") as e:
        imaging.prepare_pair(_jpeg(pixels), _png(coloured))
    assert e.value.reason == "bad_trimap_values"


def test_a_16_bit_trimap_is_read_like_an_8_bit_one(pair):
    pixels, trimap = pair
    sixteen = Image.fromarray(trimap.astype(np.uint16))
    assert sixteen.mode.startswith("I")
    out = imaging.prepare_pair(_jpeg(pixels), _png(sixteen))
    np.testing.assert_array_equal(out.mask_pixels, trimap - 1)


def _with_orientation(data: bytes, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "beam_seg test camera"  # Make: another tag that must survive
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    return buf.getvalue()


def test_a_kept_jpeg_loses_its_orientation_tag_and_nothing_else(pair):
    pixels, trimap = pair
    rotated = _with_orientation(_jpeg(pixels), 6)
    out = imaging.prepare_pair(rotated, _png(Image.fromarray(trimap)))
    assert out.conversion == imaging.ORIENTATION_DROPPED
    assert len(out.image) == len(rotated) and sum(a != b for a, b in zip(out.image, rotated, strict=True)) == 1
    stored = Image.open(io.BytesIO(out.image))
    assert stored.getexif()[0x0112] == 1 and stored.getexif()[0x010F] == "beam_seg test camera"
    # Every EXIF-aware reader now shows the pixels as the mask labels them.
    upright = np.asarray(ImageOps.exif_transpose(stored))
    np.testing.assert_array_equal(upright, np.asarray(Image.open(io.BytesIO(rotated))))
    assert upright.shape[:2] == out.mask_pixels.shape
    # A resized (re-encoded) image carries no EXIF at all.
    assert (
        0x0112
        not in Image.open(io.BytesIO(imaging.prepare_pair(rotated, _png(Image.fromarray(trimap)), 16).image)).getexif()
    )


def test_drop_orientation_leaves_other_jpegs_alone(pair):
    pixels, _ = pair
    plain = _jpeg(pixels)
    assert imaging.drop_orientation(plain) == (plain, 1)
    upright = _with_orientation(plain, 1)
    assert imaging.drop_orientation(upright) == (upright, 1)
    assert imaging.drop_orientation(b"\xff\xd8\xff\xe1\x00") == (b"\xff\xd8\xff\xe1\x00", 1)  # Truncated: no change.


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda jpeg: jpeg[:200] + bytes(range(256)) * 4,  # Entropy-coded data replaced by garbage.
        lambda jpeg: jpeg.replace(b"\xff\xc0", b"\xff\xc3", 1),  # A lossless-JPEG frame PIL cannot decode.
        lambda jpeg: jpeg[:30],  # Cut inside the header.
    ],
)
def test_any_decoder_error_is_a_dead_letter(pair, corrupt):
    pixels, trimap = pair
    with pytest.raises(imaging.BadInputError) as e:
        imaging.prepare_pair(corrupt(_jpeg(pixels)), _png(Image.fromarray(trimap)))
    assert e.value.reason in ("undecodable_image", "unknown_format")


def test_re_encoded_images_keep_full_chroma_and_stay_close_to_the_source():
    """A noisy picture is the worst case for JPEG: 4:2:0 chroma would be off by ~22/255 on average."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:128, 0:128]
    base = np.stack([x * 2, y * 2, x + y], -1).astype(np.float32)
    noisy = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    trimap = _png(Image.fromarray(np.full((128, 128), 2, np.uint8)))
    out = imaging.prepare_pair(_png(Image.fromarray(noisy)), trimap)  # A PNG is converted: re-encoded as JPEG.
    assert out.conversion == "PNG/RGB"
    stored = Image.open(io.BytesIO(out.image))
    assert stored.layer == [(1, 1, 1, 0), (2, 1, 1, 1), (3, 1, 1, 1)]  # 4:4:4: every component sampled 1x1
    error = np.abs(np.asarray(stored.convert("RGB")).astype(int) - noisy.astype(int)).mean()
    assert error < 4.0, error
