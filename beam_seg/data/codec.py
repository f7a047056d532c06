"""The record format, written without TensorFlow: ``encode_example`` / ``decode_example`` and TFRecord framing.

One ``tf.train.Example`` per image, with the features of :data:`beam_seg.formats.FEATURES`. The message classes are
built here from the ``tensorflow.Example`` proto definition in a private descriptor pool, so the job runs on the
``protobuf`` package alone (TensorFlow's generated classes use the same runtime, and a test checks the bytes
against ``tf.train.Example``). Serialization is deterministic (map keys sorted), so reruns are byte-identical.
:func:`frame_record` adds the TFRecord framing (length, masked CRC32C of length and data), as TensorFlow's writer
does.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from typing import Any

import google_crc32c
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from beam_seg.formats import FEATURES
from beam_seg.pets import BREEDS, MASK_CLASSES

__all__ = ["PetExample", "RecordFormatError", "decode_example", "encode_example", "frame_record", "make_schema"]


class RecordFormatError(ValueError):
    """A serialized record is not a beam_seg example (missing or mistyped feature)."""


@dataclasses.dataclass(frozen=True)
class PetExample:
    """One record's contents, mirroring the ``tf.train.Example`` features one to one."""

    image: bytes
    mask: bytes
    height: int
    width: int
    file_name: str
    label: int
    species: int


@functools.cache
def _example_class() -> type:
    """``tensorflow.Example`` (``tensorflow/core/example/{example,feature}.proto``) in a private descriptor pool."""
    proto = descriptor_pb2.FileDescriptorProto(name="beam_seg/example.proto", package="tensorflow", syntax="proto3")
    label, optional, repeated = descriptor_pb2.FieldDescriptorProto, 1, 3

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> descriptor_pb2.DescriptorProto:
        msg = proto.message_type.add(name=name)
        for field_name, number, kind, cardinality, type_name in fields:
            field = msg.field.add(name=field_name, number=number, type=kind, label=cardinality)
            if type_name:
                field.type_name = type_name
        return msg

    message("BytesList", ("value", 1, label.TYPE_BYTES, repeated, ""))
    message("FloatList", ("value", 1, label.TYPE_FLOAT, repeated, ""))
    message("Int64List", ("value", 1, label.TYPE_INT64, repeated, ""))
    feature = message(
        "Feature",
        ("bytes_list", 1, label.TYPE_MESSAGE, optional, ".tensorflow.BytesList"),
        ("float_list", 2, label.TYPE_MESSAGE, optional, ".tensorflow.FloatList"),
        ("int64_list", 3, label.TYPE_MESSAGE, optional, ".tensorflow.Int64List"),
    )
    feature.oneof_decl.add(name="kind")
    for field in feature.field:
        field.oneof_index = 0
    features = message("Features", ("feature", 1, label.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry"))
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=label.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=label.TYPE_MESSAGE, label=optional, type_name=".tensorflow.Feature")
    message("Example", ("features", 1, label.TYPE_MESSAGE, optional, ".tensorflow.Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.Example"))


def encode_example(example: PetExample) -> bytes:
    """Serializes an example deterministically (same input, same bytes, so reruns are byte-identical)."""
    proto = _example_class()()
    feature = proto.features.feature
    for name, kind in FEATURES.items():
        value = getattr(example, name)
        if kind == "bytes":
            feature[name].bytes_list.value.append(value.encode("utf-8") if isinstance(value, str) else value)
        else:
            feature[name].int64_list.value.append(value)
    return proto.SerializeToString(deterministic=True)


def decode_example(serialized: bytes) -> PetExample:
    """Parses bytes written by :func:`encode_example` back into a :class:`PetExample`.

    Raises:
        RecordFormatError: if the bytes are not an Example, or a feature is missing or has the wrong type or arity.
    """
    try:
        proto = _example_class().FromString(serialized)
    except Exception as e:
        raise RecordFormatError(f"record is not a tf.train.Example ({e})") from None
    features = proto.features.feature
    values: dict[str, Any] = {}
    for name, kind in FEATURES.items():
        if name not in features:
            raise RecordFormatError(f"record has no feature {name!r}; found {sorted(features)}")
        expected = f"{kind}_list"
        found = features[name].WhichOneof("kind")
        if found != expected:
            raise RecordFormatError(f"feature {name!r} is {found}, expected {expected}")
        value = getattr(features[name], expected).value
        if len(value) != 1:
            raise RecordFormatError(f"feature {name!r} has {len(value)} values, expected 1")
        values[name] = value[0]
    values["file_name"] = values["file_name"].decode("utf-8")
    return PetExample(**values)


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def frame_record(record: bytes) -> bytes:
    """One record in TFRecord framing: length (uint64 LE), its masked CRC32C, the data, the data's masked CRC32C."""
    length = struct.pack("<Q", len(record))
    return b"".join((length, _masked_crc(length), record, _masked_crc(record)))


def make_schema() -> object:
    """Returns the record format as a ``tensorflow_metadata`` ``Schema`` proto (written as schema.pbtxt)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    descriptions = {
        "image": "Encoded JPEG image bytes.",
        "mask": f"PNG uint8 mask, values {dict(enumerate(MASK_CLASSES))}.",
        "height": "Stored image height in pixels.",
        "width": "Stored image width in pixels.",
        "file_name": "Image name without extension.",
        "label": f"Breed id 0..{len(BREEDS) - 1}.",
        "species": "0=cat, 1=dog.",
    }
    int_domains = {"label": (0, len(BREEDS) - 1), "species": (0, 1), "height": (1, None), "width": (1, None)}
    for name, kind in FEATURES.items():
        feature = schema.feature.add(name=name)
        feature.annotation.comment.append(descriptions[name])
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
        feature.shape.dim.add(size=1)
        if kind == "bytes":
            feature.type = schema_pb2.BYTES
            if name in ("image", "mask"):
                feature.image_domain.SetInParent()
        else:
            feature.type = schema_pb2.INT
            low, high = int_domains[name]
            feature.int_domain.min = low
            if high is not None:
                feature.int_domain.max = high
            if name in ("label", "species"):
                feature.int_domain.is_categorical = True
    return schema
