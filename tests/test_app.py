"""Unit tests of the Gradio Space template ``apps/gradio/semantic_segmentation`` (no server, no browser).

The template is not a package (a Space runs ``python app.py`` in its folder), so its folder is put on
``sys.path`` and ``app.py`` is imported under a unique module name. The pure prediction runs against a fake
model (exact colours, geometry and percentages) and against the LiteRT model of a tiny U-Net trained once by the
real pipeline (sample data -> ``tfrecord_gen`` -> ``train``, which writes ``model.tflite``); the Hub mode and its
load errors use the real ``huggingface_hub`` client talking HTTP to the local Hub test double
(``tests/hubserver/``). The ``spaces`` package (ZeroGPU) only works on Hugging Face's infrastructure and is not
installed here: a stand-in module is injected to test the app's ZeroGPU branch.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import yaml
from conftest import free_port
from hubserver import DEFAULT_TOKEN, DEFAULT_USER, HubServer
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "apps" / "gradio" / "semantic_segmentation"
MODEL_REPO = f"{DEFAULT_USER}/pets-unet"
TINY_SIZE = 32
PALETTE = np.array([[255, 127, 14], [31, 119, 180], [255, 221, 0]], np.uint8)
CLASSES = ("pet", "background", "border")
MODEL_FILES = {"model.tflite", "model_config.json"}

if str(TEMPLATE) not in sys.path:
    sys.path.insert(0, str(TEMPLATE))  # app.py does `import segmenter`, as in the Space.
import segmenter  # noqa: E402


def load_app_module(app_dir: Path = TEMPLATE, name: str = "beam_seg_space_app") -> ModuleType:
    """Imports ``<app_dir>/app.py`` under ``name`` (it builds the Blocks; it loads no model)."""
    spec = importlib.util.spec_from_file_location(name, app_dir / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def train_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny U-Net trained by the real stages, once per pytest session (shared with test_app_browser.py).

    20 sample images -> 32x32 TFRecords (Beam, in-memory runner) -> 1 epoch of 2 steps of a 2-level U-Net
    with 4 base filters: about 30 s on 2 CPU cores. The result is meaningless but has the real layout
    and signatures of a training output directory.
    """
    from beam_seg.data import job as tfrecord_gen
    from beam_seg.data import sample as sample_data
    from beam_seg.train import job as train

    root = tmp_path_factory.getbasetemp() / "app-tiny-model"
    model_dir = root / "model"
    if (model_dir / "model_config.json").is_file():
        return str(model_dir)
    sample_data.make_sample_data(str(root / "raw"), num_images=20, min_size=48, max_size=96, seed=0)
    assert (
        tfrecord_gen.run(
            [
                "--input",
                str(root / "raw"),
                "--output_dir",
                str(root / "tfrecords"),
                "--resize",
                str(TINY_SIZE),
                "--val_fraction",
                "0.3",
                "--direct_running_mode=in_memory",
                "--direct_num_workers=1",
            ]
        )
        == 0
    )
    assert (
        train.run(
            [
                "--data_dir",
                str(root / "tfrecords"),
                "--output_dir",
                str(model_dir),
                "--epochs",
                "1",
                "--image_size",
                str(TINY_SIZE),
                "--batch_size",
                "4",
                "--base_filters",
                "4",
                "--depth",
                "2",
                "--steps_per_epoch",
                "2",
                "--num_predictions",
                "1",
                "--seed",
                "1",
                "--no_validate_records",
            ]
        )
        == 0
    )
    return str(model_dir)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return train_tiny_model(tmp_path_factory)


@pytest.fixture(scope="module")
def app_module() -> ModuleType:
    return load_app_module()


def _encode(pixels: np.ndarray | Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    (pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _with_orientation(pixels: np.ndarray, orientation: int, fmt: str = "PNG") -> bytes:
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    return _encode(image, fmt, exif=exif)


# A 4x4 mask: left half pet, right half background, the last row border.
FAKE_MASK = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]], np.uint8)


class FakeModel:
    """Stands in for a SegmentationModel: one-hot probabilities of ``mask`` whatever the input; records inputs."""

    class_names = CLASSES
    palette = PALETTE

    def __init__(self, mask: np.ndarray = FAKE_MASK, probabilities: np.ndarray | None = None) -> None:
        self.mask = mask
        self.probabilities = np.eye(len(CLASSES), dtype=np.float32)[mask] if probabilities is None else probabilities
        self.image_size = mask.shape[0]
        self.seen: list[np.ndarray] = []

    def __call__(self, pixels: np.ndarray) -> segmenter.Prediction:
        self.seen.append(pixels)
        return segmenter.Prediction(self.mask, self.probabilities)


