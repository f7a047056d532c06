"""The record format, without TensorFlow: ``encode_example`` / ``decode_example``, mirror images of each other.

One ``tf.train.Example`` per image, with the features of :data:`beam_seg.formats.FEATURES`. The message classes are
built here from the ``tensorflow.Example`` proto definition in a private descriptor pool, so readers and writers run
on the ``protobuf`` package alone (TensorFlow's generated classes use the same runtime, and a test checks the bytes
against ``tf.train.Example``). Serialization is deterministic (map keys sorted), so reruns are byte-identical.

Shared by the stages that write records (stage 1, :mod:`beam_seg.data.codec` adds the TFRecord framing and the
schema) and those that read them without TensorFlow in the driver (``beam_seg.predict``, ``beam_seg.evaluate``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from beam_seg.formats import FEATURES

__all__ = ["PetExample", "RecordFormatError", "decode_example", "encode_example"]


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
