"""The record format without TensorFlow: round trips, TFRecord framing, and byte equality with TensorFlow's classes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image

from beam_seg.data import codec
from beam_seg.formats import FEATURES
from beam_seg.train import dataset


def _example(name: str = "Bombay_7") -> codec.PetExample:
    rng = np.random.default_rng(1)
    img, mask = io.BytesIO(), io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (12, 9, 3), dtype=np.uint8)).save(img, format="JPEG")
    Image.fromarray(rng.integers(0, 3, (12, 9), dtype=np.uint8)).save(mask, format="PNG")
    return codec.PetExample(
        image=img.getvalue(), mask=mask.getvalue(), height=12, width=9, file_name=name, label=7, species=0
    )


def test_encode_decode_round_trip_and_determinism():
    ex = _example()
    data = codec.encode_example(ex)
    assert codec.decode_example(data) == ex
    assert codec.encode_example(ex) == data


@pytest.mark.parametrize("name", ["Bombay_7", "Pérsian_1", ""])
def test_encoded_bytes_equal_tensorflows_own_example(name):
    ex = _example(name)

    def feature(value: object) -> tf.train.Feature:
        if isinstance(value, int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        data = value.encode() if isinstance(value, str) else value
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))

    proto = tf.train.Example(features=tf.train.Features(feature={key: feature(getattr(ex, key)) for key in FEATURES}))
    assert codec.encode_example(ex) == proto.SerializeToString(deterministic=True)


def test_framed_records_read_back_with_tf_data(tmp_path):
    records = [codec.encode_example(_example(f"Bombay_{i}")) for i in range(3)] + [b"", b"x" * 70_000]
    path = tmp_path / "a.tfrecord"
    path.write_bytes(b"".join(codec.frame_record(r) for r in records))
    assert [r.numpy() for r in tf.data.TFRecordDataset(str(path))] == records


def test_tf_data_parser_reads_the_same_record():
    ex = _example()
    features = dataset.parse_example(tf.constant(codec.encode_example(ex)))
    assert features["file_name"].numpy().decode() == ex.file_name
    assert int(features["label"]) == 7 and int(features["species"]) == 0
    image, mask = dataset.decode_tensors(features)
    assert image.shape == (12, 9, 3) and image.dtype == tf.uint8
    assert mask.shape == (12, 9, 1)
    np.testing.assert_array_equal(mask.numpy()[..., 0], np.asarray(Image.open(io.BytesIO(ex.mask))))


def test_decode_example_names_a_missing_or_mistyped_feature():
    proto = tf.train.Example.FromString(codec.encode_example(_example()))
    del proto.features.feature["mask"]
    with pytest.raises(codec.RecordFormatError, match="no feature 'mask'"):
        codec.decode_example(proto.SerializeToString())
    proto = tf.train.Example.FromString(codec.encode_example(_example()))
    proto.features.feature["label"].bytes_list.value.append(b"x")
    with pytest.raises(codec.RecordFormatError, match="'label' is bytes_list"):
        codec.decode_example(proto.SerializeToString())
    with pytest.raises(codec.RecordFormatError, match="not a tf.train.Example"):
        codec.decode_example(b"\xff\xff\xff")


def test_schema_describes_every_feature():
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(str(codec.make_schema()), schema_pb2.Schema())
    assert [f.name for f in schema.feature] == list(FEATURES)
    label = next(f for f in schema.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, 36)
