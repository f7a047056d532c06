"""The baseline gate (``--bless_against``): a candidate worse than the published version is not pushed.

Real models (the session's tiny run of stages 1 and 2, and a copy made surely worse), the real
``python -m beam_seg.evaluate`` child process evaluating both on the candidate's test split, the real
``huggingface_hub`` client against the Hub test double.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import IN_MEMORY
from test_publish import MODEL_REPO, fast_retry, hub_env  # noqa: F401 - the fixtures
from tiny_run import tiny_run, worse_model

from beam_seg import cli
from beam_seg.publish import job, manifest


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """``(good, worse, tfrecords)``: the tiny trained model, a copy predicting ``border`` everywhere, their data."""
    run = tiny_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("baseline")
    good = Path(shutil.copytree(run.model, root / "good", ignore=shutil.ignore_patterns("checkpoints")))
    return good, worse_model(run.model, root / "worse"), run.tfrecords


def _publish(model_dir: Path, version: str, *extra: str) -> int:
    return job.run(
        ["--model_dir", str(model_dir), "--model_repo", MODEL_REPO, "--version", version, *IN_MEMORY, *extra]
    )


def _blessing(model_dir: Path) -> dict:
    return json.loads((model_dir / manifest.MANIFEST_NAME).read_text())["blessing"]


def test_a_worse_candidate_is_not_blessed_against_the_published_version(hub_env, models, caplog):  # noqa: F811
    good, worse, data = models
    assert _publish(good, "v1", "--data_dir", str(data)) == 0  # Nothing published yet: no baseline to compare with.
    assert "no published version of" in caplog.text
    v1 = hub_env.revision_sha(MODEL_REPO, "v1")

    caplog.clear()
    assert _publish(worse, "v2", "--data_dir", str(data)) == 3
    blessing = _blessing(worse)
    assert blessing["blessed"] is False and blessing["baseline"] == f"{MODEL_REPO}@v1"
    assert blessing["candidate_value"] < blessing["baseline_value"] and blessing["max_regression"] == 0.0
    report = json.loads((worse / "publish_evaluation" / "eval_report.json").read_text())
    assert report["split"] == "test" and report["baseline"]["model"].endswith(f"@{v1}")
    assert report["candidate"]["mean_iou"] == pytest.approx(blessing["candidate_value"])
    assert hub_env.revision_sha(MODEL_REPO, "main") == v1  # Nothing pushed: no commit, no v2.
    assert "v2" not in hub_env.storage.repo("model", MODEL_REPO).tags
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.startswith(f"not blessed, nothing pushed to {MODEL_REPO}: test/mean_iou ")
    assert f"< {MODEL_REPO}@v1's" in line

    # The same candidate, allowed to regress by 1.0, is blessed; none skips the comparison altogether.
    assert _publish(worse, "v2", "--data_dir", str(data), "--max_regression", "1") == 0
    assert _publish(good, "v3", "--bless_against", "none") == 0
    assert _blessing(good)["baseline"] is None


def test_a_baseline_named_by_repo_and_revision(hub_env, models):  # noqa: F811
    good, worse, data = models
    assert _publish(good, "v1", "--bless_against", "none") == 0
    assert _publish(worse, "v2", "--bless_against", "none") == 0  # main now holds the worse model.
    # auto compares with main (the worse v2): the good model is blessed; against v1 it ties and is blessed too.
    assert _publish(good, "v3", "--data_dir", str(data)) == 0
    assert _blessing(good)["baseline"] == f"{MODEL_REPO}@v2"
    assert _publish(good, "v4", "--data_dir", str(data), "--bless_against", f"{MODEL_REPO}@v1") == 0
    blessing = _blessing(good)
    assert blessing["baseline"] == f"{MODEL_REPO}@v1"
    assert blessing["candidate_value"] == pytest.approx(blessing["baseline_value"], abs=1e-9)


def test_a_baseline_without_data_is_one_line(hub_env, models, caplog):  # noqa: F811
    good, _, _ = models
    assert _publish(good, "v1", "--bless_against", "none") == 0
    caplog.set_level("ERROR")
    assert _publish(good, "v2") == cli.EXIT_USAGE
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line == (
        f"--bless_against: {MODEL_REPO}@v1 is published; give --data_dir (the candidate's TFRecords) to compare both "
        "on its test split, or --bless_against none"
    )
    caplog.clear()
    assert _publish(good, "v2", "--bless_against", f"{MODEL_REPO}@v9", "--data_dir", "d") == 1
    assert "no such tag, branch or commit (latest tags: v1)" in caplog.text


@pytest.mark.parametrize("value", ["latest", "user/repo", "user/repo@", "@v1"])
def test_bad_bless_against_values_are_refused(models, value, capsys):
    good, _, _ = models
    assert _publish(good, "v1", "--bless_against", value) == cli.EXIT_USAGE
    assert f"--bless_against {value!r} must be auto, none or user/repo@revision" in capsys.readouterr().err
