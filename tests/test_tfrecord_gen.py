"""End-to-end tests of the TFRecord job: real Beam pipelines on real files, read back with tf.data."""

from __future__ import annotations

import filecmp
import glob
import io
import json
import os
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import IN_MEMORY
from PIL import Image

from beam_seg import cli
from beam_seg.data import codec, lists, pipeline, sharding
from beam_seg.data import job as tfrecord_gen
from beam_seg.formats import ERRORS_NAME, SPLITS, STATS_NAME


def _run(input_dir: str, output_dir: str, *extra: str) -> int:
    return tfrecord_gen.run(["--input", input_dir, "--output_dir", output_dir, *IN_MEMORY, *extra])


def _records(output_dir: str, split: str) -> list[codec.PetExample]:
    files = sorted(glob.glob(os.path.join(output_dir, f"{split}-*-of-*.tfrecord")))
    return [codec.decode_example(r.numpy()) for r in tf.data.TFRecordDataset(files)]


def _errors(output_dir: str) -> dict[str, dict]:
    with open(os.path.join(output_dir, ERRORS_NAME)) as f:
        return {e["name"]: e for e in map(json.loads, f)}


def _stats(output_dir: str) -> dict:
    with open(os.path.join(output_dir, STATS_NAME)) as f:
        return json.load(f)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def damaged(pets_copy, pets_dir):
    """The sample layout plus one file of every dead-letter kind; returns (root, name -> reason, extras)."""
    root = pets_copy
    clean = [n for n in pets_dir.trainval + pets_dir.test if n not in pets_dir.faults]
    img = lambda n, ext=".jpg": os.path.join(root, "images", n + ext)  # noqa: E731
    tri = lambda n: os.path.join(root, "annotations", "trimaps", n + ".png")  # noqa: E731
    expected = {n: "undecodable_image" for n, kind in pets_dir.faults.items() if kind == "truncated_jpeg"}
    victims = iter(clean)

    name = next(victims)
    os.remove(img(name))
    expected[name] = "missing_image"
    name = next(victims)
    os.remove(tri(name))
    expected[name] = "missing_trimap"
    name = next(victims)
    open(img(name), "wb").close()
    expected[name] = "empty_image"
    name = next(victims)
    with open(img(name), "wb") as f:
        f.write(b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon")
    expected[name] = "unknown_format"
    name = next(victims)
    trimap = np.asarray(Image.open(tri(name)))
    with open(tri(name), "wb") as f:
        f.write(_png(trimap[: trimap.shape[0] // 2]))
    expected[name] = "size_mismatch"
    name = next(victims)
    bad = np.asarray(Image.open(tri(name))).copy()
    bad[0, :3] = [0, 4, 255]
    with open(tri(name), "wb") as f:
        f.write(_png(bad))
    expected[name] = "bad_trimap_values"
    name = next(victims)
    with open(tri(name), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n garbage")
    expected[name] = "undecodable_trimap"
    name = next(victims)
    shutil.copy(img(name), img(name, ".png"))
    expected[name] = "duplicate_image"
    # Files that must be ignored and counted: an unlisted image and an orphan trimap.
    shutil.copy(img(next(victims)), img("Bombay_999"))
    shutil.copy(tri(next(victims)), tri("beagle_999"))
    return root, expected


def test_every_fault_lands_in_the_dead_letter_and_accounting_holds(damaged, pets_dir, tmp_path):
    root, expected = damaged
    out = str(tmp_path / "out")
    assert _run(root, out) == 0
    errors = _errors(out)
    assert {n: e["reason"] for n, e in errors.items()} == expected
    assert all(set(e) == {"name", "split", "stage", "reason", "detail"} for e in errors.values())
    stats = _stats(out)
    records = {split: _records(out, split) for split in SPLITS}
    listed = len(pets_dir.trainval) + len(pets_dir.test)
    assert stats["listed"] == listed
    assert sum(len(r) for r in records.values()) + len(errors) == listed == stats["records"] + stats["errors"]
    assert stats["errors_by_reason"] == {r: list(expected.values()).count(r) for r in set(expected.values())}
    assert stats["ignored_files"] == {
        "appledouble_file": 2,
        "unexpected_image_extension_mat": 2,
        "unlisted_image": 1,
        "unlisted_trimap": 1,
    }
    # CMYK, grayscale, RGBA and palette PNGs named .jpg became RGB records.
    conversions = {}
    for split in SPLITS:
        for kind, n in stats["splits"][split]["conversions"].items():
            conversions[kind] = conversions.get(kind, 0) + n
    assert conversions == {"JPEG/CMYK": 1, "JPEG/L": 1, "PNG/P": 1, "PNG/RGBA": 1}
    by_name = {r.file_name: r for rs in records.values() for r in rs}
    for name, kind in pets_dir.faults.items():
        if kind != "truncated_jpeg":
            image = Image.open(io.BytesIO(by_name[name].image))
            assert (image.format, image.mode) == ("JPEG", "RGB")


def test_records_match_the_lists_splits_and_labels(pets_dir, tmp_path):
    out = str(tmp_path / "out")
    assert _run(pets_dir.root, out, "--input_layout", "extracted") == 0
    records = {split: _records(out, split) for split in SPLITS}
    bad = {n for n, k in pets_dir.faults.items() if k == "truncated_jpeg"}
    assert {r.file_name for r in records["test"]} == set(pets_dir.test) - bad
    trainval = {r.file_name for r in records["train"] + records["val"]}
    assert trainval == set(pets_dir.trainval) - bad
    assert {r.file_name for r in records["val"]} == {n for n in trainval if sharding.is_val(n, 0.1)}
    for r in records["train"] + records["val"] + records["test"]:
        assert (r.label, r.species) == (
            lists.entry_from_name(r.file_name).label,
            lists.entry_from_name(r.file_name).species,
        )
        # Untouched source JPEG bytes when no resize was asked and the image was a valid RGB JPEG.
        if r.file_name not in pets_dir.faults:
            with open(os.path.join(pets_dir.root, "images", r.file_name + ".jpg"), "rb") as f:
                assert r.image == f.read()
    # Output bytes stay close to the source bytes (no float lists).
    source = sum(os.path.getsize(p) for p in glob.glob(os.path.join(pets_dir.root, "images", "*.jpg")))
    shards = sum(os.path.getsize(p) for p in glob.glob(os.path.join(out, "*.tfrecord")))
    assert shards < 1.2 * source


def test_resize_gives_square_images_and_nearest_masks(pets_dir, tmp_path):
    out = str(tmp_path / "out")
    assert _run(pets_dir.root, out, "--resize", "32", "--input_layout", "extracted") == 0
    for r in _records(out, "train")[:10]:
        assert (r.height, r.width) == (32, 32)
        assert Image.open(io.BytesIO(r.image)).size == (32, 32)
        mask = np.asarray(Image.open(io.BytesIO(r.mask)))
        assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 1, 2}
    stats = _stats(out)["splits"]["train"]
    assert stats["height"] == {"min": 32, "max": 32, "mean": 32.0}
    assert stats["source_height"]["max"] > 32
    assert abs(sum(stats["class_pixel_fractions"].values()) - 1) < 1e-4


def test_rerun_is_byte_identical_and_archives_match_the_extracted_layout(pets_dir, tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    assert _run(pets_dir.root, a, "--resize", "48", "--input_layout", "extracted", "--shards_per_split", "3") == 0
    assert _run(pets_dir.root, b, "--resize", "48", "--input_layout", "extracted", "--shards_per_split", "3") == 0
    assert _run(pets_dir.root, c, "--resize", "48", "--input_layout", "archives", "--shards_per_split", "3") == 0
    names = sorted(os.listdir(a))
    assert len([n for n in names if n.startswith("train-")]) == 3
    assert names == sorted(os.listdir(b)) == sorted(os.listdir(c))
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errors
    _, mismatch, errors = filecmp.cmpfiles(a, c, [n for n in names if n.endswith(".tfrecord")], shallow=False)
    assert not mismatch and not errors
    # Inside a shard, records are ordered by their stable key.
    first = os.path.join(a, "test-00000-of-00003.tfrecord")
    keys = [sharding.shard_key(codec.decode_example(r.numpy()).file_name) for r in tf.data.TFRecordDataset(first)]
    assert len(keys) > 1 and keys == sorted(keys) and {k % 3 for k in keys} == {0}


def test_input_without_split_lists_is_all_trainval(pets_copy, tmp_path):
    for name in ("trainval.txt", "test.txt"):
        os.remove(os.path.join(pets_copy, "annotations", name))
    shutil.copy(os.path.join(pets_copy, "images", "Bombay_1.jpg"), os.path.join(pets_copy, "images", "unicorn_1.jpg"))
    out = str(tmp_path / "out")
    assert _run(pets_copy, out) == 0
    stats = _stats(out)
    assert stats["splits"]["test"]["num_examples"] == 0 and stats["shards"]["test"] == []
    assert stats["errors_by_reason"] == {"undecodable_image": 1, "unknown_breed": 1}
    assert stats["listed"] == 61 == stats["records"] + stats["errors"]


def test_existing_output_needs_overwrite_and_is_replaced(pets_dir, tmp_path, caplog):
    out = str(tmp_path / "out")
    assert _run(pets_dir.root, out, "--resize", "32", "--shards_per_split", "2") == 0
    assert _run(pets_dir.root, out, "--resize", "32") == 2
    assert "already holds a TFRecord set" in caplog.text and "--overwrite" in caplog.text
    assert _run(pets_dir.root, out, "--resize", "32", "--overwrite") == 0
    shards = sorted(n for n in os.listdir(out) if n.endswith(".tfrecord"))
    assert shards == ["test-00000-of-00001.tfrecord", "train-00000-of-00001.tfrecord", "val-00000-of-00001.tfrecord"]
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


def test_a_failed_run_leaves_no_complete_looking_output(pets_dir, tmp_path, monkeypatch):
    out = str(tmp_path / "out")
    calls = []

    def failing_write(path, records):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full (injected)")
        return real_write(path, records)

    real_write = sharding.write_tfrecord_file
    monkeypatch.setattr(sharding, "write_tfrecord_file", failing_write)
    with pytest.raises(Exception, match="disk full"):
        _run(pets_dir.root, out, "--resize", "32")
    left = os.listdir(out) if os.path.exists(out) else []
    assert not [n for n in left if not n.startswith(".tmp-")], left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resize", "2"], "--resize 2 is out of range"),
        (["--val_fraction", "1.5"], "--val_fraction 1.5"),
        (["--target_shard_mb", "0"], "--target_shard_mb 0.0"),
    ],
)
def test_bad_arguments_give_a_clear_error(pets_dir, tmp_path, capsys, args, message):
    assert _run(pets_dir.root, str(tmp_path / "o"), *args) == 2
    assert message in capsys.readouterr().err


def test_missing_input_is_a_clear_error(tmp_path, caplog, capsys):
    assert _run(str(tmp_path / "nope"), str(tmp_path / "o")) == 2
    assert "nope" in caplog.text and "images.tar.gz" in caplog.text
    assert tfrecord_gen.run(["--output_dir", str(tmp_path)]) == 2
    assert "--input and --output_dir are required" in capsys.readouterr().err


def test_multiprocess_direct_runner_gives_the_same_bytes(pets_dir, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert _run(pets_dir.root, a, "--resize", "40") == 0
    argv = ["--input", pets_dir.root, "--output_dir", b, "--resize", "40"]
    argv += ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert tfrecord_gen.run(argv) == 0
    names = sorted(os.listdir(a))
    assert names == sorted(os.listdir(b))
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errors


def test_help_lists_every_option(capsys):
    assert tfrecord_gen.run(["--help"]) == 0
    text = capsys.readouterr().out
    for flag in (
        "--input",
        "--input_layout",
        "--output_dir",
        "--resize",
        "--val_fraction",
        "--split_seed",
        "--target_shard_mb",
        "--shards_per_split",
        "--overwrite",
        "--runner",
        "DataflowRunner",
    ):
        assert flag in text


def test_finalize_is_safe_to_retry(tmp_path):
    """Dataflow may run the Finalize bundle twice; the second run must keep the set complete."""
    out, temp = tmp_path / "out", tmp_path / "out" / ".tmp-x"
    temp.mkdir(parents=True)
    (out / "train-00000-of-00003.tfrecord").write_bytes(b"old set")  # a previous run's shard
    (out / STATS_NAME).write_text("{}")
    shard = {"split": "train", "name": "train-00000-of-00001.tfrecord", "temp_path": str(temp / "t0"), "records": 1}
    finalize = pipeline._FinalizeFn(output_dir=str(out), temp_dir=str(temp), listed=1, config={})
    report = {"splits": {"train": {"num_examples": 1}}, "errors": [], "ignored": {}}
    for attempt in range(2):
        if attempt == 0:
            (temp / "t0").write_bytes(b"new shard")
        (result,) = finalize.process(b"", report=report, shards=[shard])
        assert sorted(os.listdir(out)) == [
            "errors-00000-of-00001.jsonl",
            "schema.pbtxt",
            "stats.json",
            "train-00000-of-00001.tfrecord",
        ]
        assert (out / "train-00000-of-00001.tfrecord").read_bytes() == b"new shard"
        assert result["records"] == 1 and result["listed"] == 1


def test_an_input_without_any_record_fails_and_writes_nothing(tmp_path, caplog):
    """Nothing reaches the report combine: Finalize substitutes the empty report, then refuses a set of 0 records."""
    src = tmp_path / "src"
    src.mkdir()
    for archive, folder in (("images.tar.gz", "images"), ("annotations.tar.gz", "annotations/trimaps")):
        with tarfile.open(src / archive, "w:gz") as tar:
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    out = tmp_path / "out"
    assert _run(str(src), str(out)) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    expected = (
        "no records: none of the 0 listed images became a record (no image files found); nothing was "
        "written to the output directory"
    )
    assert errors == [expected]
    assert not out.exists() or os.listdir(out) == []  # Not even a temporary folder.


def test_a_set_of_only_dead_letters_fails_naming_the_reasons(pets_copy, tmp_path, caplog):
    for name in os.listdir(os.path.join(pets_copy, "images")):
        with open(os.path.join(pets_copy, "images", name), "wb"):
            pass  # Every image empty: every listed image becomes a dead letter.
    out = tmp_path / "out"
    assert _run(pets_copy, str(out)) == 1
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert error.startswith("no records: none of the 60 listed images became a record (empty_image 60); first: ")
    assert not out.exists() or os.listdir(out) == []


def test_an_accounting_mismatch_fails_before_the_output_is_touched(tmp_path):
    """records + errors != listed (a lost element) must never produce a complete-looking set."""
    out, temp = tmp_path / "out", tmp_path / "out" / ".tmp-x"
    temp.mkdir(parents=True)
    (out / STATS_NAME).write_text('{"old": true}')  # A previous complete set stays as it was.
    (temp / "t0").write_bytes(b"new shard")
    shard = {"split": "train", "name": "train-00000-of-00001.tfrecord", "temp_path": str(temp / "t0"), "records": 1}
    finalize = pipeline._FinalizeFn(output_dir=str(out), temp_dir=str(temp), listed=3, config={})
    report = {"splits": {"train": {"num_examples": 1}}, "errors": [], "ignored": {}}
    with pytest.raises(pipeline.IncompleteOutputError, match=r"1 records \+ 0 errors != 3 listed images"):
        list(finalize.process(b"", report=report, shards=[shard]))
    assert sorted(os.listdir(out)) == [STATS_NAME] and (out / STATS_NAME).read_text() == '{"old": true}'


@pytest.mark.parametrize(
    ("args", "redistributed"),
    [
        (IN_MEMORY, False),  # One local worker: a Reshuffle would only cost time.
        (["--direct_running_mode=multi_threading", "--direct_num_workers=2"], True),
    ],
)
def test_file_groups_are_redistributed_wherever_several_workers_run(pets_dir, tmp_path, args, redistributed):
    argv = ["--input", pets_dir.root, "--input_layout", "extracted", "--output_dir", str(tmp_path), *args]
    p, _ = tfrecord_gen.build_pipeline(argv)
    labels = {t.unique_name for t in p.to_runner_api().components.transforms.values()}
    assert any(label.endswith("ReadPetsFiles/Redistribute") for label in labels) == redistributed
    # On Dataflow (and any other runner) always: one worker would otherwise do all the work.
    remote = cli.parse_pipeline_options(["--runner", "DataflowRunner", "--direct_num_workers=1"])
    assert pipeline.runs_on_many_workers(remote)