def _local_lazy(model_dir: str) -> segmenter.LazyModel:
    return segmenter.LazyModel(
        segmenter.ModelSource.from_env({"BEAM_SEG_MODEL_DIR": model_dir}, repo_id=None, version=None)
    )


def _hub_source(**overrides: str | None) -> segmenter.ModelSource:
    values = {"repo_id": MODEL_REPO, "version": "v1", "revision": None}
    values.update(overrides)
    return segmenter.ModelSource.from_env(os.environ, **values)


def _load_error(source: segmenter.ModelSource) -> str:
    with pytest.raises(segmenter.ModelLoadError) as info:
        segmenter.LazyModel(source).get()
    return str(info.value)


def _litert_mask(model_dir: str, pixels: np.ndarray) -> np.ndarray:
    """The mask of ``model.tflite`` for a photo resized as documented, straight from the LiteRT interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=os.path.join(model_dir, "model.tflite")).get_signature_runner("serving_default")
    size = int(runner.get_input_details()["image"]["shape"][1])
    resized = np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))
    return runner(image=resized[None])["mask"][0]


# --- The pure prediction function -----------------------------------------------------------------


def test_segment_draws_legend_colours_smoothly_upsampled_with_exact_percentages() -> None:
    pixels = np.full((8, 12, 3), (200, 40, 100), np.uint8)
    model = FakeModel()
    result = segmenter.segment(_encode(pixels, "PNG"), model)

    # The model got the photo resized to its 4x4 input with PIL's bilinear filter.
    (seen,) = model.seen
    np.testing.assert_array_equal(seen, np.asarray(Image.fromarray(pixels).resize((4, 4), Image.Resampling.BILINEAR)))
    assert result.overlay.shape == result.mask.shape == (8, 12, 3)
    assert result.overlay.dtype == result.mask.dtype == np.uint8
    np.testing.assert_array_equal(result.class_mask, FAKE_MASK)
    # Probabilities upsampled bilinearly, then argmax: the class edges fall where the interpolated probabilities
    # cross, here on the 2x3 scaled block edges.
    ids = np.ones((8, 12), np.intp)
    ids[:6, :6] = 0
    ids[6:] = 2
    np.testing.assert_array_equal(result.mask, PALETTE[ids])
    # Each class blended in its colour at its opacity; the pet also outlined, 2 px wide, opaque, in its colour
    # (not along the picture's frame).
    alpha = np.array([0.5, 0.25, 0.85])[ids][..., None]
    expected = np.rint((1 - alpha) * pixels + alpha * PALETTE[ids]).astype(np.uint8)
    outline = (ids == 0) & ((np.arange(12)[None, :] >= 4) | (np.arange(8)[:, None] >= 4))
    expected[outline] = PALETTE[0]
    np.testing.assert_array_equal(result.overlay, expected)
    assert result.percentages == {"pet": 37.5, "background": 37.5, "border": 25.0}
    assert list(result.percentages) == list(CLASSES)


def test_upsampling_is_smooth_not_blocky_and_exact_on_the_models_grid() -> None:
    # Pet probability rising left to right across 4 columns: 0, 0.2, 0.4, 1.0. Nearest-neighbour scaling to 40
    # columns would switch to pet at column 30 (the last block); bilinear crosses 0.5 at grid x = 2 + 1/6, i.e.
    # output column (2.1667 + 0.5) * 10 - 0.5 = 26.2, so pet starts at column 27.
    pet = np.tile(np.array([0.0, 0.2, 0.4, 1.0], np.float32), (4, 1))
    probabilities = np.stack([pet, 1 - pet, np.zeros_like(pet)], axis=-1)
    ids = segmenter.upsample_classes(probabilities, (40, 8))
    assert ids.shape == (8, 40)
    assert (ids[:, :27] == 1).all() and (ids[:, 27:] == 0).all()
    # At the model's own size nothing moves.
    rng = np.random.default_rng(0)
    random = rng.dirichlet(np.ones(3), size=(16, 16)).astype(np.float32)
    np.testing.assert_array_equal(segmenter.upsample_classes(random, (16, 16)), random.argmax(-1))


def test_segment_scales_large_images_down_for_display() -> None:
    model = FakeModel()
    pixels = np.random.default_rng(1).integers(0, 256, (300, 600, 3), dtype=np.uint8)
    result = segmenter.segment(_encode(pixels, "PNG"), model, max_side=150)
    assert result.overlay.shape == (75, 150, 3) and result.mask.shape == (75, 150, 3)
    # The model still gets the full-size original, resized once to its input.
    np.testing.assert_array_equal(model.seen[0], segmenter.model_input(pixels, 4))


def test_model_sees_stored_pixels_and_the_pictures_are_turned_by_exif() -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    plain_model, rotated_model = FakeModel(), FakeModel()
    plain = segmenter.segment(_encode(pixels, "PNG"), plain_model)
    for fmt in ("PNG", "JPEG"):
        rotated_model.seen.clear()
        data = _with_orientation(pixels, 6, fmt)  # 6: shown rotated 90° clockwise.
        decoded = segmenter.read_image(data)
        assert decoded.orientation == 6 and decoded.pixels.shape == (20, 30, 3)  # Stored order, tag not applied.
        rotated = segmenter.segment(data, rotated_model)
        if fmt == "PNG":  # Lossless: the model got exactly the stored pixels, as in training.
            np.testing.assert_array_equal(rotated_model.seen[0], plain_model.seen[0])
            # Overlay and mask are the plain ones, turned upright together (as PIL's exif_transpose turns the photo).
            for shown, base in ((rotated.overlay, plain.overlay), (rotated.mask, plain.mask)):
                np.testing.assert_array_equal(shown, np.asarray(Image.fromarray(base).transpose(Image.ROTATE_270)))
        assert rotated.overlay.shape == rotated.mask.shape == (30, 20, 3)
        np.testing.assert_array_equal(rotated.class_mask, FAKE_MASK)  # The model's grid stays in stored order.
    # Every orientation turns the pictures as exif_transpose turns the photo.
    from PIL import ImageOps

    for orientation in range(1, 9):
        shown = segmenter.segment(_with_orientation(pixels, orientation), FakeModel()).mask
        photo = ImageOps.exif_transpose(Image.open(io.BytesIO(_with_orientation(pixels, orientation))))
        assert shown.shape[:2] == (photo.height, photo.width), orientation


def test_the_app_draws_and_turns_pictures_as_beam_seg_does() -> None:
    """The Space is standalone (no beam_seg import): its copy of the drawing code must stay beam_seg.drawing's."""
    from beam_seg import drawing
    from beam_seg.pets import MASK_CLASSES, PALETTE

    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, size=(37, 53)).astype(np.uint8)
    mask[5:30, 10:40] = 0  # A pet region, outlined.
    palette = np.array(PALETTE, np.uint8)
    assert np.array_equal(
        segmenter.overlay(pixels, mask, palette, MASK_CLASSES), drawing.overlay(pixels, mask, palette, MASK_CLASSES)
    )
    for orientation in range(1, 9):
        assert np.array_equal(segmenter._upright(pixels, orientation), drawing.upright(pixels, orientation))


