"""Golden bytes of stage 1: the sample data's shards, dead letters, schema and statistics, pinned by sha256.

They pin every byte of the records (framing, serialization, the kept source JPEGs and the re-encoded ones: quality
95, 4:4:4 chroma) and of the reports. A deliberate change of the record format, of the re-encoding, of the sample
data or of the pinned Pillow/protobuf must update them and say so in the change; so must a change of the reports'
contents (the dead letters' ``detail`` text, ``stats.json``'s ``config`` and ``dataset``).
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
        "stats.json": "1b6d0b03f2d7e208fa219f4831424c523a0afc54aac8daf055a65fae13f7886f",
        "test-00000-of-00002.tfrecord": "77d6984303f6793ff5b2742eea78a429b10419b3627beaf3a8f930fbe660ef54",
        "test-00001-of-00002.tfrecord": "74a075a13115619f640e15de9c3fdc50c0e905b2c8776a11bf710e41ce33a00e",
        "train-00000-of-00002.tfrecord": "73061984d3000b85dbc6e6bccdfa3e0236a0c0dfb0892969ca066f83b7f9995d",
        "train-00001-of-00002.tfrecord": "cd1afffc0f1bfd40189dfa0cf567e6cb017be524383cdb3dc66b446c78170c25",
        "val-00000-of-00002.tfrecord": "9f2ea81c46d6411936a8cdd8602d5f581d7f01451c18ff702fc378f07389a3d9",
        "val-00001-of-00002.tfrecord": "a0711124ca11ac3921715f52bdcc9e0e8d8ce60877b8bad9d4c5e16067e9cb90",
    },
    "archives_resize_64": {
        "errors-00000-of-00001.jsonl": "6bd0829c0bbc65f14219b9f08f76c28d7b79c15f9897ad850cad42894aa7f896",
        "schema.pbtxt": "c562f5c5753586fadb50cddd319ec65baf8925c10245320c2dde2b5129bde814",
        "stats.json": "aa1441bb9d9db386960ee99e22e7ce59eba1c6ae55a05ed3691f7959d64a321b",
        "test-00000-of-00001.tfrecord": "d0c704132e9b63599f9eb246472bf16033e1b860ae97761e64ae6c39a10a6cbe",
        "train-00000-of-00001.tfrecord": "87831bb318699b4cddbaf5bb6d138d598781f06141f8bf6b42cbcf66da432b95",
        "val-00000-of-00001.tfrecord": "5514701dac2a3cccb584b3ccb559afe3e244201179016ebb86611e94f2531022",
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
