"""Round trips of the record format: pure encode/decode, and the tf.data parser on the same bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from PIL import Image

from beam_seg import codec


def _example() -> codec.PetExample:
    rng = np.random.default_rng(1)
    img, mask = io.BytesIO(), io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (12, 9, 3), dtype=np.uint8)).save(img, format="JPEG")
    Image.fromarray(rng.integers(0, 3, (12, 9), dtype=np.uint8)).save(mask, format="PNG")
    return codec.PetExample(
        image=img.getvalue(), mask=mask.getvalue(), height=12, width=9, file_name="Bombay_7", label=7, species=0
    )


def test_encode_decode_round_trip_and_determinism():
    ex = _example()
    data = codec.encode_example(ex)
    assert codec.decode_example(data) == ex
    assert codec.encode_example(ex) == data


def test_tf_data_parser_reads_the_same_record():
    ex = _example()
    features = codec.parse_example(tf.constant(codec.encode_example(ex)))
    assert features["file_name"].numpy().decode() == ex.file_name
    assert int(features["label"]) == 7 and int(features["species"]) == 0
    image, mask = codec.decode_tensors(features)
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


def test_schema_describes_every_feature():
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(str(codec.make_schema()), schema_pb2.Schema())
    assert [f.name for f in schema.feature] == list(codec.FEATURE_NAMES)
    label = next(f for f in schema.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, 36)