def test_read_image_decodes_every_format_to_rgb() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for data in (_encode(pixels, "PNG"), _encode(pixels, "WEBP", lossless=True), _encode(pixels, "BMP")):
        np.testing.assert_array_equal(segmenter.read_image(data).pixels, pixels)
    cmyk = segmenter.read_image(_encode(Image.fromarray(pixels).convert("CMYK"), "JPEG"))
    assert cmyk.pixels.shape == (20, 30, 3) and cmyk.pixels.dtype == np.uint8
    rgba = np.dstack([pixels, np.full((20, 30), 7, np.uint8)])
    np.testing.assert_array_equal(segmenter.read_image(_encode(rgba, "PNG")).pixels, pixels)  # Alpha dropped.
    # 16-bit greyscale keeps its top 8 bits (as TensorFlow's PNG decoder), not PIL's clipping to 255.
    grey16 = Image.fromarray(np.array([[0, 256, 65535]], np.uint16))
    np.testing.assert_array_equal(segmenter.read_image(_encode(grey16, "PNG")).pixels[0, :, 0], [0, 1, 255])


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, not an image", b"%PDF-1.4 ...", _encode(np.zeros((40, 40, 3), np.uint8), "JPEG")[:200]],
    ids=["empty", "text", "pdf", "truncated-jpeg"],
)
def test_non_image_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(
        segmenter.NotAnImageError,
        match=r"^The file 'notes\.txt' is not an image this app can read: "
        r"upload a JPEG or PNG picture",
    ):
        segmenter.segment(data, FakeModel(), name="notes.txt")


def test_oversized_image_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(np.zeros((64, 64, 3), np.uint8), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels > 2x the limit: PIL refuses it.
    with pytest.raises(segmenter.NotAnImageError, match="^The image 'big.png' has too many pixels to process"):
        segmenter.segment(data, FakeModel(), name="big.png")


def test_lazy_model_loads_once_across_threads_and_retries_after_failure() -> None:
    calls = []
    gate = threading.Event()

    def loader(source: segmenter.ModelSource) -> FakeModel:
        calls.append(source)
        gate.wait(5)
        if len(calls) == 1:
            raise segmenter.ModelLoadError("first load fails")
        return FakeModel()

    lazy = segmenter.LazyModel(segmenter.ModelSource(), loader=loader)
    gate.set()
    with pytest.raises(segmenter.ModelLoadError, match="first load fails"):
        lazy.get()
    assert not lazy.loaded
    gate.clear()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(lazy.get())) for _ in range(6)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 2 and len(results) == 6 and len({id(r) for r in results}) == 1 and lazy.loaded


