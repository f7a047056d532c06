"""The LiteRT export of a training run (``model.tflite``, ``model_int8.tflite``): signature, masks, and metrics.

The LiteRT models take the photo already resized (TFLite has no antialiased resize); the documented client resize is
PIL's bilinear, which must give the SavedModel's masks (whose resize is TensorFlow's bilinear with antialias). Training
scores both models with the LiteRT interpreter on val and test; those numbers are checked here independently.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
from test_train import SIZE, data_dir, trained  # noqa: F401 - the module-scoped fixtures of a real training run

from beam_seg.data import codec
from beam_seg.formats import (
    LITERT_FLOAT32_NAME,
    LITERT_INPUT,
    LITERT_INT8_NAME,
    OUTPUT_MASK,
    OUTPUT_PROBABILITIES,
    SERVING_DEFAULT,
)
from beam_seg.loader import load_model
from beam_seg.pets import MASK_CLASSES
from beam_seg.train import litert
from beam_seg.train import metrics as seg_metrics


@pytest.fixture(scope="module")
def runner(trained: str):  # noqa: F811
    interpreter = Interpreter(model_path=os.path.join(trained, LITERT_FLOAT32_NAME))
    return interpreter, interpreter.get_signature_runner(SERVING_DEFAULT)


def _photos(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    photos = []
    for i in range(count):
        h, w = int(rng.integers(40, 200)), int(rng.integers(40, 200))
        base = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
        photos.append(np.clip(base + rng.normal(0, 30, (h, w, 3)) + 20 * i, 0, 255).astype(np.uint8))
    return photos


def test_the_signature_is_uint8_pixels_in_masks_and_probabilities_out(runner) -> None:
    interpreter, _ = runner
    (signature,) = interpreter.get_signature_list().items()
    assert signature == (SERVING_DEFAULT, {"inputs": [LITERT_INPUT], "outputs": [OUTPUT_MASK, OUTPUT_PROBABILITIES]})
    (detail,) = interpreter.get_input_details()
    assert detail["dtype"] == np.uint8 and list(detail["shape"]) == [1, SIZE, SIZE, 3]


def test_masks_equal_the_saved_models_after_the_documented_resize(trained: str, runner) -> None:  # noqa: F811
    _, run = runner
    model = load_model(trained)
    agree, total = 0, 0
    for photo in _photos(6):
        data = io.BytesIO()
        Image.fromarray(photo).save(data, format="PNG")
        expected = model([data.getvalue()])
        resized = np.asarray(Image.fromarray(photo).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
        out = run(**{LITERT_INPUT: resized[None]})
        assert out[OUTPUT_MASK].dtype == np.uint8 and out[OUTPUT_MASK].shape == (1, SIZE, SIZE)
        assert np.allclose(out[OUTPUT_PROBABILITIES].sum(-1), 1.0, atol=1e-5)
        agree += int((out[OUTPUT_MASK] == expected.mask).sum())
        total += expected.mask.size
    assert agree / total >= 0.99, agree / total


def test_the_int8_model_has_the_same_contract_in_under_half_the_bytes(trained: str) -> None:  # noqa: F811
    float32, int8 = (os.path.join(trained, name) for name in (LITERT_FLOAT32_NAME, LITERT_INT8_NAME))
    interpreter = Interpreter(model_path=int8)
    assert interpreter.get_signature_list() == Interpreter(model_path=float32).get_signature_list()
    (detail,) = interpreter.get_input_details()
    assert detail["dtype"] == np.uint8 and list(detail["shape"]) == [1, SIZE, SIZE, 3]
    # A quarter for the weights; this tiny model's graph and small tensors (kept float) weigh relatively more.
    assert os.path.getsize(int8) < 0.5 * os.path.getsize(float32)
    photo = _photos(1, seed=4)[0]
    pixels = np.asarray(Image.fromarray(photo).resize((SIZE, SIZE), Image.Resampling.BILINEAR))[None]
    out8 = interpreter.get_signature_runner(SERVING_DEFAULT)(**{LITERT_INPUT: pixels})
    out32 = Interpreter(model_path=float32).get_signature_runner(SERVING_DEFAULT)(**{LITERT_INPUT: pixels})
    assert out8[OUTPUT_MASK].dtype == np.uint8 and out8[OUTPUT_PROBABILITIES].dtype == np.float32
    assert (out8[OUTPUT_MASK] == out32[OUTPUT_MASK]).mean() >= 0.99


def test_metrics_json_has_the_litert_models_metrics_within_the_targets(trained: str) -> None:  # noqa: F811
    metrics = json.loads(Path(trained, "metrics.json").read_text())
    litert = metrics["litert"]
    assert set(litert) == {"float32", "dynamic_int8"}
    for name, file, quantization, limit in (
        ("float32", LITERT_FLOAT32_NAME, None, 0.005),
        ("dynamic_int8", LITERT_INT8_NAME, "dynamic_int8", 0.01),
    ):
        entry = litert[name]
        assert (entry["file"], entry["quantization"]) == (file, quantization)
        assert entry["bytes"] == os.path.getsize(os.path.join(trained, file))
        for split in ("val", "test"):
            assert entry[split]["num_examples"] == metrics[split]["num_examples"]
            assert entry[split]["num_pixels"] == metrics[split]["num_pixels"]
            delta = entry[split]["mean_iou"] - metrics[split]["mean_iou"]
            assert entry["delta_mean_iou"][split] == pytest.approx(delta)
            assert abs(delta) <= limit, (name, split, delta)
    config = json.loads(Path(trained, "model_config.json").read_text())["litert"]
    assert config["signature"] == SERVING_DEFAULT and config["inputs"] == {
        LITERT_INPUT: {"dtype": "uint8", "shape": [1, SIZE, SIZE, 3]}
    }
    assert config["outputs"][OUTPUT_MASK] == {"dtype": "uint8", "shape": [1, SIZE, SIZE]}
    assert "Image.Resampling.BILINEAR" in config["resize"]
    assert config["models"]["dynamic_int8"]["file"] == LITERT_INT8_NAME
    assert config["models"]["dynamic_int8"]["delta_mean_iou"] == litert["dynamic_int8"]["delta_mean_iou"]


def test_the_litert_metrics_are_a_clients_masks_scored_like_training(trained: str, data_dir: str) -> None:  # noqa: F811
    """Independent check: each val record decoded (by TensorFlow, as the SavedModel's evaluation decodes it: its JPEG
    IDCT is not PIL's), resized as documented, run by the interpreter, and scored against its nearest-neighbour mask
    with a NumPy confusion matrix: metrics.json's LiteRT numbers."""
    import tensorflow as tf

    runner = Interpreter(model_path=os.path.join(trained, LITERT_FLOAT32_NAME)).get_signature_runner(SERVING_DEFAULT)
    shards = sorted(Path(data_dir).glob("val-*.tfrecord"))
    confusion = np.zeros((3, 3), np.int64)
    for serialized in tf.data.TFRecordDataset([str(p) for p in shards]).as_numpy_iterator():
        record = codec.decode_example(serialized)
        decoded = tf.io.decode_image(record.image, channels=3).numpy()
        pixels = np.asarray(Image.fromarray(decoded).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
        with Image.open(io.BytesIO(record.mask)) as mask:
            truth = np.asarray(mask.resize((SIZE, SIZE), Image.Resampling.NEAREST)).astype(np.int64)
        predicted = runner(**{LITERT_INPUT: pixels[None]})[OUTPUT_MASK][0]
        confusion += np.bincount(truth.ravel() * 3 + predicted.ravel(), minlength=9).reshape(3, 3)
    val = json.loads(Path(trained, "metrics.json").read_text())["litert"]["float32"]["val"]
    assert np.abs(np.array(val["confusion_matrix"]) - confusion).sum() <= 4, (val["confusion_matrix"], confusion)
    assert val["mean_iou"] == pytest.approx(
        seg_metrics.summarize_confusion(confusion, MASK_CLASSES)["mean_iou"], abs=1e-3
    )


def test_an_unknown_quantization_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown LiteRT quantization 'int4'; choose None or one of"):
        litert.convert(None, image_size=SIZE, quantization="int4")  # type: ignore[arg-type]
