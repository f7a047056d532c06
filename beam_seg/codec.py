"""The TFRecord record format of beam_seg: ``encode_example`` / ``decode_example`` and the tf.data parser.

One ``tf.train.Example`` per image (documented in the README, relied on by training and by users):

==========  ======  ==============================================================
feature     type    meaning
==========  ======  ==============================================================
image       bytes   encoded JPEG (the untouched source bytes when possible)
mask        bytes   PNG, uint8, 0=pet, 1=background, 2=border (trimap - 1)
height      int64   stored image height in pixels
width       int64   stored image width in pixels
file_name   bytes   image name without extension, e.g. ``Bombay_12``
label       int64   breed id 0..36 (see :data:`beam_seg.pets.BREEDS`)
species     int64   0=cat, 1=dog
==========  ======  ==============================================================

``encode_example`` and ``decode_example`` are mirror images and pure; ``parse_example`` and
``decode_tensors`` are their tf.data counterparts, reused by the training stage.

Serialization uses ``tf.train.Example.SerializeToString(deterministic=True)``. tfx-bsl's C++
``RecordBatchToExamplesEncoder`` is faster and avoids importing TensorFlow, but its feature-map
order differs from process to process, which would break byte-identical reruns.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from beam_seg.pets import BREEDS, MASK_CLASSES

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "FEATURE_NAMES",
    "PetExample",
    "RecordFormatError",
    "decode_example",
    "decode_tensors",
    "encode_example",
    "feature_spec",
    "make_schema",
    "parse_example",
]

FEATURE_NAMES: tuple[str, ...] = ("image", "mask", "height", "width", "file_name", "label", "species")
_BYTES_FEATURES = ("image", "mask", "file_name")
_INT_FEATURES = ("height", "width", "label", "species")


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


def encode_example(example: PetExample) -> bytes:
    """Serializes an example deterministically (same input, same bytes, so reruns are byte-identical)."""
    import tensorflow as tf  # Deferred: importing TensorFlow costs seconds.

    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example.image])),
        "mask": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example.mask])),
        "height": tf.train.Feature(int64_list=tf.train.Int64List(value=[example.height])),
        "width": tf.train.Feature(int64_list=tf.train.Int64List(value=[example.width])),
        "file_name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[example.file_name.encode("utf-8")])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[example.label])),
        "species": tf.train.Feature(int64_list=tf.train.Int64List(value=[example.species])),
    }
    proto = tf.train.Example(features=tf.train.Features(feature=feature))
    return proto.SerializeToString(deterministic=True)


def decode_example(serialized: bytes) -> PetExample:
    """Parses bytes written by :func:`encode_example` back into a :class:`PetExample`.

    Raises:
        RecordFormatError: if a feature is missing or has the wrong type or arity.
    """
    import tensorflow as tf

    proto = tf.train.Example.FromString(serialized)
    features = proto.features.feature
    values: dict[str, object] = {}
    for name in FEATURE_NAMES:
        if name not in features:
            raise RecordFormatError(f"record has no feature {name!r}; found {sorted(features)}")
        kind = "bytes_list" if name in _BYTES_FEATURES else "int64_list"
        if features[name].WhichOneof("kind") != kind:
            raise RecordFormatError(f"feature {name!r} is {features[name].WhichOneof('kind')}, expected {kind}")
        value = getattr(features[name], kind).value
        if len(value) != 1:
            raise RecordFormatError(f"feature {name!r} has {len(value)} values, expected 1")
        values[name] = value[0]
    values["file_name"] = values["file_name"].decode("utf-8")  # type: ignore[union-attr]
    return PetExample(**values)  # type: ignore[arg-type]


def feature_spec() -> dict[str, tf.io.FixedLenFeature]:
    """The ``tf.io.parse_example`` spec of the record format."""
    import tensorflow as tf

    spec = {name: tf.io.FixedLenFeature([], tf.string) for name in _BYTES_FEATURES}
    spec.update({name: tf.io.FixedLenFeature([], tf.int64) for name in _INT_FEATURES})
    return spec


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """tf.data counterpart of :func:`decode_example`: a scalar string tensor → dict of scalar tensors."""
    import tensorflow as tf

    return tf.io.parse_single_example(serialized, feature_spec())


def decode_tensors(features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
    """Decodes parsed features to ``image`` uint8 ``[H, W, 3]`` and ``mask`` uint8 ``[H, W, 1]``."""
    import tensorflow as tf

    image = tf.io.decode_image(features["image"], channels=3, expand_animations=False)
    mask = tf.io.decode_png(features["mask"], channels=1)
    shape = tf.stack([features["height"], features["width"]])
    image = tf.ensure_shape(image, [None, None, 3])
    tf.debugging.assert_equal(tf.shape(image, out_type=tf.int64)[:2], shape, message="image size != height/width")
    return image, mask


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
    for name in FEATURE_NAMES:
        feature = schema.feature.add(name=name)
        feature.annotation.comment.append(descriptions[name])
        feature.presence.min_fraction = 1.0
        feature.presence.min_count = 1
        feature.shape.dim.add(size=1)
        if name in _BYTES_FEATURES:
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