def test_summary_bars_are_in_the_legend_colours(app_module: ModuleType) -> None:
    lazy = segmenter.LazyModel(segmenter.ModelSource(), loader=lambda _: FakeModel())
    assert app_module.summary_html(lazy, {"pet": 0.5}) == ""  # Nothing before the model is loaded.
    lazy.get()
    page = app_module.summary_html(lazy, {"border": 0.25, "background": 0.375, "pet": 0.375})
    rows = re.findall(r'data-class="(\w+)" data-percent="([\d.]+)" data-colour="rgb\((\d+),(\d+),(\d+)\)"', page)
    assert [name for name, *_ in rows] == list(CLASSES)  # Class order, whatever order the fractions came in.
    assert [float(p) for _, p, *_ in rows] == [37.5, 37.5, 25.0]
    np.testing.assert_array_equal([[int(c) for c in rgb] for _, _, *rgb in rows], PALETTE)
    for (r, g, b), percent in zip(PALETTE.tolist(), ("37.50", "37.50", "25.00"), strict=True):
        assert f"width:{percent}%;background:rgb({r},{g},{b})" in page  # Each bar drawn in its class colour.
    assert "pet 50%, background 25%, border 85%" in page and "outlined" in page


# --- ZeroGPU ---------------------------------------------------------------------------------------------


