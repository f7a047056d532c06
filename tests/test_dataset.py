"""Unit tests of the training input pipeline on small hand-made TFRecord shards (no Beam, no model)."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beam_seg.data import codec
from beam_seg.train import dataset as input_pipeline

tf = pytest.importorskip("tensorflow")


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _example(index: int, height: int, width: int) -> codec.PetExample:
    """An image whose colour encodes its mask: pet (0) dark, background (1) bright, border (2) mid-grey.

    The pet is an off-centre, asymmetric rectangle so that flips and crops are visible.
    """
    mask = np.ones((height, width), np.uint8)
    mask[height // 5 : height // 2, width // 8 : width // 2 + index % 5] = 0
    mask[height // 5 - 1, width // 8 : width // 2] = 2
    grey = np.array([20, 235, 128], np.uint8)[mask]
    image = np.repeat(grey[..., None], 3, axis=-1)
    return codec.PetExample(
        image=_png(image), mask=_png(mask), height=height, width=width, file_name=f"Bombay_{index}", label=7, species=0
    )


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("shards")
    paths = []
    for shard in range(2):
        path = str(root / f"train-{shard:05d}-of-00002.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(6):
                writer.write(codec.encode_example(_example(shard * 6 + i, 40 + 8 * i, 56 - 4 * i)))
        paths.append(path)
    return paths


def _take(dataset: tf.data.Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_list_and_validate(shards: list[str]) -> None:
    data_dir = str(Path(shards[0]).parent)
    assert input_pipeline.list_shards(data_dir, "train") == shards
    assert input_pipeline.list_shards(data_dir, "val", required=False) == []
    with pytest.raises(input_pipeline.NoShardsError, match="no val shards"):
        input_pipeline.list_shards(data_dir, "val")
    input_pipeline.validate_records({"train": shards}, num_examples={"train": 12})
    with pytest.raises(input_pipeline.RecordCountError, match=f"{shards[0]} and 1 more train shards hold 12 records"):
        input_pipeline.validate_records({"train": shards}, num_examples={"train": 13})


def _write_shard(path: Path, examples: list[codec.PetExample]) -> str:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(codec.encode_example(example))
    return str(path)


BAD_RECORDS = {
    "height": (lambda e: dataclasses.replace(e, height=e.height + 1), "height/width say 41x56 but the image is 40x56"),
    "mask-size": (lambda e: dataclasses.replace(e, mask=_png(np.ones((8, 8), np.uint8))), "and the mask 8x8"),
    "class-id": (
        lambda e: dataclasses.replace(e, mask=_png(np.full((e.height, e.width), 3, np.uint8))),
        "its mask holds class id 3; the classes are 0..2",
    ),
    "image-bytes": (lambda e: dataclasses.replace(e, image=b"not an image"), "its image (12 bytes) does not decode"),
    "mask-bytes": (lambda e: dataclasses.replace(e, mask=e.image[:20]), "its mask (20 bytes) does not decode as a PNG"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_validation_names_the_first_bad_record(tmp_path: Path, case: str) -> None:
    """Each check of the fast path drops the record, and the slow path names it with its file_name."""
    damage, message = BAD_RECORDS[case]
    examples = [_example(i, 40, 56) for i in range(4)]
    good = _write_shard(tmp_path / "train-00000-of-00002.tfrecord", examples)
    bad = _write_shard(tmp_path / "train-00001-of-00002.tfrecord", [examples[0], damage(examples[1]), examples[2]])
    assert input_pipeline._count_good_records([good, bad]) == [4, 2]
    with pytest.raises(input_pipeline.RecordFormatError) as raised:
        input_pipeline.validate_records({"train": [good, bad]}, num_examples={"train": 7})
    assert str(raised.value).startswith(f"shard {bad}: record 1 (file_name 'Bombay_1'): ")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def _stats(shards: dict[str, list[str]], counts: dict[str, int] | None = None) -> dict:
    counts = counts or {}
    return {
        "shards": {split: shards.get(split, []) for split in ("train", "val", "test")},
        "splits": {split: {"num_examples": counts.get(split, 0)} for split in ("train", "val", "test")},
    }


def test_the_data_dir_must_be_the_set_stats_json_names(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(input_pipeline.IncompleteDataError, match=f"{data}/stats.json does not exist"):
        input_pipeline.read_stats(str(data))
    train = _write_shard(data / "train-00000-of-00001.tfrecord", [_example(0, 24, 24)])
    (data / "stats.json").write_text(json.dumps(_stats({"train": [Path(train).name]}, {"train": 1})))
    stats = input_pipeline.read_stats(str(data))
    assert input_pipeline.data_shards(str(data), stats) == {"train": [train]}
    (data / "stats.json").write_text(json.dumps({"shards": {}}))
    with pytest.raises(input_pipeline.InputDataError, match="lacks 'train' of split 'train'"):
        input_pipeline.read_stats(str(data))
    with pytest.raises(input_pipeline.NoShardsError, match="names no train shard"):
        input_pipeline.data_shards(str(tmp_path), _stats({}))
    with pytest.raises(input_pipeline.IncompleteDataError, match="val-00000-of-00001.tfrecord does not exist but"):
        input_pipeline.data_shards(
            str(data), _stats({"train": [Path(train).name], "val": ["val-00000-of-00001.tfrecord"]})
        )
    stray = _write_shard(data / "test-00000-of-00003.tfrecord", [_example(1, 24, 24)])
    with pytest.raises(input_pipeline.IncompleteDataError, match=f"{stray} is not one of the test shards"):
        input_pipeline.data_shards(str(data), _stats({"train": [Path(train).name]}))


def test_normalization_from_stats() -> None:
    stats = {"splits": {"train": {"num_examples": 3, "channel_mean": [1, 2, 3], "channel_std": [4, 5, 6]}}}
    norm = input_pipeline.load_normalization(stats)
    assert norm.mean == (1.0, 2.0, 3.0) and norm.std == (4.0, 5.0, 6.0) and norm.source == "stats.json:splits.train"
    flat = {"splits": {"train": {"num_examples": 3, "channel_mean": [1, 2, 3], "channel_std": [4, 0, 6]}}}
    assert input_pipeline.load_normalization(flat) == input_pipeline.DEFAULT_NORMALIZATION
    with pytest.raises(input_pipeline.InputDataError, match="no usable splits.train.channel_mean"):
        input_pipeline.load_normalization({"splits": {}})


@pytest.mark.parametrize("min_crop", [1.0, 0.8])
def test_augmentation_keeps_image_and_mask_aligned(shards: list[str], min_crop: float) -> None:
    batches = _take(
        input_pipeline.train_dataset(
            shards,
            num_examples=12,
            image_size=32,
            batch_size=4,
            steps_per_epoch=6,
            first_epoch=0,
            epochs=2,
            seed=3,
            min_crop=min_crop,
        )
    )
    pixels = np.concatenate([x for x, _ in batches])
    masks = np.concatenate([y for _, y in batches])[..., 0]
    assert pixels.shape == (48, 32, 32, 3) and pixels.dtype == np.float32
    assert masks.dtype == np.uint8 and set(np.unique(masks)) <= {0, 1, 2}  # Nearest: no blended class ids.
    # Brightness/contrast jitter keeps dark pet pixels below mid-grey and background above it.
    grey = pixels.mean(-1)
    interior = (masks == 0) | (masks == 1)
    agree = ((grey < 128) == (masks == 0))[interior].mean()
    assert agree > 0.97
    # Flips happen: the pet's column centroid lands on both halves of the image across examples.
    columns = [np.nonzero(m == 0)[1].mean() for m in masks if (m == 0).any()]
    assert min(columns) < 16 < max(columns)


def test_without_crop_masks_arrive_as_stored(tmp_path: Path) -> None:
    """min_crop=1 on records already at the model size: each mask is the stored one or its mirror image."""
    path = str(tmp_path / "train-00000-of-00001.tfrecord")
    stored = []
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(4):
            example = _example(i, 24, 24)
            stored.append(np.asarray(Image.open(io.BytesIO(example.mask))))
            writer.write(codec.encode_example(example))
    batches = _take(
        input_pipeline.train_dataset(
            [path],
            num_examples=4,
            image_size=24,
            batch_size=4,
            steps_per_epoch=1,
            first_epoch=0,
            epochs=4,
            seed=0,
        )
    )
    masks = np.concatenate([y for _, y in batches])[..., 0]
    flipped = 0
    for mask in masks:
        if not any(np.array_equal(mask, m) for m in stored):
            assert any(np.array_equal(mask, m[:, ::-1]) for m in stored)
            flipped += 1
    assert 0 < flipped < len(masks)


def test_training_order_depends_only_on_seed_and_epoch(shards: list[str]) -> None:
    kwargs = {"num_examples": 12, "image_size": 24, "batch_size": 4, "steps_per_epoch": 3, "epochs": 3, "seed": 5}
    full = _take(input_pipeline.train_dataset(shards, first_epoch=0, **kwargs))
    again = _take(input_pipeline.train_dataset(shards, first_epoch=0, **kwargs))
    resumed = _take(input_pipeline.train_dataset(shards, first_epoch=2, **kwargs))
    assert len(full) == 9 and len(resumed) == 3
    for (x1, y1), (x2, y2) in zip(full, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    for (x1, y1), (x2, y2) in zip(full[6:], resumed, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(full[0][0], full[3][0])  # Each epoch is shuffled and augmented anew.
    other_seed = _take(input_pipeline.train_dataset(shards, first_epoch=0, **{**kwargs, "seed": 6}))
    assert not np.array_equal(full[0][0], other_seed[0][0])


def test_eval_dataset_matches_serving_resize(shards: list[str]) -> None:
    (pixels, masks), *_ = _take(input_pipeline.eval_dataset(shards[:1], image_size=16, batch_size=6))
    example = codec.decode_example(next(iter(tf.data.TFRecordDataset(shards[0]))).numpy())
    image = tf.io.decode_png(example.image, channels=3)
    expected = tf.image.resize(tf.cast(image, tf.float32), (16, 16), method="bilinear", antialias=True)
    np.testing.assert_allclose(pixels[0], expected.numpy(), atol=1e-4)
    assert masks.shape == (6, 16, 16, 1) and set(np.unique(masks)) <= {0, 1, 2}
