"""End-to-end tests of the TFRecord job: real Beam pipelines on real files, read back with tf.data."""

from __future__ import annotations

import errno
import filecmp
import glob
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import IN_MEMORY, declaring_size
from PIL import Image

from beam_seg import cli, fs
from beam_seg.data import codec, examples, imaging, lists, pipeline, provenance, sharding, splits
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


def test_stats_json_says_which_data_it_was_made_from(pets_copy, tmp_path):
    """The sample data's marker makes ``dataset`` synthetic, its absence the official data; it is never junk."""
    assert _run(pets_copy, str(tmp_path / "sample"), "--resize", "32") == 0
    os.remove(os.path.join(pets_copy, provenance.SAMPLE_MARKER))
    assert _run(pets_copy, str(tmp_path / "official"), "--resize", "32") == 0
    sample, official = _stats(str(tmp_path / "sample")), _stats(str(tmp_path / "official"))
    assert sample["dataset"] == {
        "name": "synthetic sample data (python -m beam_seg.sample_data)",
        "synthetic": True,
        "source": "annotations/beam_seg_sample.json",
        "seed": 1,
        "num_images": 60,
        "min_size": 64,
        "max_size": 160,
        "test_fraction": 0.5,
        "faults": True,
    }
    assert official["dataset"] == {"name": "Oxford-IIIT Pet", "synthetic": False, "source": "official layout"}
    assert (
        sample["ignored_files"]
        == official["ignored_files"]
        == {"appledouble_file": 2, "unexpected_image_extension_mat": 2}
    )
    assert {k: v for k, v in sample.items() if k != "dataset"} == {k: v for k, v in official.items() if k != "dataset"}


def test_records_match_the_lists_splits_and_labels(pets_dir, tmp_path):
    out = str(tmp_path / "out")
    assert _run(pets_dir.root, out, "--input_layout", "extracted") == 0
    records = {split: _records(out, split) for split in SPLITS}
    bad = {n for n, k in pets_dir.faults.items() if k == "truncated_jpeg"}
    assert {r.file_name for r in records["test"]} == set(pets_dir.test) - bad
    trainval = {r.file_name for r in records["train"] + records["val"]}
    assert trainval == set(pets_dir.trainval) - bad
    assert {r.file_name for r in records["val"]} == {n for n in trainval if splits.is_val(n, 0.1)}
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
    keys = [splits.shard_key(codec.decode_example(r.numpy()).file_name) for r in tf.data.TFRecordDataset(first)]
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


@pytest.mark.parametrize("where", ["shard", "move", "stats"])
def test_a_full_disk_fails_in_one_line_and_leaves_nothing_complete_looking(
    pets_dir, tmp_path, monkeypatch, caplog, where
):
    """A full disk (ENOSPC) while writing a shard to the temporary folder, moving the set into place, or writing
    ``stats.json`` (simulated by failing that call)."""
    out = str(tmp_path / "out")
    full = OSError(errno.ENOSPC, "No space left on device")
    real_write_bytes = fs.write_bytes

    def failing_shard_write(path, records):
        raise full

    def failing_rename(sources, destinations):
        raise full

    def failing_write_bytes(path, data):
        if path.endswith(STATS_NAME):
            raise full  # fs.write_bytes removes its own partial temporary file (tests/test_fs.py).
        return real_write_bytes(path, data)

    if where == "shard":
        monkeypatch.setattr(sharding, "write_tfrecord_file", failing_shard_write)
    elif where == "move":
        monkeypatch.setattr(pipeline.FileSystems, "rename", failing_rename)
    else:
        monkeypatch.setattr(fs, "write_bytes", failing_write_bytes)
    assert _run(pets_dir.root, out, "--resize", "32") == 1
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "No space left on device" in error and "\n" not in error
    assert not any(r.exc_info for r in caplog.records)
    left = os.listdir(out)
    assert STATS_NAME not in left and not [n for n in left if ".tmp-" in n], left  # Nothing looks complete.
    if where != "stats":
        assert left == []  # Not a shard, not even the temporary folder.
    monkeypatch.undo()
    assert _run(pets_dir.root, out, "--resize", "32", "--overwrite") == 0  # With space again, a rerun completes.


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


