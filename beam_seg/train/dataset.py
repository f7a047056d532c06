"""The training stage's tf.data input pipeline over the TFRecord shards written by ``tfrecord_gen``.

One readable chain per use: list shards → interleave records → (train: shuffle) → parallel
parse/decode (:func:`parse_example`, :func:`decode_tensors`) → resize (images bilinear with antialias, masks nearest)
→ (train: augment image and mask together) → batch → prefetch. Training order and augmentation
are a pure function of ``(seed, epoch)``: every epoch is its own sub-pipeline seeded by its index,
and augmentation uses stateless random ops keyed by the element's position, so a run resumed at
epoch ``k`` sees exactly the batches an uninterrupted run would have seen.

Shards are checked before training (:func:`scan_shards`) so that a corrupt file or a record
without the expected features is reported with its file name rather than deep inside ``fit``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beam_seg import fs
from beam_seg.formats import FEATURES, STATS_NAME, shard_pattern

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DEFAULT_NORMALIZATION",
    "CorruptShardError",
    "InputDataError",
    "NoShardsError",
    "Normalization",
    "RecordFormatError",
    "decode_tensors",
    "eval_dataset",
    "feature_spec",
    "list_shards",
    "load_normalization",
    "parse_example",
    "preprocess_eval",
    "read_stats",
    "scan_shards",
    "steps_for",
    "train_dataset",
]

logger = logging.getLogger(__name__)

_SCAN_BATCH = 256
# Salt of the per-epoch seeds, so that the data order does not correlate with weight initialisation.
_DATA_SALT = 0x5EED_DA7A


class InputDataError(ValueError):
    """The data directory cannot be trained on (base class of the input errors)."""


class NoShardsError(InputDataError, FileNotFoundError):
    """No ``<split>-*-of-*.tfrecord`` shards in the data directory."""


class RecordFormatError(InputDataError):
    """A record that is not a beam_seg example (a missing feature, or one of the wrong type)."""


class CorruptShardError(InputDataError):
    """A shard's TFRecord framing is broken (truncated file, bad checksum, not a TFRecord file)."""


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-channel ``(pixel - mean) / std`` applied by the model's first layer, and where it came from."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str


DEFAULT_NORMALIZATION = Normalization(mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5), source="default")


def list_shards(data_dir: str, split: str, *, required: bool = True) -> list[str]:
    """Sorted shard paths of one split (local or ``gs://``).

    Raises:
        NoShardsError: if ``required`` and the split has no shards.
    """
    pattern = fs.join(data_dir, shard_pattern(split))
    files = fs.glob(pattern)
    if required and not files:
        raise NoShardsError(
            f"no {split} shards matching {pattern!r}; point --data_dir at the output directory of "
            "python -m beam_seg.tfrecord_gen"
        )
    return files


def read_stats(data_dir: str) -> dict | None:
    """The data directory's ``stats.json`` (written last by ``tfrecord_gen``), or ``None`` if absent."""
    path = fs.join(data_dir, STATS_NAME)
    if not fs.exists(path):
        return None
    try:
        return fs.read_json(path)
    except ValueError as e:
        raise InputDataError(f"{e}; regenerate the data with python -m beam_seg.tfrecord_gen") from None


def load_normalization(stats: dict | None) -> Normalization:
    """The train split's channel mean/std from ``stats.json``, else :data:`DEFAULT_NORMALIZATION`."""
    try:
        train = stats["splits"]["train"]  # type: ignore[index]
        mean = tuple(float(v) for v in train["channel_mean"])
        std = tuple(float(v) for v in train["channel_std"])
    except (TypeError, KeyError, ValueError):
        return DEFAULT_NORMALIZATION
    if len(mean) != 3 or len(std) != 3 or not all(s > 0 for s in std) or train.get("num_examples", 0) == 0:
        return DEFAULT_NORMALIZATION
    return Normalization(mean=mean, std=std, source="stats.json:splits.train")  # type: ignore[arg-type]


def feature_spec() -> dict[str, tf.io.FixedLenFeature]:
    """The ``tf.io.parse_example`` spec of the record format (:data:`beam_seg.formats.FEATURES`)."""
    import tensorflow as tf

    dtypes = {"bytes": tf.string, "int64": tf.int64}
    return {name: tf.io.FixedLenFeature([], dtypes[kind]) for name, kind in FEATURES.items()}


def parse_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """A scalar string tensor (one serialized record) → dict of scalar feature tensors."""
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


def _first_bad_record(path: str) -> str:
    """Finds the first record of ``path`` that is not a beam_seg example and says why (slow path)."""
    import tensorflow as tf

    for index, serialized in enumerate(tf.data.TFRecordDataset(path)):
        try:
            features = tf.train.Example.FromString(serialized.numpy()).features.feature
        except Exception as e:
            return f"record {index} is not a tf.train.Example ({e})"
        for name, kind in FEATURES.items():
            found = features[name].WhichOneof("kind") if name in features else None
            if found != f"{kind}_list" or len(getattr(features[name], found).value) != 1:
                return f"record {index}: feature {name!r} is {found or 'missing'}, expected one {kind} value"
    return "a record does not match the beam_seg record format"


