"""End-to-end tests of ``python -m beam_seg.train`` on TFRecords written by the real ``tfrecord_gen``.

One module-scoped dataset (40 synthetic images, ``--resize 64``) and one module-scoped 2-epoch
training run feed most tests; the rest train for a few steps of a tiny U-Net on CPU. NaN loss is
injected by wrapping ``input_pipeline.train_dataset`` so that every batch of epoch 2 is NaN.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beam_seg import cli
from beam_seg.data import codec
from beam_seg.data import job as tfrecord_gen
from beam_seg.data import sample as sample_data
from beam_seg.loader import ModelLoadError, load_model
from beam_seg.pets import MASK_CLASSES
from beam_seg.train import dataset as input_pipeline
from beam_seg.train import job, models, trainer
from beam_seg.train import metrics as seg_metrics
from beam_seg.train.config import HYPERPARAMETERS, ConfigError, build_parser, parse_args

tf = pytest.importorskip("tensorflow")

SIZE = 64
STEPS = 3
# A tiny, fast U-Net: 3 levels of 4..32 filters on 64x64 inputs, 3 steps of 4 images per epoch.
COMMON = [
    "--image_size",
    str(SIZE),
    "--batch_size",
    "4",
    "--base_filters",
    "4",
    "--depth",
    "3",
    "--steps_per_epoch",
    str(STEPS),
    "--num_predictions",
    "2",
    "--seed",
    "1",
    "--learning_rate",
    "3e-3",
]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Sample PETS data turned into 64x64 TFRecords by the real Beam job (in-memory runner)."""
    root = tmp_path_factory.mktemp("data")
    sample_data.make_sample_data(str(root / "raw"), num_images=40, min_size=64, max_size=160, seed=0)
    out = str(root / "tfrecords")
    rc = tfrecord_gen.run(
        [
            "--input",
            str(root / "raw"),
            "--output_dir",
            out,
            "--resize",
            str(SIZE),
            "--val_fraction",
            "0.3",
            "--direct_running_mode=in_memory",
            "--direct_num_workers=1",
        ]
    )
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def trained(data_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An uninterrupted 2-epoch run; its output directory."""
    out = str(tmp_path_factory.mktemp("trained") / "model")
    assert job.run(["--data_dir", data_dir, "--output_dir", out, "--epochs", "2", *COMMON]) == 0
    return out


def _encode(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _records(data_dir: str, split: str) -> list[codec.PetExample]:
    files = input_pipeline.list_shards(data_dir, split)
    return [codec.decode_example(r.numpy()) for r in tf.data.TFRecordDataset(files)]


def _copy_data(data_dir: str, dest: Path) -> Path:
    shutil.copytree(data_dir, dest)
    return dest


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("beam_seg.train")
    ]


def _refusal(capsys: pytest.CaptureFixture) -> str:
    """The one error line a refused run printed to stderr (``python -m beam_seg.train: ...``), checked to be the only
    line besides the console's progress lines (``HH:MM:SS message``, from checks that ran before the refusal)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not re.match(r"\d\d:\d\d:\d\d [^A-Z]", line)]
    assert len(lines) == 1 and lines[0].startswith("python -m beam_seg.train: ") and "Traceback" not in err, err
    return lines[0]


# --- CLI -----------------------------------------------------------------------------------------


def test_help_lists_every_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "beam_seg.train", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    flags = [s for a in build_parser()._actions for s in a.option_strings if s.startswith("--")]
    required = [
        "--data_dir",
        "--output_dir",
        "--image_size",
        "--epochs",
        "--batch_size",
        "--learning_rate",
        "--val_steps",
        "--steps_per_epoch",
        "--seed",
        "--model",
        "--encoder_weights",
        "--base_filters",
        "--mixed_precision",
        "--resume",
        "--class_weights",
        "--min_crop",
    ]
    assert set(required) <= set(flags)
    for flag in flags:
        assert flag in result.stdout, flag
    assert "mobilenetv2_unet" in result.stdout


def _without_tensorflow(tmp_path: Path) -> dict[str, str]:
    """An environment that simulates beam_seg installed without its ``train`` extra: no TensorFlow, no Keras.

    TensorFlow is installed here, so it is hidden: a ``sitecustomize`` replaces each ``sys.path`` directory that holds
    it by a mirror of symlinks to everything in that directory except TensorFlow and Keras (packages and
    dist-info), so the import system finds them nowhere, as after ``pip install beam_seg`` alone.
    """
    hidden = ("tensorflow", "keras")
    mapping = {}
    for i, entry in enumerate(p for p in sys.path if p and os.path.isdir(os.path.join(p, "tensorflow"))):
        mirror = tmp_path / f"site-{i}"
        mirror.mkdir()
        for name in os.listdir(entry):
            if name in hidden or name.lower().startswith(tuple(f"{h}-" for h in hidden)):
                continue
            os.symlink(os.path.join(entry, name), mirror / name)
        mapping[entry] = str(mirror)
    assert mapping, "tensorflow is not installed, so there is nothing to hide"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(f"import sys\nsys.path[:] = [{mapping!r}.get(p, p) for p in sys.path]\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)])}


def test_without_tensorflow_training_exits_2_with_the_install_line(tmp_path: Path) -> None:
    env = _without_tensorflow(tmp_path)
    check = "import importlib.util as u, sys; print([bool(u.find_spec(m)) for m in sys.argv[1:]])"
    control = subprocess.run(  # The simulation holds: no TensorFlow or Keras, everything else still there.
        [sys.executable, "-c", check, "tensorflow", "keras", "numpy", "apache_beam", "beam_seg"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert control.stdout.strip() == "[False, False, True, True, True]", control.stdout + control.stderr
    run = ["-m", "beam_seg.train", "--data_dir", str(tmp_path / "data"), "--output_dir", str(tmp_path / "model")]
    proc = subprocess.run([sys.executable, *run], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == cli.EXIT_USAGE, proc.stderr
    expected = (
        "python -m beam_seg.train: tensorflow is not installed; training needs the train extra: "
        "pip install 'beam_seg[train]'"
    )
    assert proc.stderr.splitlines() == [expected]
    assert not (tmp_path / "model").exists()
    # --help still answers without TensorFlow.
    proc = subprocess.run([sys.executable, "-m", "beam_seg.train", "--help"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "--data_dir" in proc.stdout, proc.stderr


def test_config_rejects_bad_values() -> None:
    base = ["--data_dir", "d", "--output_dir", "o"]
    assert parse_args(base).encoder_weights is None
    with pytest.raises(ConfigError, match="--epochs must be >= 1, got 0"):
        parse_args([*base, "--epochs", "0"])
    with pytest.raises(ConfigError, match="--encoder_weights applies to --model mobilenetv2_unet only"):
        parse_args([*base, "--encoder_weights", "imagenet"])
    with pytest.raises(ConfigError, match="contradict"):
        parse_args([*base, "--resume", "--overwrite"])
    assert parse_args([*base, "--class_weights", "1,1,2.5"]).explicit_class_weights() == (1.0, 1.0, 2.5)
    for bad in ("1,2", "1,0,2", "heavy"):
        with pytest.raises(ConfigError, match=f"--class_weights '{bad}' must be one of"):
            parse_args([*base, "--class_weights", bad])
    for bad in ("0", "1.5"):
        with pytest.raises(ConfigError, match=r"--min_crop must be in \(0, 1\]"):
            parse_args([*base, "--min_crop", bad])


def test_class_weights() -> None:
    weights = seg_metrics.inverse_sqrt_class_weights([0.2, 0.75, 0.05])
    assert sum(f * w for f, w in zip([0.2, 0.75, 0.05], weights, strict=True)) == pytest.approx(1.0)  # Pixel mean 1.
    assert weights[2] / weights[1] == pytest.approx((0.75 / 0.05) ** 0.5)  # Rare border weighs most.
    assert seg_metrics.inverse_sqrt_class_weights([0.5, 0.5, 0.0])[2] < 100  # An absent class stays bounded.
    base = ["--data_dir", "d", "--output_dir", "o"]
    stats = {"splits": {"train": {"class_pixel_fractions": {"pet": 0.2, "background": 0.75, "border": 0.05}}}}
    assert trainer.class_weights_for(parse_args(base), stats) == pytest.approx(weights)
    assert trainer.class_weights_for(parse_args(base), {"splits": {}}) is None  # Unweighted, with a warning.
    assert trainer.class_weights_for(parse_args([*base, "--class_weights", "none"]), stats) is None
    assert trainer.class_weights_for(parse_args([*base, "--class_weights", "1,2,3"]), stats) == (1.0, 2.0, 3.0)


def test_the_training_objective_is_described_as_it_is_built() -> None:
    assert seg_metrics.describe_objective("ce", MASK_CLASSES) == "pixel cross-entropy (unweighted)"
    assert seg_metrics.describe_objective("ce_dice", MASK_CLASSES, (1.5, 0.75, 3.0)) == (
        "class-weighted pixel cross-entropy (pet 1.5, background 0.75, border 3) + soft Dice loss "
        "(1 - mean soft Dice over the classes), per batch"
    )


def test_weighted_loss_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(2, 4, 4, 1)).astype(np.uint8)
    weights = (0.5, 1.0, 4.0)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    pixel_ce = -np.take_along_axis(log_probs, labels.astype(np.int64), axis=-1)[..., 0]
    pixel_w = np.asarray(weights)[labels[..., 0]]
    expected_ce = (pixel_ce * pixel_w).sum() / pixel_w.sum()
    ce = seg_metrics.make_loss("ce", 3, class_weights=weights)(labels, logits)
    assert float(ce) == pytest.approx(expected_ce, rel=1e-5)
    plain = seg_metrics.make_loss("ce", 3)(labels, logits)
    assert float(plain) == pytest.approx(pixel_ce.mean(), rel=1e-5)
    probs = np.exp(log_probs)
    onehot = np.eye(3)[labels[..., 0]]
    dice = (2 * (probs * onehot).sum((0, 1, 2)) + 1) / ((probs + onehot).sum((0, 1, 2)) + 1)
    ce_dice = seg_metrics.make_loss("ce_dice", 3, class_weights=weights)(labels, logits)
    assert float(ce_dice) == pytest.approx(expected_ce + 1 - dice.mean(), rel=1e-5)


def test_bad_image_size_is_a_clear_error(data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["--data_dir", data_dir, "--output_dir", str(tmp_path / "o"), "--image_size", "60", "--depth", "3"]
    assert job.run(argv) == cli.EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("python -m beam_seg.train: --image_size 60:") and "not a multiple of 8" in line
    assert not (tmp_path / "o").exists()  # Refused before anything is read or written.


# --- A full run ----------------------------------------------------------------------------------


def test_run_writes_every_output(trained: str, data_dir: str) -> None:
    out = Path(trained)
    for name in (
        "model_config.json",
        "metrics.json",
        "history.json",
        "training_curves.png",
        "predictions.png",
        "model.keras",
        "model.tflite",
        "model_int8.tflite",
    ):
        assert (out / name).is_file(), name
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-2")
    for png in ("training_curves.png", "predictions.png"):
        with Image.open(out / png) as image:
            assert image.format == "PNG" and min(image.size) > 100

    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert [h["iterations"] for h in history] == [STEPS, 2 * STEPS]
    assert {"loss", "mean_iou", "pixel_accuracy", "val_loss", "val_mean_iou", "learning_rate"} <= set(history[0])

    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("val", "test"):
        m = metrics[split]
        assert set(m["per_class_iou"]) == set(MASK_CLASSES)
        assert 0.0 <= m["mean_iou"] <= 1.0 and 0.0 <= m["pixel_accuracy"] <= 1.0 and np.isfinite(m["loss"])
        assert m["num_pixels"] == m["num_examples"] * SIZE * SIZE
    description = metrics["loss_description"]  # What the splits' "loss" is; the model card quotes it.
    assert description.startswith("mean per-pixel cross-entropy") and "not the training objective" in description
    assert metrics["training_objective"].startswith("class-weighted pixel cross-entropy (pet ")
    assert metrics["training_objective"].endswith("+ soft Dice loss (1 - mean soft Dice over the classes), per batch")

    config = json.loads((out / "model_config.json").read_text())
    assert config["image_size"] == SIZE and config["classes"] == list(MASK_CLASSES)
    assert config["id2label"] == {"0": "pet", "1": "background", "2": "border"}
    assert set(config["palette"]) == set(MASK_CLASSES) and all(len(c) == 3 for c in config["palette"].values())
    norm = config["preprocessing"]["normalization"]
    stats = json.loads((Path(data_dir) / "stats.json").read_text())
    assert norm["source"] == "stats.json:splits.train"
    assert norm["mean"] == pytest.approx(stats["splits"]["train"]["channel_mean"])
    assert norm["std"] == pytest.approx(stats["splits"]["train"]["channel_std"])
    assert config["training"]["epochs"] == 2 and config["training"]["optimizer_iterations"] == 2 * STEPS
    fractions = stats["splits"]["train"]["class_pixel_fractions"]
    expected = seg_metrics.inverse_sqrt_class_weights([fractions[name] for name in MASK_CLASSES])
    assert config["training"]["class_weights_used"] == pytest.approx(dict(zip(MASK_CLASSES, expected, strict=True)))
    assert config["training"]["strategy"] in ("_DefaultDistributionStrategy", "MirroredStrategy")
    assert {"tensorflow", "keras"} <= set(config["versions"])
    assert config["metrics"]["file"] == "metrics.json"
    assert config["metrics"]["val_mean_iou"] == metrics["val"]["mean_iou"]
    assert config["metrics"]["loss_description"] == metrics["loss_description"]
    assert config["metrics"]["training_objective"] == metrics["training_objective"]
    assert set(config["signatures"]) == {"serving_default", "serving_images"}
    assert (
        config["keras"]["file"] == "model.keras" and config["keras"]["load"] == "keras.saving.load_model('model.keras')"
    )
    # The data it was trained on, from stats.json, with the record counts.
    counts = {split: stats["splits"][split]["num_examples"] for split in ("train", "val", "test")}
    assert config["data"] == {**stats["dataset"], "num_examples": counts}
    assert config["data"]["synthetic"] is True and config["data"]["name"].startswith("synthetic sample data")


def test_nothing_published_holds_a_path_or_a_run_only_flag(trained: str, data_dir: str) -> None:
    """model_config.json and metrics.json go to the Hub as they are: hyper-parameters, not the run's paths or flags."""
    out = Path(trained)
    for name in ("model_config.json", "metrics.json"):
        text = (out / name).read_text()
        for path in (trained, data_dir, str(Path(trained).parent), str(Path(data_dir).parent)):
            assert path not in text, (name, path)
    training = json.loads((out / "model_config.json").read_text())["training"]
    run_facts = {
        "steps_per_epoch",
        "class_weights_used",
        "epochs_completed",
        "optimizer_iterations",
        "strategy",
        "replicas",
        "mixed_precision_used",
        "wall_seconds",
    }
    assert set(training) == set(HYPERPARAMETERS) | run_facts
    for flag in ("data_dir", "output_dir", "resume", "overwrite", "validate_records", "num_predictions", "val_steps"):
        assert flag not in training
    assert training["base_filters"] == 4 and training["seed"] == 1 and training["learning_rate"] == 3e-3


def test_data_of_a_set_from_before_provenance_is_unknown(caplog: pytest.LogCaptureFixture) -> None:
    data = trainer._Data(files={}, counts={"train": 3, "val": 1, "test": 2}, stats={"splits": {}})
    entry = trainer._data_entry(data)
    assert entry["synthetic"] is None and entry["name"].startswith("unknown")
    assert entry["num_examples"] == {"train": 3, "val": 1, "test": 2}
    assert any("has no 'dataset' entry" in r.getMessage() for r in caplog.records)


def test_model_keras_loads_with_keras_alone_and_gives_the_saved_models_logits(trained: str, tmp_path: Path) -> None:
    """A Keras user's load: a fresh interpreter, beam_seg made unimportable, only keras imported."""
    pixels = np.random.default_rng(3).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    np.save(tmp_path / "pixels.npy", pixels)
    script = (
        "import sys\n"
        "sys.modules['beam_seg'] = None  # import beam_seg now raises ImportError\n"
        "import keras, numpy as np\n"
        f"model = keras.saving.load_model({str(Path(trained) / 'model.keras')!r})\n"
        f"logits = model(np.load({str(tmp_path / 'pixels.npy')!r}).astype('float32'))\n"
        f"np.save({str(tmp_path / 'logits.npy')!r}, keras.ops.convert_to_numpy(logits))\n"
        "print(sorted(m for m, v in sys.modules.items() if m.startswith('beam_seg') and v is not None))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    logits = np.load(tmp_path / "logits.npy")
    assert logits.shape == (2, SIZE, SIZE, 3)
    # The SavedModel's serving_images at S x S (its resize is then the identity): the softmax of the same logits.
    served = tf.saved_model.load(os.path.join(trained, "saved_model")).signatures["serving_images"](
        images=tf.constant(pixels)
    )
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), served["probabilities"].numpy(), atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(-1), served["mask"].numpy())


def test_saved_model_serving_default_takes_jpeg_and_png_of_any_size(trained: str) -> None:
    loaded = tf.saved_model.load(os.path.join(trained, "saved_model"))
    assert {"serving_default", "serving_images"} <= set(loaded.signatures)
    signature = loaded.signatures["serving_default"]
    _, kwargs = signature.structured_input_signature
    assert kwargs["image_bytes"].dtype == tf.string and kwargs["image_bytes"].shape.as_list() == [None]
    rng = np.random.default_rng(0)
    jpeg = _encode(rng.integers(0, 256, (100, 80, 3), dtype=np.uint8), "JPEG")
    png = _encode(rng.integers(0, 256, (37, 151, 3), dtype=np.uint8), "PNG")
    out = signature(image_bytes=tf.constant([jpeg, png]))
    assert out["mask"].dtype == tf.uint8 and out["mask"].shape == (2, SIZE, SIZE)
    assert out["probabilities"].dtype == tf.float32 and out["probabilities"].shape == (2, SIZE, SIZE, 3)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out["mask"].numpy(), out["probabilities"].numpy().argmax(-1))
    assert set(np.unique(out["mask"].numpy())) <= {0, 1, 2}


def test_saved_model_uint8_signature_and_tfsmlayer(trained: str) -> None:
    import keras

    path = os.path.join(trained, "saved_model")
    images = np.random.default_rng(1).integers(0, 256, (3, 90, 70, 3), dtype=np.uint8)
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_images"](images=tf.constant(images))
    assert out["mask"].dtype == tf.uint8 and out["mask"].shape == (3, SIZE, SIZE)
    assert out["probabilities"].shape == (3, SIZE, SIZE, 3)

    by_images = keras.layers.TFSMLayer(path, call_endpoint="serving_images")(tf.constant(images))
    np.testing.assert_array_equal(by_images["mask"].numpy(), out["mask"].numpy())
    png = _encode(images[0], "PNG")
    by_bytes = keras.layers.TFSMLayer(path, call_endpoint="serving_default")(tf.constant([png]))
    assert by_bytes["mask"].shape == (1, SIZE, SIZE)
    # Lossless PNG bytes and the raw array go through the same resize: same prediction.
    np.testing.assert_allclose(by_bytes["probabilities"].numpy()[0], out["probabilities"].numpy()[0], atol=1e-5)


def test_the_loader_serves_a_training_output(trained: str, tmp_path: Path) -> None:
    model = load_model(trained)
    assert model.image_size == SIZE and model.class_names == MASK_CLASSES and model.palette.shape == (3, 3)
    image = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask, probabilities = model(_encode(image, "PNG"))
    assert mask.shape == (1, SIZE, SIZE) and mask.dtype == np.uint8 and probabilities.dtype == np.float32
    same_mask, _ = model.predict_images(image)
    np.testing.assert_array_equal(mask, same_mask)
    with pytest.raises(ModelLoadError, match="model_config.json does not exist"):
        load_model(str(tmp_path))


def test_metrics_json_matches_numpy_iou_of_exported_model(trained: str, data_dir: str) -> None:
    """Independent check: numpy confusion matrix of the SavedModel's masks on the val records."""
    model = load_model(trained)
    records = _records(data_dir, "val")
    predicted, _ = model([r.image for r in records])
    truth = np.stack([np.asarray(Image.open(io.BytesIO(r.mask)).resize((SIZE, SIZE), Image.NEAREST)) for r in records])
    confusion = np.bincount(truth.ravel().astype(np.int64) * 3 + predicted.ravel(), minlength=9).reshape(3, 3)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = tp / np.maximum(union, 1)
    present = union > 0

    val = json.loads((Path(trained) / "metrics.json").read_text())["val"]
    assert val["num_examples"] == len(records)
    assert val["num_pixels"] == confusion.sum()
    # Batch sizes differ between evaluation and this call, so allow a handful of argmax ties to flip.
    tolerance = 20 / confusion.sum() + 1e-6
    assert abs(val["pixel_accuracy"] - tp.sum() / confusion.sum()) <= tolerance
    assert abs(val["mean_iou"] - iou[present].mean()) <= 0.01
    for c, name in enumerate(MASK_CLASSES):
        if present[c]:
            assert val["per_class_iou"][name] == pytest.approx(iou[c], abs=0.01), name
    assert np.abs(np.array(val["confusion_matrix"]) - confusion).sum() <= 40


# --- Resume --------------------------------------------------------------------------------------


class _Preempted(Exception):
    """Stands in for a preemption: raised right after epoch 1 has been checkpointed."""


def test_resume_continues_the_same_run(
    trained: str, data_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import keras

    out = str(tmp_path / "model")
    argv = ["--data_dir", data_dir, "--output_dir", out, "--epochs", "2", *COMMON]
    real_callbacks = trainer.make_callbacks

    class Preempt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            raise _Preempted(f"preempted after epoch {epoch + 1}")

    monkeypatch.setattr(trainer, "make_callbacks", lambda **kwargs: [*real_callbacks(**kwargs), Preempt()])
    with pytest.raises(_Preempted):
        job.run(argv)
    monkeypatch.undo()
    assert tf.train.latest_checkpoint(os.path.join(out, "checkpoints")).endswith("ckpt-1")
    assert [h["epoch"] for h in json.loads((Path(out) / "history.json").read_text())] == [1]

    # A second run into the same directory must choose between --resume and --overwrite.
    capsys.readouterr()
    assert job.run(argv) == cli.EXIT_USAGE
    assert "pass --resume" in _refusal(capsys)
    assert job.run([*argv, "--base_filters", "8", "--resume"]) == cli.EXIT_USAGE
    assert "--base_filters was 4, now 8" in _refusal(capsys)

    assert job.run([*argv, "--resume"]) == 0
    resumed = json.loads((Path(out) / "history.json").read_text())
    reference = json.loads((Path(trained) / "history.json").read_text())
    assert [h["epoch"] for h in resumed] == [1, 2]
    assert [h["iterations"] for h in resumed] == [STEPS, 2 * STEPS]  # Optimizer state continued, not restarted.
    config = json.loads((Path(out) / "model_config.json").read_text())
    assert config["training"]["optimizer_iterations"] == 2 * STEPS and config["training"]["epochs_completed"] == 2
    # Same data order, augmentation, schedule and optimizer state: the loss curve of the uninterrupted run.
    for key in ("loss", "val_loss", "learning_rate"):
        assert [h[key] for h in resumed] == pytest.approx([h[key] for h in reference], rel=2e-3), key
    # Resuming a finished run trains nothing and re-exports.
    assert job.run([*argv, "--resume"]) == 0
    assert len(json.loads((Path(out) / "history.json").read_text())) == 2


# --- Bad input -----------------------------------------------------------------------------------


def test_empty_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    config = parse_args(["--data_dir", str(empty), "--output_dir", str(tmp_path / "o")])
    with pytest.raises(input_pipeline.IncompleteDataError, match=f"{empty}/stats.json does not exist"):
        trainer.train(config)
    assert job.run(["--data_dir", str(empty), "--output_dir", str(tmp_path / "o")]) == cli.EXIT_USAGE
    line = _refusal(capsys)
    assert line.endswith(f"make it with python -m beam_seg.tfrecord_gen --input DIR --output_dir {empty}"), line
    assert not (tmp_path / "o").exists()


def test_a_data_dir_without_stats_json_is_refused(data_dir: str, tmp_path: Path) -> None:
    """Shards without stats.json (a killed tfrecord_gen): the real command refuses with one line, before TensorFlow."""
    data = _copy_data(data_dir, tmp_path / "data")
    (data / "stats.json").unlink()
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-m", "beam_seg.train", "--data_dir", str(data), "--output_dir", str(out), *COMMON],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert proc.returncode == cli.EXIT_USAGE, proc.stderr
    expected = (
        f"python -m beam_seg.train: {data}/stats.json does not exist: {data} is not a complete tfrecord_gen output "
        f"(stats.json is written last); make it with python -m beam_seg.tfrecord_gen --input DIR --output_dir {data} "
        "--overwrite"
    )
    assert proc.stderr.splitlines() == [expected]
    assert not out.exists()  # Nothing written, so nothing that looks like a model.


@pytest.mark.parametrize("case", ["named-shard-missing", "stray-shard"])
def test_shards_other_than_stats_json_names_are_refused(
    data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture, case: str
) -> None:
    """Training reads exactly the set stats.json names: a missing shard, or a leftover of another set, is refused."""
    data = _copy_data(data_dir, tmp_path / "data")
    val = Path(input_pipeline.list_shards(str(data), "val")[0])
    if case == "named-shard-missing":
        val.unlink()
        bad, expected = val, f"{val} does not exist but {data}/stats.json names it"
    else:  # A shard of an older set with other shard counts, left beside the new one.
        bad = data / "train-00001-of-00002.tfrecord"
        shutil.copy(input_pipeline.list_shards(str(data), "train")[0], bad)
        expected = f"{bad} is not one of the train shards {data}/stats.json names: it is left over from another"
    out = tmp_path / "model"
    assert job.run(["--data_dir", str(data), "--output_dir", str(out), *COMMON]) == cli.EXIT_USAGE
    line = _refusal(capsys)
    assert expected in line and str(bad) in line, line
    assert line.endswith(
        f"regenerate the set with python -m beam_seg.tfrecord_gen --input DIR --output_dir {data} --overwrite"
        + (", which removes it" if case == "stray-shard" else "")
    ), line
    assert not (out / "model_config.json").exists()


def test_corrupt_shard_is_named(data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _copy_data(data_dir, tmp_path / "data")
    shard = Path(input_pipeline.list_shards(str(data), "train")[0])
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size * 2 // 3])  # Truncated mid-record.
    with pytest.raises(input_pipeline.CorruptShardError, match=f"shard {shard} is corrupt after"):
        trainer.train(parse_args(["--data_dir", str(data), "--output_dir", str(tmp_path / "o"), *COMMON]))
    assert job.run(["--data_dir", str(data), "--output_dir", str(tmp_path / "o")]) == cli.EXIT_USAGE
    assert str(shard) in _refusal(capsys)


def test_record_missing_a_feature_is_named(data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = _copy_data(data_dir, tmp_path / "data")
    shard = input_pipeline.list_shards(str(data), "val")[0]
    records = _records(str(data), "val")
    with tf.io.TFRecordWriter(shard) as writer:
        for index, record in enumerate(records):
            proto = tf.train.Example.FromString(codec.encode_example(record))
            if index == 1:
                del proto.features.feature["mask"]
            writer.write(proto.SerializeToString())
    with pytest.raises(
        input_pipeline.RecordFormatError,
        match=rf"shard {shard}: record 1 \(file_name '{records[1].file_name}'\): feature 'mask' is missing",
    ):
        trainer.train(parse_args(["--data_dir", str(data), "--output_dir", str(tmp_path / "o")]))
    assert job.run(["--data_dir", str(data), "--output_dir", str(tmp_path / "o")]) == cli.EXIT_USAGE
    line = _refusal(capsys)
    assert shard in line and "'mask'" in line


def test_a_record_whose_jpeg_does_not_decode_is_named_before_training(
    data_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Valid framing and features, truncated JPEG bytes: found by the decode check, not mid-fit or in evaluation."""
    data = _copy_data(data_dir, tmp_path / "data")
    shard = input_pipeline.list_shards(str(data), "test")[0]
    records = _records(str(data), "test")
    bad = records[2]
    truncated = dataclasses.replace(bad, image=bad.image[: len(bad.image) // 2])
    with open(shard, "wb") as f:  # The same records, framed by stage 1's own codec; one JPEG cut in half.
        for record in [*records[:2], truncated, *records[3:]]:
            f.write(codec.frame_record(codec.encode_example(record)))
    out = tmp_path / "model"
    assert job.run(["--data_dir", str(data), "--output_dir", str(out), *COMMON]) == cli.EXIT_USAGE
    line = _refusal(capsys)
    assert line.startswith(f"python -m beam_seg.train: shard {shard}: record 2 (file_name '{bad.file_name}'): ")
    assert f"its image ({len(truncated.image)} bytes) does not decode" in line, line
    assert not (out / "model_config.json").exists() and not (out / "checkpoints").exists()  # Refused before training.
    # The fast path alone counts one record short of stats.json.
    assert input_pipeline._count_good_records([shard]) == [len(records) - 1]


def test_a_rerun_withdraws_the_previous_model_config_first(
    trained: str, data_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped before its export leaves no model_config.json from an earlier run beside its new files."""
    import keras

    out = Path(shutil.copytree(trained, tmp_path / "model"))
    real_callbacks = trainer.make_callbacks

    class Preempt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            raise _Preempted(f"preempted at the start of epoch {epoch + 1}")

    monkeypatch.setattr(trainer, "make_callbacks", lambda **kwargs: [*real_callbacks(**kwargs), Preempt()])
    argv = ["--data_dir", data_dir, "--output_dir", str(out), "--epochs", "3", "--resume", *COMMON]
    with pytest.raises(_Preempted):
        job.run(argv)
    assert not (out / "model_config.json").exists()
    assert (out / "saved_model" / "saved_model.pb").exists()  # The old export is there, but no longer complete.


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(
    data_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Epoch 1 trains normally; from the first batch of epoch 2 on, every image is NaN."""
    real = input_pipeline.train_dataset

    def poisoned(*args, **kwargs):
        first = kwargs["first_epoch"] * kwargs["steps_per_epoch"]
        nan_from = 1 * kwargs["steps_per_epoch"]  # The first step of epoch 2.
        return (
            real(*args, **kwargs)
            .enumerate(first)
            .map(lambda i, batch: (tf.where(i >= nan_from, batch[0] * np.nan, batch[0]), batch[1]))
        )

    monkeypatch.setattr(input_pipeline, "train_dataset", poisoned)
    out = tmp_path / "model"
    argv = ["--data_dir", data_dir, "--output_dir", str(out), "--epochs", "3", *COMMON]
    assert job.run(argv) == job.EXIT_DIVERGED
    errors = _errors(caplog)
    assert any(
        "training diverged: loss became nan at epoch 2, step 1" in m and "ckpt-1 (epoch 1)" in m for m in errors
    ), errors
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-1")
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1]
    assert not (out / "model_config.json").exists()  # Nothing is exported from a diverged run.
    # The checkpoint on disk holds finite weights.
    reader = tf.train.load_checkpoint(str(out / "checkpoints"))
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.isfinite(value).all(), name


def test_absurd_learning_rate_diverges_without_a_checkpoint(
    data_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "model"
    argv = [
        "--data_dir",
        data_dir,
        "--output_dir",
        str(out),
        *COMMON,
        "--epochs",
        "1",
        "--learning_rate",
        "1e30",
        "--lr_schedule",
        "constant",
        "--num_predictions",
        "0",
    ]
    assert job.run(argv) == job.EXIT_DIVERGED
    errors = _errors(caplog)
    assert any("training diverged" in m and "no checkpoint was written" in m for m in errors), errors
    assert tf.train.latest_checkpoint(str(out / "checkpoints")) is None


# --- Models and distribution -----------------------------------------------------------------------


def test_mobilenetv2_unet_builds_without_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    model = models.build_model("mobilenetv2_unet", image_size=64, num_classes=3, mean=[0] * 3, std=[1] * 3)
    assert model.output_shape == (None, 64, 64, 3)
    seen = {}
    real = keras.applications.MobileNetV2

    def fake(**kwargs):
        seen.update(kwargs)
        return real(**{**kwargs, "weights": None})

    monkeypatch.setattr(keras.applications, "MobileNetV2", fake)
    models.build_model(
        "mobilenetv2_unet", image_size=32, num_classes=3, mean=[0] * 3, std=[1] * 3, encoder_weights="imagenet"
    )
    assert seen["weights"] == "imagenet"
    with pytest.raises(models.ModelConfigError, match="not a multiple of 32"):
        models.build_model("mobilenetv2_unet", image_size=48, num_classes=3, mean=[0] * 3, std=[1] * 3)


def test_strategy_and_mixed_precision_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not isinstance(trainer._make_strategy(), tf.distribute.MirroredStrategy)  # CPU-only machine.
    assert trainer._mixed_precision_on("auto") is bool(tf.config.list_logical_devices("GPU"))
    assert trainer._mixed_precision_on("on") and not trainer._mixed_precision_on("off")
    gpus = [tf.config.LogicalDevice(f"/device:GPU:{i}", "GPU") for i in range(2)]
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.distribute, "MirroredStrategy", lambda: "mirrored")
    assert trainer._make_strategy() == "mirrored"
    assert trainer._mixed_precision_on("auto")
