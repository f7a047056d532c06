"""Tests of stable hashing, the val carve-out and shard counts (beam_seg.data.splits)."""

from __future__ import annotations

import subprocess
import sys

from beam_seg.data import splits
from beam_seg.formats import shard_name


def test_stable_hash_is_identical_in_another_process():
    here = splits.stable_hash("Bombay_1", "salt", 3)
    code = "from beam_seg.data import splits; print(splits.stable_hash('Bombay_1', 'salt', 3))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == here


def test_val_fraction_is_close_to_requested_and_seed_changes_membership():
    names = [f"beagle_{i}" for i in range(5000)]
    share = sum(splits.is_val(n, 0.1) for n in names) / len(names)
    assert 0.08 < share < 0.12
    assert {n for n in names if splits.is_val(n, 0.1, 0)} != {n for n in names if splits.is_val(n, 0.1, 1)}
    assert not any(splits.is_val(n, 0.0) for n in names)


def test_num_shards_comes_from_the_data():
    assert splits.num_shards_for(0, 128_000_000) == 1
    assert splits.num_shards_for(128_000_001, 128_000_000) == 2
    assert splits.num_shards_for(10, 128_000_000, fixed=4) == 4
    assert shard_name("val", 2, 10) == "val-00002-of-00010.tfrecord"
