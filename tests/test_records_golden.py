"""Golden bytes of stage 1: the sample data's shards, dead letters, schema and statistics, pinned by sha256.

The shard hashes were taken with the TensorFlow-based writer that the TensorFlow-free codec replaced, so these tests
prove the records did not change by a single byte. A deliberate change of the record format (or of the sample data
or the pinned Pillow/protobuf) must update them, and say so in the change; so must a change of the reports' contents
(the dead letters' ``detail`` text, ``stats.json``'s ``config``).
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from conftest import IN_MEMORY

from beam_seg.data import job

GOLDEN: dict[str, dict[str, str]] = {
    "extracted_source_bytes": {
        "errors-00000-of-00001.jsonl": "6bd0829c0bbc65f14219b9f08f76c28d7b79c15f9897ad850cad42894aa7f896",
        "schema.pbtxt": "c562f5c5753586fadb50cddd319ec65baf8925c10245320c2dde2b5129bde814",
        "stats.json": "ba3bbefaa99002fd918cf7fed4288746aa3df2035523da8d3823392025ce560e",
        "test-00000-of-00002.tfrecord": "77d6984303f6793ff5b2742eea78a429b10419b3627beaf3a8f930fbe660ef54",
        "test-00001-of-00002.tfrecord": "74a075a13115619f640e15de9c3fdc50c0e905b2c8776a11bf710e41ce33a00e",
        "train-00000-of-00002.tfrecord": "08d39d64344ef31e76b3d3410cec3201d0050e42289765ef46a25e72014e614d",
        "train-00001-of-00002.tfrecord": "6358d81e08f664ee679a974bf45f09367a35fe0a64d3159504629749a4520bef",
        "val-00000-of-00002.tfrecord": "63eb75d7681184efc9bf309352d1c868650a6bc2f43d14fa2e68d78df19c7d5f",
        "val-00001-of-00002.tfrecord": "a0711124ca11ac3921715f52bdcc9e0e8d8ce60877b8bad9d4c5e16067e9cb90",
    },
    "archives_resize_64": {
        "errors-00000-of-00001.jsonl": "6bd0829c0bbc65f14219b9f08f76c28d7b79c15f9897ad850cad42894aa7f896",
        "schema.pbtxt": "c562f5c5753586fadb50cddd319ec65baf8925c10245320c2dde2b5129bde814",
        "stats.json": "7bd78791d88649c427d6c9322d6ce8b4dbda15aa79c8423c41ff9842722e94f6",
        "test-00000-of-00001.tfrecord": "25ca6ba308a93123dc1983bb4c261a5bd824c0c2e63be3bc28e9c9a52ab36cd8",
        "train-00000-of-00001.tfrecord": "1ae46e541a3350ed6d6d75beeadb641b84b6db6006bcf6d395e5a56cded7a0a1",
        "val-00000-of-00001.tfrecord": "b1a6f24d8f0cef09f70d9803fccaec79e9d5fe9c1bf7de18dee699ea915267c9",
    },
}
FLAGS: dict[str, list[str]] = {
    # The source JPEG bytes kept as they are (no resize), two shards per split.
    "extracted_source_bytes": ["--input_layout", "extracted", "--shards_per_split", "2"],
    # Every image re-encoded (resize, and the converted CMYK/grayscale/RGBA/palette faults), archives streamed.
    "archives_resize_64": ["--input_layout", "archives", "--resize", "64"],
}


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read()
    if os.path.basename(path) == "stats.json":  # The input's path depends on the machine.
        stats = json.loads(data)
        stats["config"].pop("input")
        data = json.dumps(stats, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_stage_1_writes_the_golden_bytes(pets_dir, tmp_path, case):
    # pets_dir: make_sample_data(num_images=60, min_size=64, max_size=160, archives=True, seed=1), see conftest.
    out = str(tmp_path / case)
    assert job.run(["--input", pets_dir.root, "--output_dir", out, *IN_MEMORY, *FLAGS[case]]) == 0
    assert {name: _digest(os.path.join(out, name)) for name in sorted(os.listdir(out))} == GOLDEN[case]