def scan_shards(files: Sequence[str]) -> int:
    """Reads and parses every record of ``files`` once (no image decoding) and returns the count.

    Raises:
        CorruptShardError: naming the file whose TFRecord framing is broken.
        RecordFormatError: naming the file and record that lacks a feature or has a wrong type.
    """
    import tensorflow as tf

    spec = feature_spec()
    total = 0
    for path in files:
        dataset = tf.data.TFRecordDataset(path).batch(_SCAN_BATCH).map(lambda s: tf.io.parse_example(s, spec)["label"])
        try:
            for labels in dataset:
                total += int(labels.shape[0])
        except tf.errors.DataLossError as e:
            raise CorruptShardError(
                f"shard {path} is corrupt ({e.message.splitlines()[0]}); regenerate the data with tfrecord_gen"
            ) from None
        except tf.errors.InvalidArgumentError as e:
            raise RecordFormatError(
                f"shard {path}: {_first_bad_record(path)} (TensorFlow: {e.message.splitlines()[0]}); "
                "the file was not written by this version of beam_seg.tfrecord_gen"
            ) from None
    return total


def steps_for(num_examples: int, batch_size: int, cap: int | None = None) -> int:
    """Batches covering ``num_examples`` once (at least 1), limited to ``cap`` when given."""
    steps = max(1, math.ceil(num_examples / batch_size))
    return min(steps, cap) if cap else steps