@pytest.mark.parametrize(
    "mode",
    [
        ["--direct_running_mode=in_memory", "--direct_num_workers=1", "--prepare_processes=2"],  # the default
        ["--direct_running_mode=multi_threading", "--direct_num_workers=2"],
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    ],
    ids=["pool", "threads", "processes"],
)
def test_every_running_mode_gives_the_same_bytes(pets_dir, tmp_path, mode):
    """Against one in-memory worker in this process; --resize re-encodes every image, the faults convert some."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert _run(pets_dir.root, a, "--resize", "40", "--prepare_processes", "1") == 0
    argv = ["--input", pets_dir.root, "--output_dir", b, "--resize", "40", *mode]
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
    finalize = pipeline._FinalizeFn(output_dir=str(out), temp_dir=str(temp), listed=1, config={}, dataset={})
    report = {"splits": {"train": {"num_examples": 1}}, "errors": [], "ignored": {}, "failures": []}
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
    finalize = pipeline._FinalizeFn(output_dir=str(out), temp_dir=str(temp), listed=3, config={}, dataset={})
    report = {"splits": {"train": {"num_examples": 1}}, "errors": [], "ignored": {}, "failures": []}
    (failure,) = pipeline.failures_of(report, [shard], finalize._stats(report, [shard]))
    assert "1 records + 0 errors != 3 listed images" in failure
    assert list(finalize.process(b"", report=report, shards=[shard])) == []  # Reported, not raised: see _FinalizeFn.
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


def test_hostile_files_become_dead_letters_or_faithful_records(pets_copy, pets_dir, tmp_path, capfd):
    root = pets_copy
    clean = iter(n for n in pets_dir.trainval + pets_dir.test if n not in pets_dir.faults)
    img = lambda n: os.path.join(root, "images", n + ".jpg")  # noqa: E731
    tri = lambda n: os.path.join(root, "annotations", "trimaps", n + ".png")  # noqa: E731
    rewrite = lambda path, change: pathlib.Path(path).write_bytes(change(pathlib.Path(path).read_bytes()))  # noqa: E731
    bomb_image, bomb_trimap, palette, rotated = next(clean), next(clean), next(clean), next(clean)
    rewrite(img(bomb_image), lambda b: declaring_size(b, 20000, 20000))  # 400 MP from a few KB
    rewrite(tri(bomb_trimap), lambda b: declaring_size(b, 12000, 12000))
    levels = np.asarray(Image.open(tri(palette)))
    indices = Image.fromarray(np.select([levels == 1, levels == 2, levels == 3], [3, 1, 2]).astype(np.uint8), "P")
    indices.putpalette([0, 0, 0, 2, 2, 2, 3, 3, 3, 1, 1, 1])  # An editor's reordered palette
    indices.save(tri(palette))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(img(rotated)).save(img(rotated), quality=95, exif=exif.tobytes())
    out = str(tmp_path / "out")

    assert _run(root, out) == 0
    assert "Traceback" not in capfd.readouterr().err
    errors = _errors(out)
    assert {n: errors[n]["reason"] for n in (bomb_image, bomb_trimap)} == {
        bomb_image: "image_too_large",
        bomb_trimap: "image_too_large",
    }
    assert "trimap declares 12000x12000" in errors[bomb_trimap]["detail"]
    by_name = {r.file_name: r for split in SPLITS for r in _records(out, split)}
    np.testing.assert_array_equal(imaging.decode_png_mask(by_name[palette].mask), levels - 1)
    stored = Image.open(io.BytesIO(by_name[rotated].image))
    assert stored.getexif()[0x0112] == 1
    conversions = [s["conversions"].get(imaging.ORIENTATION_DROPPED, 0) for s in _stats(out)["splits"].values()]
    assert sum(conversions) == 1


def test_a_truncated_archive_fails_in_one_line_without_a_traceback(pets_dir, tmp_path):
    """The default runner, as a user runs it (a process), on an images.tar.gz cut in half."""
    src = tmp_path / "src"
    src.mkdir()
    data = open(os.path.join(pets_dir.root, "images.tar.gz"), "rb").read()
    (src / "images.tar.gz").write_bytes(data[: len(data) // 2])
    shutil.copy(os.path.join(pets_dir.root, "annotations.tar.gz"), src)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "beam_seg.tfrecord_gen", "--input", str(src), "--output_dir", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (error,) = [line for line in proc.stderr.splitlines() if " ERROR: " in line]
    assert error.endswith(
        f"{src}/images.tar.gz is truncated or corrupt (ReadError: unexpected end of data, after "
        f"{error.split('after ')[1].split(' ')[0]} files); download it again"
    )
    assert os.listdir(out) == []


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda src: open(src / "annotations.tar.gz", "wb").close(), "annotations.tar.gz is empty (0 bytes)"),
        (lambda src: (src / "images.tar.gz").write_bytes(b"<html>"), "images.tar.gz is not a gzip file"),
        (
            lambda src: (src / "annotations.tar.gz").write_bytes((src / "annotations.tar.gz").read_bytes()[:2000]),
            "annotations.tar.gz is truncated or corrupt",
        ),
    ],
)
def test_a_damaged_archive_is_refused_before_the_job_starts(pets_dir, tmp_path, caplog, damage, message):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("images.tar.gz", "annotations.tar.gz"):
        shutil.copy(os.path.join(pets_dir.root, name), src)
    damage(src)
    assert _run(str(src), str(tmp_path / "out")) == 2
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert message in error and "download it again" in error
    assert not (tmp_path / "out").exists()


def test_one_split_list_without_the_other_is_refused_unless_allowed(pets_copy, pets_dir, tmp_path, caplog):
    os.remove(os.path.join(pets_copy, "annotations", "trainval.txt"))
    assert _run(pets_copy, str(tmp_path / "a")) == 2
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "has annotations/test.txt but no annotations/trainval.txt" in error
    assert "--allow_missing_split_list" in error
    assert _run(pets_copy, str(tmp_path / "b"), "--allow_missing_split_list") == 0
    stats = _stats(str(tmp_path / "b"))
    assert stats["listed"] == len(pets_dir.test)
    assert stats["ignored_files"]["unlisted_image"] == len(pets_dir.trainval)


def test_a_rerun_removes_what_killed_runs_left_and_an_unwritable_output_is_one_line(pets_dir, tmp_path, caplog):
    out = tmp_path / "out"
    (out / ".tmp-0123456789abcdef0123456789abcdef").mkdir(parents=True)  # A killed run's shards
    (out / ".tmp-0123456789abcdef0123456789abcdef" / "train-00000-of-00001.tfrecord").write_bytes(b"x" * 100)
    (out / "stats.json.tmp-0123456789ab").write_bytes(b"{")  # A killed atomic write
    assert _run(pets_dir.root, str(out), "--resize", "32") == 0
    assert sorted(n for n in os.listdir(out) if not n.endswith(".tfrecord")) == [
        ERRORS_NAME,
        "schema.pbtxt",
        STATS_NAME,
    ]
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert _run(pets_dir.root, str(blocked / "out")) == 2
    (error,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert error.startswith(f"cannot prepare --output_dir {blocked / 'out'}: ")


def test_equivalent_input_spellings_give_identical_statistics(pets_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(pets_dir.root))
    relative = os.path.basename(pets_dir.root) + "/./"
    assert _run(relative, str(tmp_path / "a"), "--resize", "32") == 0
    assert _run(pets_dir.root + "/", str(tmp_path / "b"), "--resize", "32") == 0
    a, b = (open(tmp_path / d / STATS_NAME, "rb").read() for d in "ab")
    assert a == b and json.loads(a)["config"]["input"] == os.path.abspath(pets_dir.root)


def test_a_file_that_cannot_be_read_is_a_dead_letter(pets_dir, tmp_path, monkeypatch):
    """Reading is simulated to fail for one image (a vanished file or an I/O error; root ignores permissions).

    One process (``--prepare_processes 1``), so the patched reader is the one that runs.
    """
    victim = next(n for n in pets_dir.trainval if n not in pets_dir.faults)
    real_read = examples.read_payload

    def read(payload):
        if isinstance(payload, str) and os.path.basename(payload) == victim + ".jpg":
            raise PermissionError(13, "Permission denied", payload)
        return real_read(payload)

    monkeypatch.setattr(examples, "read_payload", read)
    out = str(tmp_path / "out")
    assert _run(pets_dir.root, out, "--input_layout", "extracted", "--resize", "32", "--prepare_processes", "1") == 0
    error = _errors(out)[victim]
    assert error["reason"] == "unreadable_file" and "Permission denied" in error["detail"]


def test_the_default_console_is_progress_and_a_summary(pets_dir, tmp_path):
    """A whole run as a user starts it: a few lines; the libraries' INFO logs only with -v."""
    command = [sys.executable, "-m", "beam_seg.tfrecord_gen", "--input", pets_dir.root, "--resize", "32"]
    quiet = subprocess.run([*command, "--output_dir", str(tmp_path / "a")], capture_output=True, text=True, check=True)
    lines = (quiet.stderr + quiet.stdout).splitlines()
    assert len(lines) <= 30, lines
    assert quiet.stdout.startswith("tfrecord_gen: 59 records of 60 listed images") and "apache_beam" not in quiet.stderr
    verbose = subprocess.run(
        [*command, "--output_dir", str(tmp_path / "b"), "-v"], capture_output=True, text=True, check=True
    )
    assert "INFO apache_beam" in verbose.stderr


def test_progress_lines_count_the_whole_job(pets_dir, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(pipeline, "PROGRESS_SECONDS", 0.0)
    assert _run(pets_dir.root, str(tmp_path / "out"), "--resize", "32") == 0
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("prepared ")]
    assert progress and progress[-1].startswith("prepared 59 of 60 listed images (")
