"""``python -m beam_seg.evaluate``: training's numbers for the same model and split, candidate − baseline, strict flags.

The scoring is checked against TensorFlow and training's own code (labels resized by ``tf.image.resize`` nearest;
one ``summarize_confusion`` for both); the job runs for real (in-memory runner, two ``RunInference`` steps)
with the tiny model of ``tiny_run.py``, whose records are stored at their source sizes, and a copy of it made worse.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import IN_MEMORY, REPO_ROOT
from PIL import Image
from tiny_run import SIZE, tiny_run, worse_model

from beam_seg import cli
from beam_seg.confusion import confusion_matrix, summarize_confusion
from beam_seg.evaluate import job as evaluate
from beam_seg.evaluate import report as report_lib
from beam_seg.evaluate import scoring
from beam_seg.evaluate.pipeline import ConfusionSumFn
from beam_seg.evaluate.report import ModelTotals
from beam_seg.formats import EVAL_COMPARISON_NAME, EVAL_REPORT_NAME, METRICS_NAME
from beam_seg.pets import MASK_CLASSES

TOLERANCE = 1e-4


# ---------------------------------------------------------------------------------------------- pure pieces


def test_labels_are_resized_exactly_as_tensorflow_resizes_them():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for _ in range(60):
        height, width = rng.integers(1, 400, 2)
        out_h, out_w = rng.integers(1, 200, 2)
        labels = rng.integers(0, 3, (height, width), dtype=np.uint8)
        expected = tf.image.resize(labels[..., None], (out_h, out_w), method="nearest").numpy()[..., 0]
        assert np.array_equal(scoring.resize_labels(labels, out_h, out_w), expected), (height, width, out_h, out_w)


def test_training_and_evaluation_share_one_metric_definition():
    from beam_seg.train.metrics import summarize_confusion as training_summary

    assert training_summary is summarize_confusion
    confusion = np.array([[5, 1, 0], [0, 0, 0], [2, 0, 7]])  # No pixel of class 1, none predicted as it but one.
    summary = summarize_confusion(confusion, MASK_CLASSES)
    assert summary["per_class_iou"] == {"pet": 5 / 8, "background": 0.0, "border": 7 / 9}
    assert summary["mean_iou"] == pytest.approx((5 / 8 + 0.0 + 7 / 9) / 3)
    assert summary["pixel_accuracy"] == 12 / 15 and summary["num_pixels"] == 15
    absent = summarize_confusion(np.diag([5, 0, 7]), MASK_CLASSES)  # A class in neither labels nor predictions.
    assert absent["per_class_iou"]["background"] is None and absent["mean_iou"] == 1.0


def test_confusion_matrix_counts_true_by_predicted():
    labels = np.array([[0, 0, 1], [2, 2, 1]])
    predicted = np.array([[0, 1, 1], [2, 0, 1]])
    assert confusion_matrix(labels, predicted, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    with pytest.raises(ValueError, match=r"label ids \[3\] are outside 0..2"):
        confusion_matrix(np.array([3]), np.array([0]), 3)
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)


def test_a_record_is_scored_at_the_models_size():
    labels = np.repeat(np.array([[0, 1], [2, 1]], np.uint8), 3, axis=0).repeat(3, axis=1)  # 6x6
    buffer = io.BytesIO()
    Image.fromarray(labels).save(buffer, format="PNG")
    confusion = scoring.score_record(buffer.getvalue(), np.array([[0, 1], [1, 1]], np.uint8), 3)
    assert confusion.tolist() == [[1, 0, 0], [0, 2, 0], [0, 1, 0]]
    rgb = io.BytesIO()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(rgb, format="PNG")
    with pytest.raises(ValueError, match="not a one-channel 8-bit PNG"):
        scoring.score_record(rgb.getvalue(), np.zeros((2, 2), np.uint8), 3)


def test_confusions_are_summed_by_a_combine_fn():
    def totals(diagonal: int, size: int = 4) -> ModelTotals:
        return ModelTotals(np.eye(3, dtype=np.int64) * diagonal, 1, [size])

    with test_pipeline.TestPipeline(argv=IN_MEMORY) as p:
        import apache_beam as beam

        summed = (
            p
            | beam.Create([("a", totals(1)), ("a", totals(2)), ("b", totals(5)), ("a", totals(3))])
            | beam.CombinePerKey(ConfusionSumFn())
            | beam.MapTuple(lambda role, t: (role, t.confusion.tolist(), t.num_examples, t.image_sizes))
        )
        assert_that(
            summed,
            equal_to([("a", (np.eye(3) * 6).tolist(), 3, (4,)), ("b", (np.eye(3) * 5).tolist(), 1, (4,))]),
        )


def test_differences_are_candidate_minus_baseline():
    def entry(pet: float | None, mean: float) -> dict:
        return {"mean_iou": mean, "pixel_accuracy": 0.9, "per_class_iou": {"pet": pet, "border": 0.5}}

    assert report_lib.differences(entry(0.7, 0.6), entry(0.8, 0.65)) == {
        "mean_iou": pytest.approx(-0.05),
        "pixel_accuracy": 0.0,
        "per_class_iou": {"pet": pytest.approx(-0.1), "border": 0.0},
    }
    assert report_lib.differences(entry(None, 0.6), entry(0.8, 0.6))["per_class_iou"]["pet"] is None


# ---------------------------------------------------------------------------------------------- the job


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def same_model_twice(run, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("eval-same") / "out"
    argv = ["--data_dir", str(run.tfrecords), "--candidate", str(run.model), "--baseline", str(run.model)]
    assert evaluate.run([*argv, "--split", "test", "--output_dir", str(out), *IN_MEMORY]) == 0
    return json.loads((out / EVAL_REPORT_NAME).read_text())


def test_evaluate_gives_the_numbers_of_training_metrics_json(same_model_twice, run):
    expected = json.loads((run.model / METRICS_NAME).read_text())["test"]
    got = same_model_twice["candidate"]
    assert got["num_examples"] == expected["num_examples"] == same_model_twice["num_records"] > 0
    assert got["image_size"] == SIZE and got["num_pixels"] == expected["num_pixels"]
    assert got["mean_iou"] == pytest.approx(expected["mean_iou"], abs=TOLERANCE)
    assert got["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"], abs=TOLERANCE)
    for name in MASK_CLASSES:
        assert got["per_class_iou"][name] == pytest.approx(expected["per_class_iou"][name], abs=TOLERANCE)
    # Beyond the tolerance: the same pixels, counted alike (a tie between two logits could move one pixel).
    difference = np.abs(np.array(got["confusion_matrix"]) - np.array(expected["confusion_matrix"])).sum()
    assert difference <= 2, (got["confusion_matrix"], expected["confusion_matrix"])


def test_the_same_model_twice_differs_by_nothing(same_model_twice):
    differences = same_model_twice["differences"]
    assert differences["mean_iou"] == 0.0 and differences["pixel_accuracy"] == 0.0
    assert set(differences["per_class_iou"].values()) <= {0.0, None}
    assert same_model_twice["baseline"]["confusion_matrix"] == same_model_twice["candidate"]["confusion_matrix"]


def test_a_worse_candidate_has_negative_differences(run, tmp_path):
    worse = worse_model(run.model, tmp_path / "worse")
    out = tmp_path / "out"
    report = evaluate.run_evaluation(
        data_dir=str(run.tfrecords),
        candidate=str(worse),
        baseline=str(run.model),
        split="val",
        output_dir=str(out),
        beam_args=IN_MEMORY,
    )
    assert report == json.loads((out / EVAL_REPORT_NAME).read_text())
    candidate, baseline = report["candidate"], report["baseline"]
    assert report["split"] == "val" and candidate["num_examples"] == baseline["num_examples"] > 0
    assert np.array(candidate["confusion_matrix"])[:, :2].sum() == 0  # It predicts border everywhere.
    assert report["differences"]["mean_iou"] == pytest.approx(candidate["mean_iou"] - baseline["mean_iou"])
    assert report["differences"]["mean_iou"] < 0
    expected = json.loads((run.model / METRICS_NAME).read_text())["val"]
    assert baseline["mean_iou"] == pytest.approx(expected["mean_iou"], abs=TOLERANCE)
    with Image.open(out / EVAL_COMPARISON_NAME) as picture:
        assert picture.format == "PNG" and picture.size[0] >= 600


def test_an_incomplete_tfrecord_set_is_refused(run, tmp_path, caplog):
    argv = ["--candidate", str(run.model), "--output_dir", str(tmp_path / "out")]
    assert evaluate.run(["--data_dir", str(tmp_path), *argv]) == cli.EXIT_USAGE
    assert "stats.json does not exist" in caplog.text and "is not a complete tfrecord_gen output" in caplog.text
    shards = {"train": [], "test": ["test-00000-of-00001.tfrecord"]}
    (tmp_path / "stats.json").write_text(json.dumps({"shards": shards}))
    with pytest.raises(evaluate.IncompleteDataError, match="lists no train shard"):
        evaluate.split_shards(str(tmp_path), "train")
    with pytest.raises(evaluate.IncompleteDataError, match=r"test-00000-of-00001.tfrecord is listed .* does not exist"):
        evaluate.split_shards(str(tmp_path), "test")
    assert not (tmp_path / "out").exists()


def test_a_baseline_that_is_no_model_is_refused_before_the_job(run, tmp_path, caplog):
    argv = ["--data_dir", str(run.tfrecords), "--candidate", str(run.model), "--baseline", str(tmp_path)]
    assert evaluate.run([*argv, "--output_dir", str(tmp_path / "out")]) == cli.EXIT_USAGE
    assert "--baseline: " in caplog.text and "model_config.json does not exist" in caplog.text


def test_a_baseline_that_does_not_load_on_the_workers_is_one_line_and_exit_1(run, tmp_path, caplog):
    broken = tmp_path / "model"  # Its config, without its SavedModel: the driver's check passes, the load fails.
    broken.mkdir()
    (broken / "model_config.json").write_bytes((run.model / "model_config.json").read_bytes())
    argv = ["--data_dir", str(run.tfrecords), "--candidate", str(run.model), "--baseline", str(broken)]
    assert evaluate.run([*argv, "--output_dir", str(tmp_path / "out"), *IN_MEMORY]) == evaluate.EXIT_FAILED
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    missing = f"{broken / 'saved_model'} holds no saved_model.pb; the model directory is incomplete"
    assert errors == [f"--baseline {broken}: the model did not load: {missing}"]


# ---------------------------------------------------------------------------------------------- command line


def test_an_unknown_flag_is_one_line_and_exit_2(tmp_path):
    command = [sys.executable, "-m", "beam_seg.evaluate", "--data_dir", str(tmp_path), "--candidate", str(tmp_path)]
    command += ["--output_dir", str(tmp_path / "o"), "--basline", "m"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "python -m beam_seg.evaluate: unknown flag --basline (did you mean --baseline?)"
    ]
    assert not (tmp_path / "o").exists()


def test_a_bad_split_is_one_line_and_exit_2(tmp_path, capsys):
    argv = ["--data_dir", str(tmp_path), "--candidate", str(tmp_path), "--output_dir", str(tmp_path), "--split", "dev"]
    assert evaluate.run(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m beam_seg.evaluate: argument --split: invalid choice: 'dev'")


def test_help_answers_at_once_without_importing_beam_or_tensorflow():
    code = (
        "import sys\n"
        "from beam_seg.evaluate.job import run\n"
        "assert run(['--help']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'tensorflow', 'keras'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10  # ~0.1 s on a quiet machine; the bound only catches a heavy import.
    for text in ("--data_dir", "--candidate", "--baseline", "--split", EVAL_REPORT_NAME, EVAL_COMPARISON_NAME):
        assert text in result.stdout
