"""The file helpers: one join/read/write for local paths and gs:// URIs, and writes that are atomic."""

from __future__ import annotations

import os

import pytest

from beam_seg import fs


def test_local_round_trip_and_listing(tmp_path):
    path = fs.join(str(tmp_path), "a", "b.json")
    fs.write_json(path, {"x": [1, 2]})
    assert fs.read_json(path) == {"x": [1, 2]} and fs.exists(path)
    assert fs.read_text(path).endswith("\n")
    assert fs.glob(fs.join(str(tmp_path), "a", "*.json")) == [path]
    fs.delete([fs.join(str(tmp_path), "a"), fs.join(str(tmp_path), "missing")])
    assert not fs.exists(path)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = str(tmp_path / "manifest.json")
    fs.write_bytes(path, b"old")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device (injected)")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        fs.write_bytes(path, b"new")
    assert open(path, "rb").read() == b"old"
    assert os.listdir(tmp_path) == ["manifest.json"]


def test_temporary_names_are_recognised(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(src)
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    fs.write_bytes(str(tmp_path / "x.json"), b"{}")
    assert fs.is_temporary(seen[0]) and not fs.is_temporary(str(tmp_path / "x.json"))


def test_read_json_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        fs.read_json(str(bad))
    with pytest.raises(FileNotFoundError):
        fs.read_json(str(tmp_path / "nope.json"))


def test_gcs_round_trip(gcs_emulator):
    from google.cloud import storage

    client = storage.Client.create_anonymous_client()
    client.project = "test-project"
    bucket = client.lookup_bucket("beam-seg-fs") or client.create_bucket("beam-seg-fs")
    path = fs.join("gs://beam-seg-fs", "run", "stats.json")
    fs.write_json(path, {"ok": True})
    fs.write_json(path, {"ok": False})  # Replaced.
    assert fs.read_json(path) == {"ok": False} and fs.exists(path)
    assert fs.glob("gs://beam-seg-fs/run/*") == [path]
    assert [b.name for b in bucket.list_blobs(prefix="run/")] == ["run/stats.json"]
