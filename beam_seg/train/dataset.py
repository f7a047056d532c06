"""The training stage's tf.data input pipeline over the TFRecord shards written by ``tfrecord_gen``.

One readable chain per use: list shards → interleave records → (train: shuffle) → parallel
parse/decode (:func:`parse_example`, :func:`decode_tensors`) → resize (images bilinear with antialias, masks nearest)
→ (train: augment image and mask together) → batch → prefetch. Training order and augmentation
are a pure function of ``(seed, epoch)``: every epoch is its own sub-pipeline seeded by its index,
and augmentation uses stateless random ops keyed by the element's position, so a run resumed at
epoch ``k`` sees exactly the batches an uninterrupted run would have seen.

Training reads only a complete ``tfrecord_gen`` output: :func:`read_stats` refuses a directory without
``stats.json`` (written last), and :func:`data_shards` returns exactly the shards it names, refusing a directory
where one is missing or where a shard it does not name lies beside them. :func:`validate_records` then reads,
parses and decodes every record once, so that a corrupt file, a record without the expected features or an image
that does not decode is reported with its shard and ``file_name`` before the first step, not deep inside ``fit``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from beam_seg import fs
from beam_seg.formats import FEATURES, SPLITS, STATS_NAME, shard_pattern
from beam_seg.pets import MASK_CLASSES

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DEFAULT_NORMALIZATION",
    "CorruptShardError",
    "IncompleteDataError",
    "InputDataError",
    "NoShardsError",
    "Normalization",
    "RecordCountError",
    "RecordFormatError",
    "data_shards",
    "decode_tensors",
    "eval_dataset",
    "feature_spec",
    "list_shards",
    "load_normalization",
    "parse_example",
    "preprocess_eval",
    "read_stats",
    "steps_for",
    "train_dataset",
    "validate_records",
]

logger = logging.getLogger(__name__)

_MAKE_DATA = "python -m beam_seg.tfrecord_gen --input DIR --output_dir"
# Salt of the per-epoch seeds, so that the data order does not correlate with weight initialisation.
_DATA_SALT = 0x5EED_DA7A


class InputDataError(ValueError):
    """The data directory cannot be trained on (base class of the input errors)."""


class NoShardsError(InputDataError, FileNotFoundError):
    """No ``<split>-*-of-*.tfrecord`` shards in the data directory."""


class IncompleteDataError(InputDataError, FileNotFoundError):
    """The data directory is not one complete ``tfrecord_gen`` set: no ``stats.json``, or not the shards it names."""


class RecordFormatError(InputDataError):
    """A record that training cannot use (a missing feature, an image that does not decode, sizes that disagree)."""


class RecordCountError(InputDataError):
    """The shards hold another number of good records than ``stats.json`` counts."""


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


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1] if fs.is_remote(path) else os.path.basename(path)


def _directory(path: str) -> str:
    return path.rsplit("/", 1)[0] if fs.is_remote(path) else os.path.dirname(path)


def _regenerate(data_dir: str) -> str:
    return f"regenerate the set with {_MAKE_DATA} {data_dir} --overwrite"


def read_stats(data_dir: str) -> dict[str, Any]:
    """The data directory's ``stats.json``, which ``tfrecord_gen`` writes last: its presence marks a complete set.

    Raises:
        IncompleteDataError: there is no ``stats.json`` (no set, or one whose job did not finish).
        InputDataError: ``stats.json`` is not valid JSON or lacks the shard list or record count of a split.
    """
    path = fs.join(data_dir, STATS_NAME)
    if not fs.exists(path):
        # Shards without stats.json: the job did not finish, and a new run has to replace what it left.
        leftovers = any(list_shards(data_dir, split, required=False) for split in SPLITS)
        raise IncompleteDataError(
            f"{path} does not exist: {data_dir} is not a complete tfrecord_gen output ({STATS_NAME} is written "
            f"last); make it with {_MAKE_DATA} {data_dir}" + (" --overwrite" if leftovers else "")
        )
    try:
        stats = fs.read_json(path)
    except ValueError as e:
        raise InputDataError(f"{e}; {_regenerate(data_dir)}") from None
    for split in SPLITS:
        try:
            names, count = stats["shards"][split], stats["splits"][split]["num_examples"]
        except (TypeError, KeyError) as e:
            raise InputDataError(f"{path} lacks {e} of split {split!r}; {_regenerate(data_dir)}") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not isinstance(count, int):
            raise InputDataError(
                f"{path}: split {split!r} has shards {names!r} and num_examples {count!r}, expected a list of file "
                f"names and a count; {_regenerate(data_dir)}"
            )
    return stats


def data_shards(data_dir: str, stats: dict[str, Any]) -> dict[str, list[str]]:
    """The shard paths ``stats.json`` names, per split that has any; exactly the shards of the directory.

    Args:
        data_dir: The ``tfrecord_gen`` output directory (local or ``gs://``).
        stats: Its ``stats.json`` (:func:`read_stats`).

    Raises:
        NoShardsError: ``stats.json`` names no train shard.
        IncompleteDataError: a shard it names does not exist, or the directory holds a shard it does not name (left
            over from another set).
    """
    stats_path = fs.join(data_dir, STATS_NAME)
    files: dict[str, list[str]] = {}
    for split in SPLITS:
        named = stats["shards"][split]
        present = {_file_name(p): p for p in list_shards(data_dir, split, required=False)}
        missing = [name for name in named if name not in present]
        if missing:
            raise IncompleteDataError(
                f"{fs.join(data_dir, missing[0])} does not exist but {stats_path} names it"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + f": {data_dir} is not a complete tfrecord_gen output; {_regenerate(data_dir)}"
            )
        stray = sorted(set(present) - set(named))
        if stray:
            raise IncompleteDataError(
                f"{present[stray[0]]} is not one of the {split} shards {stats_path} names"
                + (f" (nor are {len(stray) - 1} more)" if len(stray) > 1 else "")
                + f": it is left over from another TFRecord set; {_regenerate(data_dir)}, which removes it"
            )
        if named:
            files[split] = [present[name] for name in named]
    if "train" not in files:
        raise NoShardsError(
            f"{stats_path} names no train shard: the set has no training records; make one from an input with "
            f"trainval images with {_MAKE_DATA} {data_dir} --overwrite"
        )
    return files


def load_normalization(stats: dict[str, Any]) -> Normalization:
    """The train split's channel mean/std from ``stats.json`` (:data:`DEFAULT_NORMALIZATION` if a std is 0).

    Raises:
        InputDataError: ``stats.json`` lacks them, or they are not three numbers each.
    """
    try:
        train = stats["splits"]["train"]
        mean = tuple(float(v) for v in train["channel_mean"])
        std = tuple(float(v) for v in train["channel_std"])
    except (TypeError, KeyError, ValueError) as e:
        raise InputDataError(
            f"{STATS_NAME} has no usable splits.train.channel_mean/channel_std ({type(e).__name__}: {e}); regenerate "
            "the set with python -m beam_seg.tfrecord_gen --overwrite"
        ) from None
    if len(mean) != 3 or len(std) != 3:
        raise InputDataError(f"{STATS_NAME}: splits.train.channel_mean {mean} / channel_std {std} are not RGB")
    if not all(s > 0 for s in std):
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


_TF_NOISE = re.compile(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\](\s*name:.*)?$")


def _tf_message(error: Exception) -> str:
    """The first line of a TensorFlow error without its graph-node prefix and ``[Op:...]`` suffix."""
    lines = (getattr(error, "message", None) or str(error)).strip().splitlines()
    return _TF_NOISE.sub("", lines[0]).strip().rstrip(".") if lines else type(error).__name__


def _check_record(features: dict[str, tf.Tensor]) -> tf.Tensor:
    """Graph checks of one parsed record (fast path): image and mask decode, their sizes match, class ids in range.

    Returns the scalar int64 ``1``; a bad record raises instead (and is skipped by ``ignore_errors``).
    """
    import tensorflow as tf

    image, mask = decode_tensors(features)
    size = tf.stack([features["height"], features["width"]])
    checks = [
        tf.debugging.assert_equal(tf.shape(mask, out_type=tf.int64)[:2], size, message="mask size != height/width"),
        tf.debugging.assert_less(tf.reduce_max(mask), tf.constant(len(MASK_CLASSES), tf.uint8), message="class id"),
    ]
    with tf.control_dependencies([image, *checks]):
        return tf.constant(1, tf.int64)


def _count_good_records(files: Sequence[str]) -> list[int]:
    """Per file, the records that parse, decode and pass :func:`_check_record`; bad records and framing are skipped.

    One parallel tf.data pass over every file (one traced pipeline, however many splits).
    """
    import tensorflow as tf

    autotune = tf.data.AUTOTUNE
    count = len(files)

    def read(index: tf.Tensor, path: tf.Tensor) -> tf.data.Dataset:
        return tf.data.TFRecordDataset(path).map(lambda s: (index, s))

    good = (
        tf.data.Dataset.from_tensor_slices((tf.range(count), tf.constant(list(files))))
        # (file index, path) -> (file index, serialized record)
        .interleave(read, cycle_length=min(count, 8), num_parallel_calls=autotune, deterministic=False)
        # -> file index of each good record; a bad one raises, and ignore_errors drops it
        .map(lambda i, s: (i, _check_record(parse_example(s))), num_parallel_calls=autotune, deterministic=False)
        .ignore_errors()
        .map(lambda i, unused_one: i)
        .batch(1024)
    )
    totals = good.reduce(tf.zeros([count], tf.int32), lambda acc, ids: acc + tf.math.bincount(ids, minlength=count))
    return [int(n) for n in totals.numpy()]


def _record_problem(serialized: bytes) -> tuple[str | None, str | None]:
    """``(file_name, what is wrong)`` of one record, eagerly (slow path); ``what`` is ``None`` for a good record."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        features = tf.train.Example.FromString(serialized).features.feature
    except DecodeError as e:
        return None, f"is not a tf.train.Example ({e})"
    values: dict[str, Any] = {}
    name = None
    if "file_name" in features and len(features["file_name"].bytes_list.value) == 1:
        name = features["file_name"].bytes_list.value[0].decode("utf-8", "replace")
    for feature, kind in FEATURES.items():
        found = features[feature].WhichOneof("kind") if feature in features else None
        if found != f"{kind}_list" or len(getattr(features[feature], found).value) != 1:
            return name, f"feature {feature!r} is {found or 'missing'}, expected one {kind} value"
        values[feature] = getattr(features[feature], found).value[0]
    try:
        image = tf.io.decode_image(values["image"], channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as e:
        return name, f"its image ({len(values['image'])} bytes) does not decode: {_tf_message(e)}"
    try:
        mask = tf.io.decode_png(values["mask"], channels=1)
    except tf.errors.InvalidArgumentError as e:
        return name, f"its mask ({len(values['mask'])} bytes) does not decode as a PNG: {_tf_message(e)}"
    record = (values["height"], values["width"])
    image_size, mask_size = tuple(image.shape[:2]), tuple(mask.shape[:2])
    if image_size != record or mask_size != record:
        return name, (
            f"height/width say {record[0]}x{record[1]} but the image is {image_size[0]}x{image_size[1]} and the mask "
            f"{mask_size[0]}x{mask_size[1]}"
        )
    top = int(tf.reduce_max(mask))
    if top >= len(MASK_CLASSES):
        return name, f"its mask holds class id {top}; the classes are 0..{len(MASK_CLASSES) - 1}"
    return name, None


def _raise_first_bad_record(files: Sequence[str]) -> int:
    """Reads ``files`` eagerly, raising on the first bad record or broken framing; returns the count if all are good.

    Raises:
        CorruptShardError: naming the file whose TFRecord framing is broken.
        RecordFormatError: naming the file, the record's index and ``file_name``, and what is wrong.
    """
    import tensorflow as tf

    total = 0
    for path in files:
        index = 0
        try:
            for serialized in tf.data.TFRecordDataset(path):
                name, problem = _record_problem(serialized.numpy())
                if problem:
                    which = f"record {index}" + (f" (file_name {name!r})" if name is not None else "")
                    raise RecordFormatError(f"shard {path}: {which}: {problem}; {_regenerate(_directory(path))}")
                index += 1
        except tf.errors.DataLossError as e:
            raise CorruptShardError(
                f"shard {path} is corrupt after {index} records ({_tf_message(e)}); {_regenerate(_directory(path))}"
            ) from None
        total += index
    return total


def validate_records(files: Mapping[str, Sequence[str]], *, num_examples: Mapping[str, int]) -> None:
    """Reads, parses and decodes every record once and checks that each split has its ``num_examples`` good records.

    A good record has every feature of the format, an image and a PNG mask that decode, image and mask sizes equal
    to its ``height``/``width``, and class ids below the number of classes. The fast path counts good records in
    one parallel tf.data pass over all the shards (bad ones skipped); only for a split whose count is not its
    ``num_examples`` does a slow eager pass find the first bad record to name it.

    Args:
        files: Shard paths per split.
        num_examples: The records ``stats.json`` counts per split.

    Raises:
        CorruptShardError: naming the file whose TFRecord framing is broken.
        RecordFormatError: naming the file, the record's index and ``file_name``, and what is wrong with it.
        RecordCountError: every record of a split is good, but there are not ``num_examples`` of them.
    """
    paths = [path for split in files for path in files[split]]
    good = dict(zip(paths, _count_good_records(paths), strict=True)) if paths else {}
    for split, split_files in files.items():
        if sum(good[path] for path in split_files) == num_examples[split]:
            continue
        found = _raise_first_bad_record(split_files)
        where = (
            f"{split_files[0]} holds"
            if len(split_files) == 1
            else f"{split_files[0]} and {len(split_files) - 1} more {split} shards hold"
        )
        raise RecordCountError(
            f"{where} {found} records but {STATS_NAME} counts {num_examples[split]}: they are not the set it "
            f"describes; {_regenerate(_directory(split_files[0]))}"
        )


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
        num_examples: Records in ``files`` (from ``stats.json``, checked by :func:`validate_records`).
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
