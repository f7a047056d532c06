"""Tests of ``beam_seg.loader``: a model directory (local, ``gs://``) or a published repo as one callable segmenter.

The SavedModels here are built in the test (tiny ``tf.Module`` s): one whose string input is not called
``image_bytes`` (the loader must find it from the signature), and broken ones.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from hubserver import DEFAULT_USER

from beam_seg.loader import ModelLoadError, load_model, parse_location

SIZE = 4


def _png(size: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size + 3), (9, 99, 199)).save(buf, format="PNG")
    return buf.getvalue()


def _save(root: Path, input_spec, body) -> Path:
    import tensorflow as tf

    class M(tf.Module):
        @tf.function(input_signature=[input_spec])
        def serve(self, x):
            return body(x)

    module = M()
    tf.saved_model.save(module, str(root / "saved_model"), signatures={"serving_default": module.serve})
    return root


@pytest.fixture(scope="module")
def renamed_input_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tensorflow as tf

    def body(encoded):
        n = tf.shape(encoded)[0]
        sizes = tf.map_fn(
            lambda d: tf.shape(tf.io.decode_image(d, channels=3, expand_animations=False))[0],
            encoded,
            fn_output_signature=tf.int32,
        )
        return {
            "mask": tf.ones([n, SIZE, SIZE], tf.uint8) * tf.cast(sizes[:, None, None] % 2, tf.uint8),
            "probabilities": tf.fill([n, SIZE, SIZE, 3], 0.5),
        }

    root = _save(tmp_path_factory.mktemp("renamed"), tf.TensorSpec([None], tf.string, name="encoded_jpegs"), body)
    palette = {"a": [1, 2, 3], "b": [4, 5, 6], "c": [7, 8, 9]}
    (root / "model_config.json").write_text(
        json.dumps({"image_size": SIZE, "classes": ["a", "b", "c"], "palette": palette})
    )
    return root


def test_a_model_directory_is_loaded_and_its_string_input_found(renamed_input_model):
    model = load_model(str(renamed_input_model))
    assert model.config["image_size"] == model.image_size == SIZE and model.class_names == ("a", "b", "c")
    assert model.palette.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    one = model(_png(6))  # 9 rows: odd
    assert one.mask.shape == (1, SIZE, SIZE) and one.mask.dtype == np.uint8 and one.mask.max() == 1
    mask, probabilities = model([_png(6), _png(7)])  # 9 and 10 rows
    assert mask[:, 0, 0].tolist() == [1, 0] and probabilities.shape == (2, SIZE, SIZE, 3)
    with pytest.raises(ValueError, match="no images"):
        model([])
    with pytest.raises(ModelLoadError, match="no 'serving_images' signature"):
        model.predict_images(np.zeros((5, 5, 3), np.uint8))


@pytest.mark.parametrize(
    ("location", "revision", "expected"),
    [
        ("hf://me/model@v3", None, ("hub", "v3")),
        ("hf://me/model", "v2", ("hub", "v2")),
        ("me/model", "v2", ("hub", "v2")),
        ("gs://bucket/run/model", None, ("dir", None)),
    ],
)
def test_locations(location, revision, expected):
    assert parse_location(location, revision) == expected


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("hf://me/model@v3", "names revision 'v3' but revision='v4'"),
        ("hf://nobody", "is not hf://"),
        ("no/such/dir", "neither a directory nor a Hub repo"),
    ],
)
def test_bad_locations_are_one_line(location, message):
    with pytest.raises(ModelLoadError, match=message):
        parse_location(location, "v4" if "@" in location else None)


def test_an_incomplete_directory_is_refused(tmp_path, renamed_input_model):
    with pytest.raises(ModelLoadError, match="model_config.json does not exist.*written last"):
        load_model(str(tmp_path))
    (tmp_path / "model_config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="is not valid JSON"):
        load_model(str(tmp_path))
    (tmp_path / "model_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="saved_model.pb"):
        load_model(str(tmp_path))


def test_a_signature_without_a_string_input_is_refused(tmp_path):
    import tensorflow as tf

    _save(tmp_path, tf.TensorSpec([None, 3], tf.float32, name="pixels"), lambda x: {"y": x * 2})
    (tmp_path / "model_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="exactly one string input.*pixels"):
        load_model(str(tmp_path))


def test_load_model_downloads_only_what_it_needs(hub_api, hub_client_env, renamed_input_model, tmp_path):
    server = hub_client_env
    repo = f"{DEFAULT_USER}/renamed"
    hub_api.create_repo(repo)
    (renamed_input_model / "predictions.png").write_bytes(_png(5))
    hub_api.upload_folder(repo_id=repo, folder_path=str(renamed_input_model))
    model = load_model(f"hf://{repo}", endpoint=server.url, cache_dir=str(tmp_path / "cache"))
    assert model(_png(8)).mask.shape == (1, SIZE, SIZE)
    downloaded = {p.relative_to(model.path).as_posix() for p in Path(model.path).rglob("*") if p.is_file()}
    assert "predictions.png" not in downloaded and "model_config.json" in downloaded
    assert any(p.startswith("saved_model/variables/") for p in downloaded) or "saved_model/saved_model.pb" in downloaded


def test_load_model_errors_are_one_line(hub_client_env, tmp_path):
    with pytest.raises(ModelLoadError) as info:
        load_model(f"hf://{DEFAULT_USER}/missing", endpoint=hub_client_env.url, cache_dir=str(tmp_path))
    assert "HTTP 404" in str(info.value) and f"{DEFAULT_USER}/missing" in str(info.value)
    assert "\n" not in str(info.value)
