"""Stage 1's side of the record format: TFRecord framing and the schema, with the shared encode/decode.

The record itself (``PetExample``, ``encode_example`` / ``decode_example``, ``RecordFormatError``) lives in
:mod:`beam_seg.records`, shared with the stages that read records, and is re-exported here. :func:`frame_record`
adds the TFRecord framing (length, masked CRC32C of length and data), as TensorFlow's writer does;
:func:`make_schema` describes the records as a ``tensorflow_metadata`` Schema. No TensorFlow.
"""

from __future__ import annotations

import struct

import google_crc32c

from beam_seg.formats import FEATURES
from beam_seg.pets import BREEDS, MASK_CLASSES
from beam_seg.records import PetExample, RecordFormatError, decode_example, encode_example

__all__ = ["PetExample", "RecordFormatError", "decode_example", "encode_example", "frame_record", "make_schema"]


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
