"""Unit tests of the training input pipeline on small hand-made TFRecord shards (no Beam, no model)."""

from __future__ import annotations

import io
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


def test_list_and_scan(shards: list[str]) -> None:
    data_dir = str(Path(shards[0]).parent)
    assert input_pipeline.list_shards(data_dir, "train") == shards
    assert input_pipeline.list_shards(data_dir, "val", required=False) == []
    with pytest.raises(input_pipeline.NoShardsError, match="no val shards"):
        input_pipeline.list_shards(data_dir, "val")
    assert input_pipeline.scan_shards(shards) == 12


def test_normalization_from_stats() -> None:
    stats = {"splits": {"train": {"num_examples": 3, "channel_mean": [1, 2, 3], "channel_std": [4, 5, 6]}}}
    norm = input_pipeline.load_normalization(stats)
    assert norm.mean == (1.0, 2.0, 3.0) and norm.std == (4.0, 5.0, 6.0) and norm.source == "stats.json:splits.train"
    assert input_pipeline.load_normalization(None) == input_pipeline.DEFAULT_NORMALIZATION
    assert input_pipeline.load_normalization({"splits": {}}) == input_pipeline.DEFAULT_NORMALIZATION


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