def _decode(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return decode_tensors(parse_example(serialized))


def preprocess_eval(image: tf.Tensor, mask: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Resizes a decoded pair to the model size exactly as the exported SavedModel does.

    Returns float32 pixels ``[S, S, 3]`` in ``[0, 255]`` (bilinear with antialias, as the serving
    signatures do) and the uint8 mask ``[S, S, 1]`` (nearest neighbour: class ids are never blended).
    """
    import tensorflow as tf

    size = (image_size, image_size)
    pixels = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    mask = tf.image.resize(mask, size, method="nearest")
    return tf.ensure_shape(pixels, [*size, 3]), tf.ensure_shape(tf.cast(mask, tf.uint8), [*size, 1])


def _augment(
    image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor, image_size: int, min_crop: float = 1.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """Horizontal flip, brightness/contrast jitter and (``min_crop < 1``) a random crop, from one element seed.

    Image and mask are cropped with the same integer box and flipped as one stacked tensor, so
    they stay aligned; the resize afterwards is :func:`preprocess_eval`'s (images bilinear with
    antialias, masks nearest), the same as at serving time. Without a crop, records stored at
    ``image_size`` reach the model with their masks exactly as stored.
    """
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=4)
    stacked = tf.concat([image, mask], axis=-1)  # uint8 [H, W, 4]: one tensor, one crop, one flip.
    if min_crop < 1.0:
        # Crop min_crop..100% of each side at a random offset.
        shape = tf.shape(image)[:2]
        sides = tf.random.stateless_uniform([2], seeds[0], min_crop, 1.0) * tf.cast(shape, tf.float32)
        sides = tf.maximum(tf.cast(tf.round(sides), tf.int32), 1)
        offsets = tf.cast(tf.random.stateless_uniform([2], seeds[1]) * tf.cast(shape - sides + 1, tf.float32), tf.int32)
        offsets = tf.minimum(offsets, shape - sides)
        stacked = tf.slice(stacked, tf.concat([offsets, [0]], 0), tf.concat([sides, [4]], 0))
    flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
    stacked = tf.cond(flip, lambda: tf.reverse(stacked, axis=[1]), lambda: stacked)
    pixels, mask = preprocess_eval(stacked[..., :3], stacked[..., 3:], image_size)
    # Photometric jitter on the image only: contrast and brightness.
    jitter = tf.random.stateless_uniform([2], seeds[3], -1.0, 1.0)
    mean = tf.reduce_mean(pixels, axis=[0, 1], keepdims=True)
    pixels = tf.clip_by_value((pixels - mean) * (1.0 + 0.2 * jitter[0]) + mean + 20.0 * jitter[1], 0.0, 255.0)
    return pixels, mask


def _options() -> tf.data.Options:
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def _epoch_seed(seed: int, epoch: tf.Tensor, repeat: tf.Tensor) -> tf.Tensor:
    """A scalar int64 seed for one pass over the data within one epoch."""
    import tensorflow as tf

    return (tf.cast(seed, tf.int64) * 1_000_003 + epoch * 10_007 + repeat + _DATA_SALT) % (2**31 - 1)


def train_dataset(
    files: Sequence[str],
    *,
    num_examples: int,
    image_size: int,
    batch_size: int,
    steps_per_epoch: int,
    first_epoch: int,
    epochs: int,
    seed: int,
    shuffle_buffer: int = 1024,
    augment: bool = True,
    min_crop: float = 1.0,
) -> tf.data.Dataset:
    """Batches for epochs ``first_epoch .. epochs - 1``, exactly ``steps_per_epoch`` per epoch.

    Each epoch concatenates as many freshly shuffled passes over the records as it needs, so every
    batch is full (``drop_remainder``) and the stream depends only on ``seed`` and the epoch index.
    Shuffling is stateless: shard order per pass, then blocks of ``shuffle_buffer`` records. An
    epoch capped below one pass therefore draws from the first blocks of its shard order; with
    several shards that order changes every epoch.

    Args:
        files: Train shard paths.
        num_examples: Records in ``files`` (from :func:`scan_shards`).
        image_size: Output side ``S``.
        batch_size: Global batch size.
        steps_per_epoch: Batches per epoch.
        first_epoch: 0-based first epoch (``> 0`` when resuming).
        epochs: Total number of epochs (exclusive end).
        seed: Base seed of shuffling and augmentation.
        shuffle_buffer: Records held by the shuffle buffer.
        augment: Whether to apply flip/colour jitter (and the random crop).
        min_crop: Smallest random-crop side as a fraction of the image side; 1 disables the crop.

    Returns:
        A dataset of ``(float32 [B, S, S, 3] pixels in [0, 255], uint8 [B, S, S, 1] masks)``.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    files_t = tf.constant(list(files))
    passes = math.ceil(steps_per_epoch * batch_size / max(num_examples, 1))
    cycle = min(len(files), 8)

    def one_pass(epoch: tf.Tensor, repeat: tf.Tensor) -> tf.data.Dataset:
        # Stateless shuffles only (no shuffle-op state): files, then blocks of `shuffle_buffer` records.
        pass_seed = _epoch_seed(seed, epoch, repeat)
        order = tf.random.experimental.stateless_shuffle(files_t, seed=tf.stack([pass_seed, -1]))
        return (
            tf.data.Dataset.from_tensor_slices(order)
            .interleave(tf.data.TFRecordDataset, cycle_length=cycle, num_parallel_calls=autotune, deterministic=True)
            .batch(shuffle_buffer)
            .enumerate()
            .map(
                lambda block, records: tf.random.experimental.stateless_shuffle(
                    records, seed=tf.stack([pass_seed, -2 - block])
                )
            )
            .unbatch()
            .enumerate()
            .map(lambda index, record: (record, tf.stack([pass_seed, index])))
        )

    def prepare(serialized: tf.Tensor, element_seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, mask = _decode(serialized)
        if augment:
            return _augment(image, mask, element_seed, image_size, min_crop)
        return preprocess_eval(image, mask, image_size)

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        return (
            tf.data.Dataset.range(passes)
            .flat_map(lambda repeat: one_pass(epoch, repeat))
            .map(prepare, num_parallel_calls=autotune, deterministic=True)
            .batch(batch_size, drop_remainder=True)
            .take(steps_per_epoch)
        )

    total = max(epochs - first_epoch, 0) * steps_per_epoch
    return (
        tf.data.Dataset.range(first_epoch, epochs)
        # Two epochs open at once, read block-wise in order: the next epoch warms up during this one.
        .interleave(one_epoch, cycle_length=2, block_length=steps_per_epoch, num_parallel_calls=2, deterministic=True)
        .apply(tf.data.experimental.assert_cardinality(total))  # Lets Keras count steps without guessing.
        .prefetch(autotune)
        .with_options(_options())
    )


def eval_dataset(
    files: Sequence[str],
    *,
    image_size: int,
    batch_size: int,
    steps: int | None = None,
    cache: bool = False,
    num_examples: int | None = None,
) -> tf.data.Dataset:
    """Batches of the records of ``files`` in file order, resized as the SavedModel resizes.

    Args:
        files: Shard paths (e.g. of the val split).
        image_size: Output side ``S``.
        batch_size: Batch size (the last batch may be smaller).
        steps: Keep only this many batches when given.
        cache: Keep the resized pairs in memory after the first pass (for per-epoch validation).
        num_examples: Records in ``files`` when known; sets the dataset's cardinality for Keras.

    Returns:
        A dataset of ``(float32 [B, S, S, 3] pixels in [0, 255], uint8 [B, S, S, 1] masks)``.
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    dataset = (
        tf.data.TFRecordDataset(list(files), num_parallel_reads=min(len(files), 8) if len(files) > 1 else None)
        .map(_decode, num_parallel_calls=autotune, deterministic=True)
        .map(lambda i, m: preprocess_eval(i, m, image_size), num_parallel_calls=autotune, deterministic=True)
        .batch(batch_size)
    )
    if steps:
        dataset = dataset.take(steps)
    if num_examples is not None:
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(steps_for(num_examples, batch_size, steps)))
    if cache:
        dataset = dataset.cache()
    return dataset.prefetch(autotune).with_options(_options())
