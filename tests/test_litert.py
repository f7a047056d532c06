"""The LiteRT export of a training run (``model.tflite``): its signature, and masks that match the SavedModel's.

The LiteRT model takes the photo already resized (TFLite has no antialiased resize); the documented client resize is
PIL's bilinear, which must give the SavedModel's masks (whose resize is TensorFlow's bilinear with antialias).
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from PIL import Image
from test_train import SIZE, data_dir, trained  # noqa: F401 - the module-scoped fixtures of a real training run

from beam_seg.formats import LITERT_FLOAT32_NAME, LITERT_INPUT, OUTPUT_MASK, OUTPUT_PROBABILITIES, SERVING_DEFAULT
from beam_seg.loader import load_model


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
