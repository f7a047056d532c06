"""``python -m beam_seg.predict``: masks equal to ``serving_default``'s, every input accounted for, strict flags.

The pure pieces (finding inputs, names and their owners, the bytes the model gets, masks and report lines) are
tested without Beam; the job runs for real (in-memory runner, ``RunInference``, TensorFlow) with the tiny model of
``tiny_run.py`` on the sample images plus hostile files, and on stage 1's records; its Dataflow job is built offline
(``DataflowRunner`` with ``--dry_run``, input and output in the GCS emulator).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import IN_MEMORY, REPO_ROOT, declaring_size
from PIL import Image
from tiny_run import SIZE, tiny_run

from beam_seg import cli, drawing
from beam_seg.formats import DEAD_LETTERS_NAME, PREDICTIONS_JSONL_NAME
from beam_seg.inference import Segmentation, segment_batch
from beam_seg.loader import ImageDecodeError, ModelLoadError
from beam_seg.predict import images, inputs, outputs
from beam_seg.predict import job as predict
from beam_seg.predict.inputs import DeadLetter, NamedImage


def _jpeg(pixels: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, **kwargs)
    return buffer.getvalue()


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _pixels(height: int = 30, width: int = 50, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, size=(height, width, 3), dtype=np.uint8)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------- pure pieces


def test_find_inputs_takes_a_directory_a_glob_or_a_file_and_refuses_nothing_or_both(tmp_path):
    (tmp_path / "imgs").mkdir()
    for name in ("a.jpg", "b.PNG", "._a.jpg", "a.mat", "notes.txt"):
        (tmp_path / "imgs" / name).write_bytes(b"x")
    (tmp_path / "imgs" / "sub").mkdir()
    (tmp_path / "imgs" / "sub" / "c.jpg").write_bytes(b"x")  # Not recursive.
    found = inputs.find_inputs(str(tmp_path / "imgs"))
    assert (found.kind, found.patterns, found.count, found.ignored) == (
        inputs.IMAGES,
        (str(tmp_path / "imgs" / "*"),),
        2,
        2,  # a.mat, notes.txt (a local listing skips hidden files; the job's own filter would drop ._a.jpg)
    )
    glob = str(tmp_path / "imgs" / "a.*")
    assert inputs.find_inputs(glob) == inputs.Inputs(inputs.IMAGES, (glob,), 1, 1)
    one = str(tmp_path / "imgs" / "a.jpg")
    assert inputs.find_inputs(one) == inputs.Inputs(inputs.IMAGES, (one,), 1, 0)

    (tmp_path / "recs").mkdir()
    for name in ("test-00000-of-00001.tfrecord", "stats.json", "errors-00000-of-00001.jsonl"):
        (tmp_path / "recs" / name).write_bytes(b"x")
    found = inputs.find_inputs(str(tmp_path / "recs"))
    assert (found.kind, found.patterns, found.ignored) == (
        inputs.RECORDS,
        (str(tmp_path / "recs" / "test-00000-of-00001.tfrecord"),),
        2,
    )
    (tmp_path / "recs" / "x.jpg").write_bytes(b"x")
    with pytest.raises(cli.UsageError, match=r"holds both image files \(x\.jpg, …\) and TFRecord shards"):
        inputs.find_inputs(str(tmp_path / "recs"))
    with pytest.raises(cli.UsageError, match=r"matches 1 files, none of them an image"):
        inputs.find_inputs(str(tmp_path / "imgs" / "*.txt"))
    with pytest.raises(cli.UsageError, match=r"matches nothing, not even an image"):
        inputs.find_inputs(str(tmp_path / "missing"))


def test_names_and_their_owners_are_deterministic():
    assert inputs.image_name("gs://b/x/Bombay_12.jpg") == "Bombay_12"
    assert inputs.image_name("/x/a.b.png") == "a.b"
    assert inputs.check_name("Bombay_12") is None
    assert "path separator" in inputs.check_name("../etc/passwd")
    assert "cannot name" in inputs.check_name("..")
    sources = (("/a/cat.jpg", b"1"), ("/a/cat.png", b"2"), ("/b/cat.jpg", b"3"))
    a, b, c = (NamedImage("cat", source, data) for source, data in sources)
    for order in ([a, b, c], [c, b, a], [b, c, a]):
        winner, dead = inputs.first_of_name("cat", order)
        assert winner == a
        assert [d.source for d in dead] == ["/a/cat.png", "/b/cat.jpg"]
        assert {d.reason for d in dead} == {"duplicate_name"} and all("/a/cat.jpg" in d.detail for d in dead)
    same_shard = [NamedImage("cat", "s.tfrecord", b"2"), NamedImage("cat", "s.tfrecord", b"1")]
    assert inputs.first_of_name("cat", same_shard) == inputs.first_of_name("cat", same_shard[::-1])


def test_prepare_image_passes_plain_images_and_keeps_the_orientation_for_the_mask():
    jpeg = _jpeg(_pixels())
    info, data = images.prepare_image(NamedImage("a", "a.jpg", jpeg))
    assert data is jpeg and (info.width, info.height, info.reencoded, info.orientation) == (50, 30, False, 1)
    png = _png(_pixels())
    assert images.prepare_image(NamedImage("a", "a.png", png))[1] is png

    exif = Image.Exif()
    exif[0x0112] = 6  # Rotate 90° clockwise to display.
    rotated = _jpeg(_pixels(), exif=exif.tobytes())
    info, data = images.prepare_image(NamedImage("r", "r.jpg", rotated))
    assert data is rotated  # The model reads the stored pixels, as training did.
    assert (info.width, info.height, info.orientation, info.stored_size) == (30, 50, 6, (50, 30))  # As displayed.

    cmyk = io.BytesIO()
    Image.fromarray(_pixels()).convert("CMYK").save(cmyk, format="JPEG")
    info, data = images.prepare_image(NamedImage("c", "c.jpg", cmyk.getvalue()))
    assert info.reencoded and data.startswith(b"\x89PNG")  # As the demo app: PIL's colours, not the decoder's.


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty_image"),
        (b"just some text, named .jpg", "unknown_format"),
        (declaring_size(_jpeg(_pixels()), 20000, 20000), "image_too_large"),
    ],
)
def test_prepare_image_dead_letters(data, reason):
    letter = images.prepare_image(NamedImage("x", "dir/x.jpg", data))
    assert isinstance(letter, DeadLetter) and (letter.name, letter.source, letter.reason) == ("x", "dir/x.jpg", reason)


def test_a_batch_with_an_undecodable_image_fails_that_image_only():
    calls = []

    def model(batch):
        calls.append(len(batch))
        if b"bad" in batch:
            raise ImageDecodeError("jpeg::Uncompress failed")
        return Segmentation(np.stack([np.full((2, 2), len(b), np.uint8) for b in batch]))

    results = segment_batch(model, [b"one", b"bad", b"three"])
    assert [r.error for r in results] == [None, "jpeg::Uncompress failed", None]
    assert [int(r.mask[0, 0]) for r in (results[0], results[2])] == [3, 5]
    assert calls == [3, 1, 1, 1]  # The batch, then each image alone.
    assert segment_batch(model, [b"bad"]) == [Segmentation(None, "jpeg::Uncompress failed", "undecodable_image")]
    assert {r.reason for r in results} == {None, "undecodable_image"}


def test_masks_are_upsampled_by_nearest_neighbour_and_reports_are_sorted():
    mask = np.array([[0, 1], [2, 1]], np.uint8)
    big = outputs.upsample_mask(mask, 4, 6)
    assert big.shape == (6, 4) and set(np.unique(big)) == {0, 1, 2}
    assert np.array_equal(big[::3, ::2], mask)
    assert outputs.class_fractions(big, ("pet", "background", "border")) == {
        "pet": 0.25,
        "background": 0.5,
        "border": 0.25,
    }
    lines = outputs.jsonl([{"name": "b", "x": 1}, {"name": "a", "x": 2}], "name")
    assert lines == outputs.jsonl([{"name": "a", "x": 2}, {"name": "b", "x": 1}], "name")
    assert [json.loads(line)["name"] for line in lines.decode().splitlines()] == ["a", "b"]


# ---------------------------------------------------------------------------------------------- the job


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def model(run):
    from beam_seg.loader import load_model

    return load_model(str(run.model))


@pytest.fixture(scope="module")
def hostile(run, tmp_path_factory) -> Path:
    """The sample images (with their planted faults and junk) plus what a careless folder holds."""
    root = tmp_path_factory.mktemp("hostile") / "images"
    shutil.copytree(run.images, root)
    (root / "notes.jpg").write_text("not an image, named .jpg")
    (root / "empty.jpg").write_bytes(b"")
    (root / "._Abyssinian_1.jpg").write_bytes(b"\x00\x05\x16\x07AppleDouble")  # Hidden: ignored.
    (root / "Abyssinian_1.png").write_bytes(_png(_pixels(40, 60)))  # Same name as Abyssinian_1.jpg.
    exif = Image.Exif()
    exif[0x0112] = 8
    (root / "rotated.jpg").write_bytes(_jpeg(_pixels(40, 70, seed=2), exif=exif.tobytes()))
    (root / "sub").mkdir()
    (root / "sub" / "nested.jpg").write_bytes(_jpeg(_pixels()))  # Not recursive: not an input.
    return root


@pytest.fixture(scope="module")
def predicted(run, hostile, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("predicted") / "out"
    argv = ["--input", str(hostile), "--model", str(run.model), "--output_dir", str(out), "--overlay"]
    assert predict.run([*argv, "--min_batch_size", "4", "--max_batch_size", "8", *IN_MEMORY]) == 0
    return out


def test_every_image_gets_serving_defaults_mask_or_a_dead_letter(predicted, hostile, model):
    lines = _lines(predicted / PREDICTIONS_JSONL_NAME)
    dead = _lines(predicted / DEAD_LETTERS_NAME)
    listed = sorted(p.name for p in hostile.iterdir() if p.is_file() and inputs.is_image_file(p.name))
    assert sorted(os.path.basename(x["source"]) for x in lines + dead) == listed  # Each input exactly once.
    assert sorted(p.name for p in (predicted / "masks").iterdir()) == sorted(f"{x['name']}.png" for x in lines)
    for line in lines:
        data = Path(line["source"]).read_bytes()
        info, model_bytes = images.prepare_image(NamedImage(line["name"], line["source"], data))
        if not info.reencoded:
            assert model_bytes is data  # The file's own bytes went to the model.
        stored = outputs.upsample_mask(model(model_bytes).mask[0], *info.stored_size)
        expected = drawing.upright(stored, info.orientation)  # Turned as the image is shown.
        written = np.asarray(Image.open(predicted / line["mask"]))
        assert written.dtype == np.uint8 and written.shape == (line["height"], line["width"])
        assert np.array_equal(written, expected), line["name"]
        assert model(model_bytes).mask.shape == (1, SIZE, SIZE)
        assert line["class_fractions"] == outputs.class_fractions(written, ("pet", "background", "border"))
        overlay = Image.open(predicted / line["overlay"])
        assert overlay.mode == "RGB" and overlay.size == (line["width"], line["height"])


def test_bad_files_and_a_taken_name_are_dead_letters(predicted, hostile, run):
    dead = {d["source"]: d for d in _lines(predicted / DEAD_LETTERS_NAME)}
    reasons = {os.path.basename(source): d["reason"] for source, d in dead.items()}
    truncated = next(n for n, fault in run.faults.items() if fault == "truncated_jpeg")
    assert reasons == {
        f"{truncated}.jpg": "undecodable_image",  # Its header reads; the model's decoder refuses it, alone.
        "notes.jpg": "unknown_format",
        "empty.jpg": "empty_image",
        "Abyssinian_1.png": "duplicate_name",
    }
    assert "Invalid JPEG data" in dead[str(hostile / f"{truncated}.jpg")]["detail"]
    assert str(hostile / "Abyssinian_1.jpg") in dead[str(hostile / "Abyssinian_1.png")]["detail"]
    lines = {x["name"]: x for x in _lines(predicted / PREDICTIONS_JSONL_NAME)}
    assert lines["Abyssinian_1"]["source"] == str(hostile / "Abyssinian_1.jpg")
    assert (lines["rotated"]["width"], lines["rotated"]["height"]) == (40, 70)  # Stored 70x40, shown turned.
    assert list(lines) == sorted(lines)  # predictions.jsonl is sorted by name.


def test_records_of_stage_1_are_predicted_by_their_file_name(run, model, tmp_path):
    from beam_seg.records import decode_example

    out = tmp_path / "out"
    shards = str(run.tfrecords / "test-*.tfrecord")
    assert predict.run(["--input", shards, "--model", str(run.model), "--output_dir", str(out), *IN_MEMORY]) == 0
    lines = {x["name"]: x for x in _lines(out / PREDICTIONS_JSONL_NAME)}
    assert not _lines(out / DEAD_LETTERS_NAME)
    import tensorflow as tf

    files = sorted(str(p) for p in run.tfrecords.glob("test-*"))
    records = [decode_example(r.numpy()) for r in tf.data.TFRecordDataset(files)]
    assert sorted(lines) == sorted(r.file_name for r in records) and records
    for record in records:
        expected = outputs.upsample_mask(model(record.image).mask[0], record.width, record.height)
        assert np.array_equal(np.asarray(Image.open(out / "masks" / f"{record.file_name}.png")), expected)


def test_an_earlier_run_is_kept_unless_overwrite(predicted, run, hostile, caplog):
    argv = ["--input", str(hostile / "rotated.jpg"), "--model", str(run.model), "--output_dir", str(predicted)]
    before = (predicted / PREDICTIONS_JSONL_NAME).read_bytes()
    assert predict.run([*argv, *IN_MEMORY]) == cli.EXIT_USAGE
    assert "already holds predictions" in caplog.text and "--overwrite" in caplog.text
    assert (predicted / PREDICTIONS_JSONL_NAME).read_bytes() == before


def test_overwrite_replaces_every_output(run, hostile, tmp_path):
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    (out / "masks" / "stale.png").write_bytes(b"x")
    (out / PREDICTIONS_JSONL_NAME).write_text('{"name": "stale"}\n')
    argv = ["--input", str(hostile / "rotated.jpg"), "--model", str(run.model), "--output_dir", str(out)]
    assert predict.run([*argv, "--overwrite", *IN_MEMORY]) == 0
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["rotated.png"]
    assert [x["name"] for x in _lines(out / PREDICTIONS_JSONL_NAME)] == ["rotated"]


def test_nothing_segmented_is_exit_1(run, tmp_path, caplog):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_text("text")
    argv = ["--input", str(tmp_path / "in"), "--model", str(run.model), "--output_dir", str(tmp_path / "out")]
    assert predict.run([*argv, *IN_MEMORY]) == predict.EXIT_FAILED
    assert "no input could be segmented: 1 dead letters (unknown_format 1)" in caplog.text
    assert _lines(tmp_path / "out" / DEAD_LETTERS_NAME)[0]["reason"] == "unknown_format"


def test_a_model_that_does_not_load_on_the_workers_is_one_line_and_exit_1(run, tmp_path, caplog):
    broken = tmp_path / "model"  # Its config, without its SavedModel: the driver's check passes, the load fails.
    broken.mkdir()
    shutil.copy(run.model / "model_config.json", broken)
    out = tmp_path / "out"
    argv = ["--input", str(run.images / "Abyssinian_1.jpg"), "--model", str(broken), "--output_dir", str(out)]
    assert predict.run([*argv, *IN_MEMORY]) == predict.EXIT_FAILED
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    missing = f"{broken / 'saved_model'} holds no saved_model.pb; the model directory is incomplete"
    assert errors == [f"the model did not load: {missing}"]
    assert [d["reason"] for d in _lines(out / DEAD_LETTERS_NAME)] == ["model_not_loaded"]  # Every input accounted for.
    assert "Traceback" not in caplog.text


def test_a_model_directory_without_its_config_is_refused_before_the_job(run, tmp_path, caplog):
    incomplete = tmp_path / "model"
    shutil.copytree(run.model / "saved_model", incomplete / "saved_model")
    argv = ["--input", str(run.images), "--model", str(incomplete), "--output_dir", str(tmp_path / "out")]
    assert predict.run(argv) == cli.EXIT_USAGE
    assert "model_config.json does not exist" in caplog.text
    assert not (tmp_path / "out").exists()
    with pytest.raises(ModelLoadError, match="is not hf://"):
        predict.build_pipeline([*argv[:2], "--model", "hf://nope", "--output_dir", str(tmp_path / "out")])


# ---------------------------------------------------------------------------------------------- command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "beam_seg.predict", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_an_unknown_flag_is_one_line_and_exit_2(tmp_path):
    result = _cli("--input", str(tmp_path), "--model", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--overlya")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "python -m beam_seg.predict: unknown flag --overlya (did you mean --overlay?)"
    ]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--max_batch_size", "2", "--min_batch_size", "4"], "--max_batch_size 2 is below --min_batch_size 4; use at"),
        (["--min_batch_size", "x"], "argument --min_batch_size: invalid int value: 'x'"),
        (["--output_dir", "o"], "--input, --model and --output_dir are required"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(args, line, tmp_path, capsys):
    base = ["--input", str(tmp_path), "--model", str(tmp_path), "--output_dir", str(tmp_path / "o")]
    argv = args if "--output_dir" in args else [*base, *args]
    assert predict.run(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m beam_seg.predict: {line}"), lines
    assert not (tmp_path / "o").exists()


def test_help_answers_at_once_without_importing_beam_or_tensorflow():
    code = (
        "import sys\n"
        "from beam_seg.predict.job import run\n"
        "assert run(['--help']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'tensorflow', 'keras'))\n"
        "assert not heavy, heavy[:5]\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10  # ~0.1 s on a quiet machine; the bound only catches a heavy import.
    for text in ("--input", "--model", "--overlay", "--min_batch_size", "worker_accelerator", "nvidia-tesla-t4"):
        assert text in result.stdout


# ---------------------------------------------------------------------------------------------- Dataflow, offline


def _dataflow_dry_run_script():
    path = os.path.join(REPO_ROOT, "scripts", "dataflow_dry_run.py")
    spec = importlib.util.spec_from_file_location("dataflow_dry_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dataflow_job_is_built_offline(gcs_emulator, run, tmp_path):
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "test-project"
    bucket = client.create_bucket("beam-seg-predict")
    for path in sorted(run.images.glob("*.jpg"))[:3]:
        bucket.blob(f"in/{path.name}").upload_from_filename(str(path))
    bucket.blob("model/model_config.json").upload_from_filename(str(run.model / "model_config.json"))
    record = tmp_path / "dataflow_predict.json"
    image = "us-central1-docker.pkg.dev/p/beam-seg/predict:test"
    argv = [
        *("--input", "gs://beam-seg-predict/in", "--model", "gs://beam-seg-predict/model"),
        *("--output_dir", "gs://beam-seg-predict/out", "--overlay"),
        *("--runner", "DataflowRunner", "--project", "test-project", "--region", "us-central1"),
        *("--temp_location", "gs://beam-seg-predict/tmp", "--staging_location", "gs://beam-seg-predict/staging"),
        *("--sdk_container_image", image, "--machine_type", "n1-standard-4", "--max_num_workers", "3"),
        *("--dataflow_service_options", "worker_accelerator=type:nvidia-tesla-t4;count:1;install-nvidia-driver"),
        "--no_auth",
    ]
    script = _dataflow_dry_run_script()
    assert "predict" in script.STAGES
    assert script.run(["--stage", "predict", "--record", str(record), "--", *argv]) == 0
    job = json.loads(record.read_text())
    assert job["runner"] == "DataflowRunner" and job["dry_run"] and not job["submitted"]
    assert job["job_type"] == "JOB_TYPE_BATCH"
    assert (job["sdk_container_image"], job["environment_images"]) == (image, [image])
    assert (job["machine_type"], job["max_num_workers"]) == ("n1-standard-4", 3)
    for step in ("ReadImages", "PrepareImages", "Segment", "WriteMasks", "WriteReports"):
        assert f"PredictImages/{step}" in job["steps"], job["steps"]
    assert [b.name for b in client.list_blobs(bucket, prefix="out")] == []  # Built, not run.


def test_the_worker_image_of_predict_matches_the_pins():
    """docker/predict.Dockerfile: Beam's SDK image of the pinned Beam and the workflow's Python, plus TensorFlow."""
    import re

    dockerfile = open(os.path.join(REPO_ROOT, "docker", "predict.Dockerfile")).read()
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)$", open(os.path.join(REPO_ROOT, "constraints.txt")).read(), re.M))
    workflow = open(os.path.join(REPO_ROOT, ".github", "workflows", "pipeline.yml")).read()
    assert re.search(rf"^ARG BEAM_VERSION={re.escape(pins['apache-beam'])}$", dockerfile, re.M)
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", dockerfile, re.M).group(1)
    assert re.search(rf"python-version: \"{re.escape(python)}\"", workflow), python
    assert "FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}" in dockerfile
    assert "pip install -c constraints.txt . 'tensorflow[and-cuda]'" in dockerfile  # tensorflow== of the pins.
    assert "tensorflow" in pins


def test_images_in_gcs_to_masks_in_gcs(gcs_emulator, run, model):
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "test-project"
    bucket = client.create_bucket("beam-seg-predict-io")
    names = sorted(p.name for p in run.images.glob("*.jpg") if p.stem not in run.faults)[:3]
    for name in names:
        bucket.blob(f"photos/{name}").upload_from_filename(str(run.images / name))
    bucket.blob("photos/notes.txt").upload_from_string(b"not an image")
    argv = ["--input", "gs://beam-seg-predict-io/photos", "--model", str(run.model)]
    assert predict.run([*argv, "--output_dir", "gs://beam-seg-predict-io/out", "--no_auth", *IN_MEMORY]) == 0
    stems = sorted(os.path.splitext(n)[0] for n in names)
    blobs = sorted(b.name for b in client.list_blobs(bucket, prefix="out/"))
    assert blobs == ["out/dead_letters.jsonl", *(f"out/masks/{s}.png" for s in stems), "out/predictions.jsonl"]
    lines = [json.loads(line) for line in bucket.blob("out/predictions.jsonl").download_as_text().splitlines()]
    assert [x["name"] for x in lines] == stems
    for line in lines:
        data = (run.images / f"{line['name']}.jpg").read_bytes()
        expected = outputs.upsample_mask(model(data).mask[0], line["width"], line["height"])
        written = np.asarray(Image.open(io.BytesIO(bucket.blob(f"out/masks/{line['name']}.png").download_as_bytes())))
        assert np.array_equal(written, expected)