def test_zero_gpu_branch_declares_a_gpu_function_that_no_request_uses(
    tiny_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for Hugging Face's `spaces` package, which only works on their infrastructure: its GPU
    # decorator records what it wraps and counts calls of the wrapped function.
    decorated, calls = [], []

    def gpu(fn):
        decorated.append(fn)

        def wrapper(*args, **kwargs):
            calls.append(fn.__name__)
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setitem(sys.modules, "spaces", SimpleNamespace(GPU=gpu))
    monkeypatch.setenv("BEAM_SEG_MODEL_DIR", tiny_model)
    app = load_app_module(name="beam_seg_space_app_zerogpu")
    assert [fn.__name__ for fn in decorated] == ["zero_gpu_entry"]
    assert isinstance(app.zero_gpu_entry(), str) and calls == ["zero_gpu_entry"]  # Callable, if ever called.
    calls.clear()
    # No event of the page calls it: every request (/predict and the summary) runs on the CPU.
    assert app.zero_gpu_entry not in [f.fn for f in app.demo.fns.values()]
    event_fns = [f.fn for f in app.demo.fns.values()]
    predict = next(fn for fn in event_fns if fn.__name__ == "predict")
    overlay, _, label = predict(str(sorted((TEMPLATE / "examples").glob("*.jpg"))[0]))
    assert overlay.ndim == 3 and sum(label.values()) == pytest.approx(1.0) and calls == []


def test_without_spaces_the_app_declares_no_gpu_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError, as off Spaces.
    app = load_app_module(name="beam_seg_space_app_cpu")
    assert app.spaces is None and not hasattr(app, "zero_gpu_entry")


# --- The real LiteRT model of the training stage -----------------------------------------------------


def test_real_model_prediction_equals_the_litert_models_mask(tiny_model: str) -> None:
    model = segmenter.SegmentationModel.from_dir(tiny_model)
    config = json.loads(Path(tiny_model, "model_config.json").read_text())
    assert model.class_names == tuple(config["classes"]) and model.image_size == config["image_size"] == TINY_SIZE
    np.testing.assert_array_equal(model.palette, [config["palette"][c] for c in config["classes"]])

    for example in sorted((TEMPLATE / "examples").iterdir()):
        data = example.read_bytes()
        result = segmenter.segment(data, model)
        photo = np.asarray(Image.open(example).convert("RGB"))
        assert result.overlay.shape == result.mask.shape == photo.shape and result.overlay.dtype == np.uint8
        assert {tuple(c) for c in result.mask.reshape(-1, 3)} <= {tuple(c) for c in model.palette.tolist()}
        assert list(result.percentages) == list(CLASSES)
        assert sum(result.percentages.values()) == pytest.approx(100.0)
        # The app's mask on the model's grid is the LiteRT interpreter's own for the same photo.
        assert result.class_mask.shape == (TINY_SIZE, TINY_SIZE) and result.class_mask.dtype == np.uint8
        np.testing.assert_array_equal(result.class_mask, _litert_mask(tiny_model, photo))

    # A photo of the model's own size: the shown mask is the model's mask, pixel for pixel (no shift, no blur).
    square = np.asarray(Image.open(sorted((TEMPLATE / "examples").glob("*.png"))[0]).convert("RGB").resize((32, 32)))
    result = segmenter.segment(_encode(square, "PNG"), model)
    np.testing.assert_array_equal(result.mask, model.palette[result.class_mask])


def test_app_masks_agree_with_the_saved_model(tiny_model: str) -> None:
    from beam_seg.loader import load_model

    saved = load_model(tiny_model)  # TensorFlow: the reference the LiteRT export is checked against.
    model = segmenter.SegmentationModel.from_dir(tiny_model)
    decided = 0
    for example in sorted((TEMPLATE / "examples").iterdir()):
        expected = saved(example.read_bytes())
        top2 = np.sort(expected.probabilities[0], axis=-1)[..., -2:]
        clear = top2[..., 1] - top2[..., 0] > 0.01  # The tiny model is nearly undecided on most pixels.
        mask = segmenter.segment(example.read_bytes(), model).class_mask
        # Different JPEG decoders (PIL's, TensorFlow's) and resizes move only near-ties.
        np.testing.assert_array_equal(mask[clear], expected.mask[0][clear])
        assert (mask == expected.mask[0]).mean() >= 0.95
        decided += int(clear.sum())
    assert decided >= 300


def test_predict_endpoint_function(tiny_model: str, app_module: ModuleType, tmp_path: Path) -> None:
    import gradio as gr

    predict = app_module.make_predict(_local_lazy(tiny_model))
    example = sorted((TEMPLATE / "examples").glob("*.png"))[0]
    overlay, mask, label = predict(str(example))
    assert overlay.shape == mask.shape == np.asarray(Image.open(example)).shape
    assert list(label) == list(CLASSES) and sum(label.values()) == pytest.approx(1.0)

    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    with pytest.raises(gr.Error, match="The file 'notes.txt' is not an image this app can read"):
        predict(str(text))
    with pytest.raises(gr.Error, match="Upload a picture"):
        predict(None)


def test_image_input_turns_a_non_image_upload_into_a_message(app_module: ModuleType, tmp_path: Path) -> None:
    import gradio as gr
    from gradio.data_classes import ImageData

    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    component = app_module.image_input(type="filepath", image_mode=None, render=False)
    assert type(component) is gr.Image  # A plain gr.Image: same frontend and API schema, no .pyi stub written.
    with pytest.raises(gr.Error, match="The file 'notes.txt' is not an image this app can read"):
        component.preprocess(ImageData(path=str(text), orig_name="notes.txt"))
    png = tmp_path / "ok.png"
    Image.new("RGB", (5, 5)).save(png)
    assert component.preprocess(ImageData(path=str(png), orig_name="ok.png")) == str(png)
    # An upload reaches the app as the original file (its EXIF tag intact): Gradio does not turn it.
    rotated = tmp_path / "rotated.jpg"
    rotated.write_bytes(_with_orientation(np.zeros((4, 6, 3), np.uint8), 6, "JPEG"))
    assert component.preprocess(ImageData(path=str(rotated), orig_name="rotated.jpg")) == str(rotated)


# --- Model loading errors --------------------------------------------------------------------------


def _tflite(tmp_path: Path, *, signature: str = "serving_default", size: int = 8) -> bytes:
    """A small LiteRT model converted by TensorFlow, with one signature named ``signature``."""
    import tensorflow as tf

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8, name="image")])
        def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            probabilities = tf.nn.softmax(tf.ones([1, size, size, 3]) * tf.cast(image[..., :1], tf.float32))
            return {"mask": tf.cast(tf.argmax(probabilities, -1), tf.uint8), "probabilities": probabilities}

    module = Module()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={signature: module.serve})
    return tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"), signature_keys=[signature]).convert()


