"""What one stage writes and the next reads: file names, the record's features, the model directory's layout.

Each stage owns how it writes these files; this module only names them, so that a reader never has to import the
writer's stage. Everything here is a constant or a pure function of its arguments.
"""

from __future__ import annotations

__all__ = [
    "CHECKPOINT_DIR",
    "CONFIG_NAME",
    "CURVES_NAME",
    "DEAD_LETTERS_NAME",
    "ERRORS_NAME",
    "EVAL_COMPARISON_NAME",
    "EVAL_REPORT_NAME",
    "EVAL_SPLITS",
    "FEATURES",
    "HISTORY_NAME",
    "INPUT_BYTES",
    "INPUT_IMAGES",
    "KERAS_NAME",
    "LITERT_FLOAT32_NAME",
    "LITERT_INPUT",
    "LITERT_INT8_NAME",
    "MASKS_DIR",
    "METRICS_NAME",
    "OUTPUT_MASK",
    "OUTPUT_PROBABILITIES",
    "OVERLAYS_DIR",
    "PREDICTIONS_JSONL_NAME",
    "PREDICTIONS_NAME",
    "SAVED_MODEL_DIR",
    "SCHEMA_NAME",
    "SERVING_DEFAULT",
    "SERVING_IMAGES",
    "SPLITS",
    "STATS_NAME",
    "shard_name",
    "shard_pattern",
]

# ---------------------------------------------------------------------------------------------- stage 1 → 2
SPLITS: tuple[str, ...] = ("train", "val", "test")
STATS_NAME = "stats.json"  # Written last: a TFRecord directory without it is not a complete set.
ERRORS_NAME = "errors-00000-of-00001.jsonl"
SCHEMA_NAME = "schema.pbtxt"
# One tf.train.Example per image: feature name -> kind ("bytes" or "int64"), each holding exactly one value.
FEATURES: dict[str, str] = {
    "image": "bytes",  # encoded JPEG
    "mask": "bytes",  # PNG, uint8, one channel: 0 pet, 1 background, 2 border
    "height": "int64",  # stored image height in pixels
    "width": "int64",  # stored image width in pixels
    "file_name": "bytes",  # image name without extension, UTF-8
    "label": "int64",  # breed id 0..36
    "species": "int64",  # 0 cat, 1 dog
}


def shard_name(split: str, index: int, count: int) -> str:
    """The file name of one shard, e.g. ``train-00003-of-00008.tfrecord``."""
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def shard_pattern(split: str) -> str:
    """The glob matching every shard of ``split``."""
    return f"{split}-*-of-*.tfrecord"


# ---------------------------------------------------------------------------------------------- stage 2 → 3
EVAL_SPLITS: tuple[str, ...] = ("val", "test")
SAVED_MODEL_DIR = "saved_model"
CONFIG_NAME = "model_config.json"  # Written last: a model directory without it is not complete.
METRICS_NAME = "metrics.json"
HISTORY_NAME = "history.json"
CURVES_NAME = "training_curves.png"
PREDICTIONS_NAME = "predictions.png"
CHECKPOINT_DIR = "checkpoints"  # Training state: never published.
# The float32 serving model as a Keras file (built-in layers only: ``keras.saving.load_model`` alone loads it).
KERAS_NAME = "model.keras"
# The SavedModel's signatures, their inputs and outputs.
SERVING_DEFAULT = "serving_default"
SERVING_IMAGES = "serving_images"
INPUT_BYTES = "image_bytes"
INPUT_IMAGES = "images"
OUTPUT_MASK = "mask"
OUTPUT_PROBABILITIES = "probabilities"
# The LiteRT (TFLite) models: signature ``serving_default``, input ``image`` uint8 ``[1, S, S, 3]`` RGB already
# resized to S x S, outputs ``mask`` and ``probabilities`` as in the SavedModel (batch of one).
LITERT_FLOAT32_NAME = "model.tflite"
LITERT_INT8_NAME = "model_int8.tflite"  # Dynamic-range int8: int8 weights (a quarter of the bytes).
LITERT_INPUT = "image"

# ---------------------------------------------------------------------------------------------- predict, evaluate
# python -m beam_seg.predict: <output_dir>/masks/<name>.png (uint8 class ids, one channel), overlays/<name>.png,
# predictions.jsonl (one line per mask, sorted by name; written last) and dead_letters.jsonl.
MASKS_DIR = "masks"
OVERLAYS_DIR = "overlays"
PREDICTIONS_JSONL_NAME = "predictions.jsonl"
DEAD_LETTERS_NAME = "dead_letters.jsonl"
# python -m beam_seg.evaluate: the report (per model and differences) and its picture.
EVAL_REPORT_NAME = "eval_report.json"
EVAL_COMPARISON_NAME = "eval_comparison.png"
