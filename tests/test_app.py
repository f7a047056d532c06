"""Unit tests of the Gradio Space template ``apps/gradio/semantic_segmentation`` (no server, no browser).

The template is not a package (a Space runs ``python app.py`` in its folder), so its folder is put on
``sys.path`` and ``app.py`` is imported under a unique module name. The pure prediction runs against a fake
model (exact colours and percentages) and against a tiny U-Net trained once by the real pipeline
(sample data -> ``tfrecord_gen`` -> ``train``); the model-loading errors come from the real
``huggingface_hub`` client talking HTTP to the local Hub test double (``tests/hubserver/``).
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
from types import ModuleType

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


class FakeModel:
    """Stands in for a SegmentationModel: a fixed 4x4 mask (left half pet, right half background, a border row)."""

    class_names = CLASSES
    palette = PALETTE
    image_size = 4

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def __call__(self, image_bytes: bytes) -> np.ndarray:
        self.seen.append(image_bytes)
        mask = np.array([[0, 0, 1, 1]] * 4, np.uint8)
        mask[3] = 2
        return mask


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


# --- The pure prediction function -----------------------------------------------------------------


def test_segment_draws_palette_colours_and_exact_percentages() -> None:
    pixels = np.full((8, 12, 3), (200, 40, 100), np.uint8)
    model = FakeModel()
    data = _encode(pixels, "PNG")
    result = segmenter.segment(data, model)

    assert model.seen == [data]  # An 8-bit RGB PNG goes to the SavedModel untouched.
    assert result.overlay.shape == result.mask.shape == (8, 12, 3)
    assert result.overlay.dtype == result.mask.dtype == np.uint8
    assert result.class_mask.shape == (4, 4) and result.class_mask.dtype == np.uint8
    # The 4x4 mask is scaled to 8x12 by nearest neighbour: top-left is pet, top-right background, last rows border.
    np.testing.assert_array_equal(result.mask[0, 0], PALETTE[0])
    np.testing.assert_array_equal(result.mask[0, -1], PALETTE[1])
    np.testing.assert_array_equal(result.mask[-1, 5], PALETTE[2])
    colours = {tuple(c) for c in result.mask.reshape(-1, 3)}
    assert colours == {tuple(c) for c in PALETTE}
    expected = np.rint(0.5 * pixels.astype(float) + 0.5 * result.mask.astype(float)).astype(np.uint8)
    np.testing.assert_array_equal(result.overlay, expected)
    assert result.percentages == {"pet": 37.5, "background": 37.5, "border": 25.0}
    assert list(result.percentages) == list(CLASSES)
    assert sum(result.percentages.values()) == pytest.approx(100.0)


def test_segment_scales_large_images_down_for_display() -> None:
    model = FakeModel()
    data = _encode(np.zeros((300, 600, 3), np.uint8), "JPEG")
    result = segmenter.segment(data, model, max_side=150)
    assert result.overlay.shape == (75, 150, 3) and result.mask.shape == (75, 150, 3)
    assert model.seen == [data]  # The model still gets the full-size original.


def test_read_image_passes_jpeg_and_png_through_and_converts_the_rest() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for fmt in ("JPEG", "PNG"):
        data = _encode(pixels, fmt)
        decoded = segmenter.read_image(data)
        assert decoded.model_bytes is data and decoded.pixels.shape == (20, 30, 3)
    # WebP (not decodable by tf.io.decode_image) and CMYK JPEG become lossless PNG of the displayed pixels.
    for data in (_encode(pixels, "WEBP", lossless=True), _encode(Image.fromarray(pixels).convert("CMYK"), "JPEG")):
        decoded = segmenter.read_image(data)
        assert decoded.model_bytes.startswith(b"\x89PNG")
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(decoded.model_bytes))), decoded.pixels)
    # An EXIF rotation is applied, and the model gets the rotated picture.
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # Rotate 90° clockwise on display.
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    decoded = segmenter.read_image(buffer.getvalue())
    assert decoded.pixels.shape == (30, 20, 3) and decoded.model_bytes.startswith(b"\x89PNG")


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


# --- The real SavedModel of the training stage -----------------------------------------------------


def test_real_model_prediction(tiny_model: str) -> None:
    import tensorflow as tf

    model = segmenter.SegmentationModel.from_dir(tiny_model)
    config = json.loads(Path(tiny_model, "model_config.json").read_text())
    assert model.input_key == "image_bytes"  # Read from the signature, not hard-coded.
    assert model.class_names == tuple(config["classes"]) and model.image_size == config["image_size"] == TINY_SIZE
    np.testing.assert_array_equal(model.palette, [config["palette"][c] for c in config["classes"]])

    example = sorted((TEMPLATE / "examples").glob("*.jpg"))[0]
    data = example.read_bytes()
    result = segmenter.segment(data, model)
    width, height = Image.open(example).size
    assert result.overlay.shape == result.mask.shape == (height, width, 3) and result.overlay.dtype == np.uint8
    assert result.class_mask.shape == (TINY_SIZE, TINY_SIZE) and result.class_mask.dtype == np.uint8
    assert {tuple(c) for c in result.mask.reshape(-1, 3)} <= {tuple(c) for c in model.palette.tolist()}
    assert list(result.percentages) == list(CLASSES)
    assert sum(result.percentages.values()) == pytest.approx(100.0)
    # The same numbers as calling the signature directly.
    signature = tf.saved_model.load(os.path.join(tiny_model, "saved_model")).signatures["serving_default"]
    direct = signature(image_bytes=tf.constant([data]))["mask"].numpy()[0]
    np.testing.assert_array_equal(result.class_mask, direct)


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


# --- Model loading errors --------------------------------------------------------------------------


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
    assert "has no SavedModel in saved_model/" in _load_error(segmenter.ModelSource(local_dir=str(empty)))


def test_saved_model_without_serving_default_is_named(tmp_path: Path) -> None:
    import tensorflow as tf

    module = tf.Module()
    module.scale = tf.Variable(2.0)
    tf.saved_model.save(module, str(tmp_path / "saved_model"))
    (tmp_path / "model_config.json").write_text(json.dumps({"classes": list(CLASSES), "image_size": 8}))
    message = _load_error(segmenter.ModelSource(local_dir=str(tmp_path)))
    assert "has no 'serving_default' signature" in message and "re-export it" in message


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


def test_hub_download_by_commit_gets_only_inference_files(published: str, hub_client_env: HubServer) -> None:
    source = _hub_source(revision=published)
    assert source.endpoint == hub_client_env.url  # From HF_ENDPOINT, passed explicitly to snapshot_download.
    local = segmenter.download_model(source)
    assert Path(local).name == published
    files = sorted(str(p.relative_to(local)) for p in Path(local).rglob("*") if p.is_file())
    assert "model_config.json" in files and "saved_model/saved_model.pb" in files
    assert not [f for f in files if f.endswith(".png") or f.startswith(("metrics", "history"))], files
    model = segmenter.LazyModel(source).get()
    assert model.class_names == CLASSES
    example = sorted((TEMPLATE / "examples").glob("*.jpg"))[0]
    assert sum(segmenter.segment(example.read_bytes(), model).percentages.values()) == pytest.approx(100.0)


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
    # The test double has no gating: answer like the Hub does for a gated repo.
    hub_client_env.inject(
        "GET",
        rf"^/api/models/{MODEL_REPO}",
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


def test_template_renders_without_leftovers_and_parses(tmp_path: Path) -> None:
    import gradio

    from beam_seg.publish import space

    template = space.load_template(str(TEMPLATE))
    for name in ("app.py", "segmenter.py"):
        ast.parse(template[name].decode("utf-8"), filename=name)  # The unrendered template parses too.
    assert {"app.py", "segmenter.py", "README.md", "requirements.txt"} <= set(template)
    assert not [p for p in template if p.endswith(".pyi")]  # No stub generated by Gradio for a component subclass.
    values = space.placeholder_values(
        model_repo=MODEL_REPO, version="v20261123T010203Z", revision="c" * 40, endpoint="https://huggingface.co"
    )
    rendered = space.render_template(template, values)
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

    # The rendered app imports without TensorFlow or any download, and describes the rendered model.
    out = tmp_path / "space"
    for path, data in rendered.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    probe = (
        "import sys, app; assert 'tensorflow' not in sys.modules, 'tensorflow imported at import time'; "
        "print(app.model_source().describe())"
    )
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    env.pop("BEAM_SEG_MODEL_DIR", None)
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=out, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"[`{MODEL_REPO}`](https://huggingface.co/{MODEL_REPO}) version `v20261123T010203Z` (commit `ccccccc`)" in (
        result.stdout
    )


def test_requirements_are_pinned_to_the_project_versions() -> None:
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
        "tensorflow-cpu": constraints["tensorflow"],
        "huggingface-hub": constraints["huggingface-hub"],
        "numpy": constraints["numpy"],
        "pillow": constraints["pillow"],
    }
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