def test_unconfigured_template_and_bad_local_dirs(app_module: ModuleType, tmp_path: Path) -> None:
    import gradio as gr

    source = app_module.model_source({})  # The unrendered template, no BEAM_SEG_MODEL_DIR.
    assert source.repo_id is None and source.local_dir is None
    with pytest.raises(gr.Error, match="No model is configured: this is the unrendered Space template"):
        app_module.make_predict(segmenter.LazyModel(source))(str(sorted((TEMPLATE / "examples").iterdir())[0]))

    missing = tmp_path / "nowhere"
    assert f"The model directory {str(missing)!r} does not exist" in _load_error(
        segmenter.ModelSource(local_dir=str(missing))
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "has no model_config.json: is it the output directory of python -m beam_seg.train?" in _load_error(
        segmenter.ModelSource(local_dir=str(empty))
    )
    (empty / "model_config.json").write_text(json.dumps({"classes": list(CLASSES), "image_size": 8}))
    message = _load_error(segmenter.ModelSource(local_dir=str(empty)))
    assert message == (
        f"The model in BEAM_SEG_MODEL_DIR={empty} has no model.tflite: it predates beam_seg's LiteRT export; "
        "train it again with python -m beam_seg.train, which writes it."
    )
    (empty / "model.tflite").write_bytes(b"TFL3 but truncated")
    message = _load_error(segmenter.ModelSource(local_dir=str(empty)))
    assert "could not be loaded by ai-edge-litert (" in message and "\n" not in message


def test_litert_models_of_the_wrong_shape_are_named(tmp_path: Path) -> None:
    (tmp_path / "model_config.json").write_text(json.dumps({"classes": list(CLASSES), "image_size": 8}))
    (tmp_path / "model.tflite").write_bytes(_tflite(tmp_path / "a", signature="other"))
    message = _load_error(segmenter.ModelSource(local_dir=str(tmp_path)))
    assert "has no 'serving_default' signature (it has ['other'])" in message and "re-export it" in message

    (tmp_path / "model.tflite").write_bytes(_tflite(tmp_path / "b", size=16))
    message = _load_error(segmenter.ModelSource(local_dir=str(tmp_path)))
    assert "model_config.json of" in message and "says image_size 8 but its model.tflite takes 16x16 pixels" in message

    (tmp_path / "model_config.json").write_text(json.dumps({"classes": list(CLASSES), "image_size": 16}))
    model = segmenter.LazyModel(segmenter.ModelSource(local_dir=str(tmp_path))).get()
    assert model.image_size == 16 and model(np.zeros((16, 16, 3), np.uint8)).probabilities.shape == (16, 16, 3)


def test_env_precedence_and_placeholders() -> None:
    env = {"BEAM_SEG_MODEL_DIR": "/models/pets", "HF_TOKEN": "hf_secret_value", "HF_ENDPOINT": "http://hub:8/"}
    source = segmenter.ModelSource.from_env(env, repo_id="u/m", version="v2", revision="a" * 40)
    assert source.local_dir == "/models/pets" and source.endpoint == "http://hub:8" and source.revision == "a" * 40
    assert "hf_secret_value" not in repr(source)
    unrendered = segmenter.ModelSource.from_env(
        {}, repo_id="$" + "MODEL_REPO_ID", version="$" + "MODEL_VERSION", revision="$" + "MODEL_REVISION"
    )
    assert (unrendered.repo_id, unrendered.version, unrendered.revision) == (None, None, None)
    # Without an exact commit the version (a tag) is the revision downloaded.
    assert segmenter.ModelSource.from_env({}, repo_id="u/m", version="v2", revision="").revision == "v2"


@pytest.fixture
def published(hub_client_env: HubServer, tiny_model: str) -> str:
    """The tiny model published to the local Hub as ``MODEL_REPO`` with tag ``v1``; returns the commit sha."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_client_env.url, token=DEFAULT_TOKEN)
    api.create_repo(MODEL_REPO, exist_ok=True)
    commit = api.upload_folder(repo_id=MODEL_REPO, folder_path=tiny_model, ignore_patterns=["checkpoints/*"])
    api.create_tag(MODEL_REPO, tag="v1", revision=commit.oid)
    return commit.oid


def test_hub_download_by_commit_gets_only_the_litert_files(published: str, hub_client_env: HubServer) -> None:
    source = _hub_source(revision=published)
    assert source.endpoint == hub_client_env.url  # From HF_ENDPOINT, passed explicitly to hf_hub_download.
    local = segmenter.download_model(source)
    assert Path(local).name == published
    assert {str(p.relative_to(local)) for p in Path(local).rglob("*") if p.is_file()} == MODEL_FILES
    model = segmenter.LazyModel(source).get()
    assert model.class_names == CLASSES
    example = sorted((TEMPLATE / "examples").glob("*.jpg"))[0]
    assert sum(segmenter.segment(example.read_bytes(), model).percentages.values()) == pytest.approx(100.0)


def test_preloaded_files_at_the_pinned_commit_load_without_a_request(published: str, hub_client_env: HubServer) -> None:
    # What the Space's build does with preload_from_hub: the two files in the cache at the commit.
    from huggingface_hub import hf_hub_download

    for name in MODEL_FILES:
        hf_hub_download(MODEL_REPO, name, revision=published, endpoint=hub_client_env.url)
    hub_client_env.reset_stats()
    hub_client_env.inject(None, None, 503, times=100)  # The Hub is down: nothing may depend on it now.
    model = segmenter.LazyModel(_hub_source(revision=published)).get()
    assert model.class_names == CLASSES and hub_client_env.count_requests() == 0


def test_a_version_without_model_tflite_is_named(hub_client_env: HubServer, tiny_model: str) -> None:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_client_env.url, token=DEFAULT_TOKEN)
    api.create_repo(MODEL_REPO, exist_ok=True)
    api.upload_folder(repo_id=MODEL_REPO, folder_path=tiny_model, allow_patterns=["model_config.json", "saved_model/*"])
    api.create_tag(MODEL_REPO, tag="v1")
    assert _load_error(_hub_source()) == (
        f"The model repository '{MODEL_REPO}' at 'v1' has no model.tflite: that version was published before "
        "beam_seg exported LiteRT models; publish a model trained by the current python -m beam_seg.train."
    )


def test_missing_repo_message(hub_client_env: HubServer) -> None:
    message = _load_error(_hub_source(repo_id=f"{DEFAULT_USER}/no-such-model"))
    assert message == (
        f"The model repository '{DEFAULT_USER}/no-such-model' was not found on {hub_client_env.url}: check its name, "
        "or if it is private add a read token as the Space secret HF_TOKEN."
    )


def test_bad_revision_message(published: str) -> None:
    message = _load_error(_hub_source(version="v999"))
    assert message.startswith(f"The model repository '{MODEL_REPO}' has no revision 'v999' (tag, branch or commit)")
    message = _load_error(_hub_source(revision="0" * 40))
    assert f"has no revision '{'0' * 40}'" in message


def test_private_repo_without_token_message(published: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    HfApi(endpoint=os.environ["HF_ENDPOINT"], token=DEFAULT_TOKEN).update_repo_settings(MODEL_REPO, private=True)
    message = _load_error(_hub_source())
    assert "was not found on" in message and "if it is private add a read token as the Space secret HF_TOKEN" in message
    # With the owner's token the same source loads.
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    assert segmenter.LazyModel(_hub_source()).get().class_names == CLASSES


def test_token_errors_never_show_the_token(
    published: str, hub_client_env: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi

    HfApi(endpoint=hub_client_env.url, token=DEFAULT_TOKEN).update_repo_settings(MODEL_REPO, private=True)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_valid_token_123")  # Unknown token: 401 Invalid credentials.
    message = _load_error(_hub_source())
    assert message == (
        f"The Hub at {hub_client_env.url} rejected the token in the Space secret HF_TOKEN "
        "(401 Unauthorized): replace it with a valid read token."
    )
    hub_client_env.add_user("eve", "hf_eve_token_456")  # Valid token, no access to the private repo: 404.
    monkeypatch.setenv("HF_TOKEN", "hf_eve_token_456")
    message = _load_error(_hub_source())
    assert "or the token in the Space secret HF_TOKEN cannot read it" in message
    for text in (message, repr(_hub_source())):
        assert "hf_eve_token_456" not in text and "hf_not_a_valid_token_123" not in text


def test_gated_repo_message(published: str, hub_client_env: HubServer) -> None:
    # The test double has no gating: answer like the Hub does for a gated repo's files.
    hub_client_env.inject(
        None,
        rf"^/{MODEL_REPO}/resolve/",
        status=401,
        headers={"X-Error-Code": "GatedRepo"},
        message="Access to this model is restricted",
    )
    message = _load_error(_hub_source())
    assert message.startswith(f"The model repository '{MODEL_REPO}' is gated: accept its access conditions")


def test_unreachable_hub_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    message = _load_error(_hub_source())
    assert message.startswith(f"Could not download '{MODEL_REPO}' at 'v1' from {url} and no copy is cached")


# --- The template ------------------------------------------------------------------------------------

IMPORT_HOOK = """
import os, sys

class _Watch:
    def find_spec(self, name, path=None, target=None):
        with open(os.environ["IMPORT_LOG"], "a") as f:
            f.write(name + "\\n")
        return None

sys.meta_path.insert(0, _Watch())
"""


def _render(tmp_path: Path) -> dict[str, bytes]:
    from beam_seg.publish import space

    values = space.placeholder_values(
        model_repo=MODEL_REPO, version="v20261123T010203Z", revision="c" * 40, endpoint="https://huggingface.co"
    )
    return space.render_template(space.load_template(str(TEMPLATE)), values)


def test_template_renders_without_leftovers_and_parses(tmp_path: Path) -> None:
    import gradio

    from beam_seg.publish import space

    template = space.load_template(str(TEMPLATE))
    for name in ("app.py", "segmenter.py"):
        ast.parse(template[name].decode("utf-8"), filename=name)  # The unrendered template parses too.
    assert {"app.py", "segmenter.py", "README.md", "requirements.txt"} <= set(template)
    assert not [p for p in template if p.endswith(".pyi")]  # No stub generated by Gradio for a component subclass.
    rendered = _render(tmp_path)
    assert space.leftover_placeholders(rendered) == {}
    for path, data in rendered.items():
        if space.is_text(data):
            assert not re.search(r"\$\{?MODEL_", data.decode("utf-8")), path
        else:
            assert data == template[path]  # Example pictures are copied byte for byte.
    app_source = rendered["app.py"].decode("utf-8")
    ast.parse(app_source)
    assert f'MODEL_REPO_ID = "{MODEL_REPO}"' in app_source and f'MODEL_REVISION = "{"c" * 40}"' in app_source

    front = yaml.safe_load(rendered["README.md"].decode("utf-8").split("---")[1])
    assert front["sdk"] == "gradio" and front["sdk_version"] == gradio.__version__ and front["app_file"] == "app.py"
    assert front["models"] == [MODEL_REPO] and str(front["python_version"]).startswith("3.")
    assert {"title", "emoji", "colorFrom", "colorTo", "license", "tags"} <= set(front)
    assert len(front["short_description"]) <= 60  # The Hub refuses a longer one.
    # The model's two inference files at the published commit are fetched when the Space is built.
    assert front["preload_from_hub"] == [f"{MODEL_REPO} model.tflite,model_config.json {'c' * 40}"]
    assert set(segmenter.MODEL_FILES) == MODEL_FILES
    # Generic tags: the Space runs no TensorFlow and makes no claim about the data the model was trained on.
    assert not {"tensorflow", "oxford-iiit-pet"} & set(front["tags"]) and "datasets" not in front


def test_the_app_never_imports_tensorflow(tmp_path: Path, tiny_model: str) -> None:
    # Statically: no module of the template names TensorFlow or Keras in an import.
    for path in TEMPLATE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in ("tensorflow", "keras", "tf_keras")], (path, names)
    # At run time: the rendered app imported and serving a prediction, with every import recorded.
    out = tmp_path / "space"
    for path, data in _render(tmp_path).items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(IMPORT_HOOK)
    log = tmp_path / "imports.log"
    probe = (
        "import app; print(app.model_source({}).describe()); "
        "from app import make_predict, segmenter; "
        "predict = make_predict(segmenter.LazyModel(app.model_source())); "
        "print(sorted(predict(app.example_paths()[0])[2]))"
    )
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(tmp_path / "hook"),
        "IMPORT_LOG": str(log),
        "BEAM_SEG_MODEL_DIR": tiny_model,
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=out, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"[`{MODEL_REPO}`](https://huggingface.co/{MODEL_REPO}) version `v20261123T010203Z` (commit `ccccccc`)" in (
        result.stdout
    )
    assert str(sorted(CLASSES)) in result.stdout
    imported = set(log.read_text().split())
    assert {"gradio", "segmenter", "ai_edge_litert.interpreter"} <= imported  # The hook saw the app work.
    assert not sorted(n for n in imported if n.split(".")[0] in ("tensorflow", "keras", "tf_keras"))


def test_requirements_are_pinned_to_the_project_versions_without_tensorflow() -> None:
    constraints = dict(
        line.split("==", 1) for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line
    )
    constraints = {k.lower().replace("_", "-"): v for k, v in constraints.items()}
    pins = {}
    for line in (TEMPLATE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned"
            pins[name.lower().replace("_", "-")] = version
    assert pins == {
        "ai-edge-litert": constraints["ai-edge-litert"],
        "huggingface-hub": constraints["huggingface-hub"],
        "numpy": constraints["numpy"],
        "pillow": constraints["pillow"],
    }
    assert not [name for name in pins if "tensorflow" in name or "keras" in name]
    readme = (TEMPLATE / "README.md").read_text()
    assert f"sdk_version: {constraints['gradio']}" in readme  # Gradio comes from the Space SDK, not pip.


def test_examples_are_small_images() -> None:
    from beam_seg.publish import space

    examples = sorted(p for p in (TEMPLATE / "examples").iterdir() if p.is_file())
    assert len(examples) >= 3 and {p.suffix for p in examples} >= {".jpg", ".png"}
    for path in examples:
        assert path.stat().st_size < 50 * 1024, path
        with Image.open(path) as image:
            assert image.format in ("JPEG", "PNG") and min(image.size) >= 64
        assert not space.is_text(path.read_bytes())  # Copied byte for byte by the renderer.
