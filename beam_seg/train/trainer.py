"""One training run: the TFRecords of stage 1 → a trained, evaluated, exported model directory.

Writes a flat ``--output_dir`` that the publish stage uploads as a model repo and the loader reads:
``saved_model/`` (see :mod:`beam_seg.train.export` for its signatures), ``model.keras`` (the same float32 model for
Keras alone), ``model.tflite`` and ``model_int8.tflite`` (LiteRT, :mod:`beam_seg.train.litert`), ``model_config.json``
(written last: a directory without it is incomplete; a run removes the previous run's before it writes anything
else), ``metrics.json`` (the SavedModel's metrics, and the LiteRT models' from the LiteRT interpreter,
:mod:`beam_seg.train.litert_eval`), ``history.json``, ``training_curves.png``, ``predictions.png``, and
``checkpoints/`` (model, optimizer, epoch and history after every epoch; ``--resume`` continues from the newest).

It reads only a complete stage-1 output: the shards ``stats.json`` names, each record checked before the first step
(:func:`beam_seg.train.dataset.validate_records`; ``--no_validate_records`` skips that).

The model is always built and compiled inside a ``tf.distribute`` strategy scope:
``MirroredStrategy`` when more than one GPU is visible, the default strategy otherwise, so the CPU
tests run the same code path. A non-finite loss stops training before that epoch is checkpointed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from beam_seg import fs
from beam_seg.formats import (
    CHECKPOINT_DIR,
    CONFIG_NAME,
    CURVES_NAME,
    EVAL_SPLITS,
    HISTORY_NAME,
    KERAS_NAME,
    METRICS_NAME,
    PREDICTIONS_NAME,
    SAVED_MODEL_DIR,
    STATS_NAME,
)
from beam_seg.pets import MASK_CLASSES, PALETTE
from beam_seg.train import dataset as input_pipeline
from beam_seg.train import export, litert, litert_eval, models, reports
from beam_seg.train import metrics as seg_metrics
from beam_seg.train.callbacks import NanGuard, make_callbacks
from beam_seg.train.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = [
    "OutputExistsError",
    "TrainResult",
    "TrainingDivergedError",
    "build_training_model",
    "class_weights_for",
    "train",
]

logger = logging.getLogger(__name__)

CHECKPOINT_CONFIG = "train_config.json"
# Flags that change the architecture: a checkpoint cannot be resumed under different values.
_ARCHITECTURE_FLAGS = ("model", "image_size", "base_filters", "depth")
_CHECKPOINTS_TO_KEEP = 3


class OutputExistsError(FileExistsError):
    """``--output_dir`` holds checkpoints and neither ``--resume`` nor ``--overwrite`` was given."""


class TrainingDivergedError(RuntimeError):
    """The loss (or a weight) became NaN/inf; training stopped and that epoch was not checkpointed."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What one :func:`train` call produced.

    Attributes:
        output_dir: Where everything was written.
        history: One record per completed epoch (also in ``history.json``).
        metrics: The ``metrics.json`` contents.
        seconds: Wall time of the call.
    """

    output_dir: str
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    seconds: float


@dataclasses.dataclass(frozen=True)
class _Data:
    files: dict[str, list[str]]
    counts: dict[str, int]
    stats: dict[str, Any]


def _load_data(config: TrainConfig) -> _Data:
    """The shards ``stats.json`` names (a complete set, nothing else) and, by default, every record validated once.

    Raises:
        input_pipeline.InputDataError: no ``stats.json``, shards that are not the set it names, a bad record.
    """
    stats = input_pipeline.read_stats(config.data_dir)
    files = input_pipeline.data_shards(config.data_dir, stats)
    counts = {split: int(stats["splits"][split]["num_examples"]) for split in files}
    if counts["train"] == 0:
        raise input_pipeline.InputDataError(
            f"{fs.join(config.data_dir, STATS_NAME)} counts no train records in the shards {files['train']}"
        )
    if config.validate_records:
        import tensorflow  # noqa: F401 - imported (seconds) before the clock starts: the log line times the check.

        started = time.monotonic()
        input_pipeline.validate_records(files, num_examples=counts)
        logger.info("validated %d records in %.1fs", sum(counts.values()), time.monotonic() - started)
    if "val" not in files:
        logger.warning("no val shards in %s: no per-epoch validation; metrics.json will lack 'val'", config.data_dir)
    logger.info(
        "data %s: %s",
        config.data_dir,
        ", ".join(f"{s} {n} records in {len(files[s])} shards" for s, n in counts.items()),
    )
    return _Data(files=files, counts=counts, stats=stats)


def _make_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy over all GPUs when there is more than one, else the default strategy."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _mixed_precision_on(mode: str) -> bool:
    import tensorflow as tf

    return mode == "on" or (mode == "auto" and bool(tf.config.list_logical_devices("GPU")))


@contextlib.contextmanager
def _dtype_policy(name: str) -> Iterator[None]:
    """Sets Keras' global dtype policy for the models built inside, and restores it afterwards."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _normalization(config: TrainConfig, stats: dict[str, Any]) -> input_pipeline.Normalization:
    if config.model == "mobilenetv2_unet":
        return dataclasses.replace(input_pipeline.DEFAULT_NORMALIZATION, source="mobilenetv2 preprocessing")
    return input_pipeline.load_normalization(stats)


def _build_model(
    config: TrainConfig, norm: input_pipeline.Normalization, *, encoder_weights: str | None
) -> keras.Model:
    return models.build_model(
        config.model,
        image_size=config.image_size,
        num_classes=len(MASK_CLASSES),
        mean=norm.mean,
        std=norm.std,
        base_filters=config.base_filters,
        depth=config.depth,
        encoder_weights=encoder_weights,
    )


def class_weights_for(config: TrainConfig, stats: dict[str, Any]) -> tuple[float, ...] | None:
    """The cross-entropy class weights ``--class_weights`` asks for (``None``: unweighted).

    ``inverse_sqrt`` reads the train split's ``class_pixel_fractions`` from ``stats.json``; without
    them training falls back to unweighted cross-entropy and says so.
    """
    explicit = config.explicit_class_weights()
    if explicit is not None or config.class_weights == "none":
        return explicit
    try:
        fractions = stats["splits"]["train"]["class_pixel_fractions"]
        return seg_metrics.inverse_sqrt_class_weights([float(fractions[name]) for name in MASK_CLASSES])
    except (TypeError, KeyError, ValueError) as e:
        logger.warning(
            "--class_weights %s needs splits.train.class_pixel_fractions in stats.json (%s: %s); "
            "training with unweighted cross-entropy",
            config.class_weights,
            type(e).__name__,
            e,
        )
        return None


def build_training_model(
    config: TrainConfig,
    norm: input_pipeline.Normalization,
    *,
    steps_per_epoch: int,
    mixed_precision: bool = False,
    class_weights: Sequence[float] | None = None,
) -> keras.Model:
    """Builds and compiles the model (call inside ``strategy.scope()``), its optimizer built too.

    Args:
        config: The run's configuration (architecture, loss, learning rate and schedule).
        norm: Normalisation baked into the model's first layer.
        steps_per_epoch: Train steps per epoch (the cosine schedule decays over ``epochs`` of them).
        mixed_precision: Build under the ``mixed_float16`` policy (logits stay float32).
        class_weights: Cross-entropy weight per class (see :func:`class_weights_for`); ``None``: unweighted.
    """
    import keras

    with _dtype_policy("mixed_float16" if mixed_precision else "float32"):
        model = _build_model(config, norm, encoder_weights=config.encoder_weights)
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            config.learning_rate, config.epochs * steps_per_epoch, alpha=0.01
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=seg_metrics.make_loss(config.loss, len(MASK_CLASSES), class_weights=class_weights),
        metrics=seg_metrics.keras_metrics(MASK_CLASSES),
    )
    model.optimizer.build(model.trainable_variables)
    return model


def _prepare_checkpoints(config: TrainConfig, checkpoint_dir: str) -> str | None:
    """Applies --resume/--overwrite to the checkpoint directory; returns the checkpoint to restore."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(checkpoint_dir) if tf.io.gfile.isdir(checkpoint_dir) else None
    if latest and config.overwrite:
        logger.info("--overwrite: removing the checkpoints in %s", checkpoint_dir)
        tf.io.gfile.rmtree(checkpoint_dir)
        latest = None
    elif latest and not config.resume:
        raise OutputExistsError(
            f"{checkpoint_dir} already holds checkpoints (newest {latest}); pass --resume to continue that run "
            "or --overwrite to start over"
        )
    if config.resume and not latest:
        logger.info("--resume: no checkpoint in %s, starting from scratch", checkpoint_dir)
    saved_config = fs.join(checkpoint_dir, CHECKPOINT_CONFIG)
    if latest and fs.exists(saved_config):
        previous = fs.read_json(saved_config)
        current = config.to_dict()
        changed = [flag for flag in _ARCHITECTURE_FLAGS if previous.get(flag) != current[flag]]
        if changed:
            raise ConfigError(
                f"cannot resume {latest}: "
                + ", ".join(f"--{k} was {previous.get(k)!r}, now {current[k]!r}" for k in changed)
            )
        others = [k for k in current if k not in ("resume", "overwrite") and previous.get(k) != current[k]]
        if others:
            logger.warning(
                "resuming with changed flags %s; the result will differ from an uninterrupted run",
                {k: (previous.get(k), current[k]) for k in others},
            )
    tf.io.gfile.makedirs(checkpoint_dir)
    fs.write_json(saved_config, config.to_dict())
    return latest


def _withdraw_completeness_marker(output_dir: str) -> None:
    """Deletes a previous run's ``model_config.json`` before this run writes anything a reader would publish.

    Until this run writes its own (last), the directory then reads as incomplete: a run killed halfway through
    training or export never leaves new files beside an old marker.
    """
    marker = fs.join(output_dir, CONFIG_NAME)
    if fs.exists(marker):
        logger.info("removing the previous run's %s: %s is incomplete until this run exports", CONFIG_NAME, output_dir)
        fs.delete([marker])


def _predictions_png(model: keras.Model, dataset: tf.data.Dataset, count: int) -> bytes:
    images, truths, predicted, titles = [], [], [], []
    for index, (pixels, mask) in enumerate(dataset.unbatch().take(count)):
        logits = model(pixels[None], training=False)
        prediction = np.argmax(np.asarray(logits)[0], axis=-1)
        truth = np.asarray(mask)[..., 0]
        confusion = np.bincount(
            truth.ravel() * len(MASK_CLASSES) + prediction.ravel(), minlength=len(MASK_CLASSES) ** 2
        ).reshape(len(MASK_CLASSES), -1)
        iou = seg_metrics.summarize_confusion(confusion, MASK_CLASSES)["mean_iou"]
        images.append(np.clip(np.asarray(pixels) + 0.5, 0, 255).astype(np.uint8))
        truths.append(truth)
        predicted.append(prediction)
        titles.append(f"example {index}  mean IoU {iou:.3f}")
    return reports.plot_predictions(images, truths, predicted, class_names=MASK_CLASSES, palette=PALETTE, titles=titles)


@dataclasses.dataclass
class _Run:
    """The live state of one training state, shared by the steps of :func:`train`."""

    config: TrainConfig
    data: _Data
    norm: input_pipeline.Normalization
    strategy: tf.distribute.Strategy
    mixed_precision: bool
    steps_per_epoch: int
    class_weights: tuple[float, ...] | None
    model: keras.Model
    manager: tf.train.CheckpointManager
    epoch_var: tf.Variable
    history_var: tf.Variable
    history: list[dict[str, Any]]


def _start(config: TrainConfig, data: _Data, latest: str | None) -> _Run:
    """Builds the model inside the strategy scope and restores ``latest`` (model, optimizer, epoch, history)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = _make_strategy()
    mixed = _mixed_precision_on(config.mixed_precision)
    steps = input_pipeline.steps_for(data.counts["train"], config.batch_size, config.steps_per_epoch)
    logger.info(
        "strategy %s with %d replica(s), mixed precision %s, %d steps per epoch",
        type(strategy).__name__,
        strategy.num_replicas_in_sync,
        "on" if mixed else "off",
        steps,
    )
    norm = _normalization(config, data.stats)
    class_weights = class_weights_for(config, data.stats)
    if class_weights is not None:
        logger.info(
            "cross-entropy class weights (--class_weights %s): %s",
            config.class_weights,
            ", ".join(f"{name} {w:.3f}" for name, w in zip(MASK_CLASSES, class_weights, strict=True)),
        )
    with strategy.scope():
        model = build_training_model(
            config, norm, steps_per_epoch=steps, mixed_precision=mixed, class_weights=class_weights
        )
    # Epoch and history live on the host (string variables cannot be mirrored onto GPUs).
    with tf.device("/cpu:0"):
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        history_var = tf.Variable("[]", dtype=tf.string, trainable=False, name="history")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch_var, history=history_var)
    manager = tf.train.CheckpointManager(
        checkpoint, fs.join(config.output_dir, CHECKPOINT_DIR), max_to_keep=_CHECKPOINTS_TO_KEEP
    )
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        if config.lr_schedule == "constant":
            model.optimizer.learning_rate = config.learning_rate  # A restored constant rate would override the flag.
        logger.info(
            "resumed %s: epoch %d, optimizer step %d",
            latest,
            int(epoch_var.numpy()),
            int(model.optimizer.iterations.numpy()),
        )
    return _Run(
        config=config,
        data=data,
        norm=norm,
        strategy=strategy,
        mixed_precision=mixed,
        steps_per_epoch=steps,
        class_weights=class_weights,
        model=model,
        manager=manager,
        epoch_var=epoch_var,
        history_var=history_var,
        history=json.loads(history_var.numpy().decode("utf-8")),
    )


def _fit(state: _Run) -> None:
    """Trains from the restored epoch to ``--epochs``, checkpointing each finite epoch.

    Raises:
        TrainingDivergedError: on a non-finite loss or weight (that epoch is not checkpointed).
        input_pipeline.InputDataError: when a record cannot be decoded mid-training.
    """
    import tensorflow as tf

    config, data = state.config, state.data
    first_epoch = int(state.epoch_var.numpy())
    if first_epoch >= config.epochs:
        logger.info(
            "checkpoint is at epoch %d of %d: nothing to train, re-evaluating and exporting", first_epoch, config.epochs
        )
        return
    train_data = input_pipeline.train_dataset(
        data.files["train"],
        num_examples=data.counts["train"],
        image_size=config.image_size,
        batch_size=config.batch_size,
        steps_per_epoch=state.steps_per_epoch,
        first_epoch=first_epoch,
        epochs=config.epochs,
        seed=config.seed,
        shuffle_buffer=config.shuffle_buffer,
        augment=config.augment,
        min_crop=config.min_crop,
    )
    val_data = None
    if "val" in data.files:
        val_data = input_pipeline.eval_dataset(
            data.files["val"],
            image_size=config.image_size,
            batch_size=config.batch_size,
            steps=config.val_steps,
            cache=True,
            num_examples=data.counts["val"],
        )
    guard = NanGuard()
    callbacks = make_callbacks(
        guard=guard,
        manager=state.manager,
        epoch_var=state.epoch_var,
        history_var=state.history_var,
        history=state.history,
        history_path=fs.join(config.output_dir, HISTORY_NAME),
        total_epochs=config.epochs,
    )
    try:
        state.model.fit(
            train_data,
            epochs=config.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=state.steps_per_epoch,
            validation_data=val_data,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as e:
        logger.debug("input failure during fit", exc_info=True)
        raise input_pipeline.InputDataError(
            f"reading {config.data_dir} failed during training: {e.message.splitlines()[0]}"
        ) from None
    if guard.where is not None:
        good = state.manager.latest_checkpoint
        where = (
            (
                f"the last good checkpoint is {good} (epoch {int(good.rsplit('-', 1)[1])}); lower "
                "--learning_rate and rerun with --resume to continue from it"
            )
            if good
            else ("no checkpoint was written; lower --learning_rate and rerun with --overwrite")
        )
        raise TrainingDivergedError(
            f"training diverged: {guard.where} (--learning_rate {config.learning_rate}); stopped before "
            f"checkpointing that epoch; {where}"
        )


def _evaluate(state: _Run, serving: keras.Model) -> dict[str, Any]:
    """Exact metrics of the exported weights on every val and test record (the metrics.json contents so far)."""
    history = state.history
    metrics: dict[str, Any] = {
        "evaluated_weights": f"final (epoch {len(history)})",
        "final_epoch": len(history),
        "loss_description": seg_metrics.EVAL_LOSS,
        "training_objective": seg_metrics.describe_objective(state.config.loss, MASK_CLASSES, state.class_weights),
    }
    for split in EVAL_SPLITS:
        if split in state.data.files:
            dataset = input_pipeline.eval_dataset(
                state.data.files[split], image_size=state.config.image_size, batch_size=state.config.batch_size
            )
            metrics[split] = seg_metrics.evaluate(serving, dataset, MASK_CLASSES)
    scored = [h for h in history if "val_mean_iou" in h]
    if scored:
        best = max(scored, key=lambda h: h["val_mean_iou"])
        metrics["best_epoch"] = {"epoch": best["epoch"], "val_mean_iou": best["val_mean_iou"]}
    return metrics


def _convert_litert(serving: keras.Model, image_size: int) -> dict[str, tuple[str, str | None, bytes]]:
    """Every LiteRT model of :data:`litert.MODELS`: name -> (file name, quantization, flatbuffer)."""
    started = time.monotonic()
    flatbuffers = litert.convert_all(
        serving, image_size=image_size, quantizations=[quantization for _, quantization in litert.MODELS.values()]
    )
    converted = {
        name: (file, quantization, flatbuffer)
        for (name, (file, quantization)), flatbuffer in zip(litert.MODELS.items(), flatbuffers, strict=True)
    }
    logger.info(
        "converted to LiteRT in %.1fs: %s",
        time.monotonic() - started,
        ", ".join(f"{file} {len(model)} bytes" for file, _, model in converted.values()),
    )
    return converted


def _data_entry(data: _Data) -> dict[str, Any]:
    """``model_config.json``'s ``data``: which data (``stats.json``'s ``dataset``) and how many records per split."""
    dataset = data.stats.get("dataset")
    if not isinstance(dataset, dict):
        logger.warning(
            "%s has no 'dataset' entry (made before stage 1 recorded it): model_config.json cannot say which data "
            "this is; regenerate the set with python -m beam_seg.tfrecord_gen --overwrite to record it",
            STATS_NAME,
        )
        dataset = {"name": f"unknown (the {STATS_NAME} of the training data does not say)", "synthetic": None}
    return {**dataset, "num_examples": dict(data.counts)}


def _litert_entry(image_size: int, evaluated: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``model_config.json``'s ``litert``: the contract, and per model its file, bytes and mean IoU (Δ: LiteRT − TF)."""
    entry = litert.contract(image_size=image_size, num_classes=len(MASK_CLASSES))
    for name, model in entry["models"].items():
        splits = [s for s in EVAL_SPLITS if s in evaluated[name]]
        model["bytes"] = evaluated[name]["bytes"]
        model["mean_iou"] = {s: evaluated[name][s]["mean_iou"] for s in splits}
        model["delta_mean_iou"] = evaluated[name]["delta_mean_iou"]
    return entry


def _write_outputs(
    state: _Run,
    serving: keras.Model,
    metrics: dict[str, Any],
    litert_models: dict[str, tuple[str, str | None, bytes]],
    seconds: float,
) -> None:
    """Writes the flat output directory; ``model_config.json`` last, marking it complete."""
    config, out = state.config, state.config.output_dir
    fs.write_json(fs.join(out, HISTORY_NAME), state.history)
    fs.write_json(fs.join(out, METRICS_NAME), metrics)
    export.export_saved_model(serving, fs.join(out, SAVED_MODEL_DIR), image_size=config.image_size)
    fs.write_bytes(fs.join(out, KERAS_NAME), export.keras_file(serving))
    for file, _, flatbuffer in litert_models.values():
        fs.write_bytes(fs.join(out, file), flatbuffer)
    if state.history:
        fs.write_bytes(fs.join(out, CURVES_NAME), reports.plot_training_curves(state.history))
    if config.num_predictions:
        split = next(s for s in ("val", "test", "train") if s in state.data.files)
        samples = input_pipeline.eval_dataset(
            state.data.files[split], image_size=config.image_size, batch_size=config.num_predictions
        )
        fs.write_bytes(fs.join(out, PREDICTIONS_NAME), _predictions_png(serving, samples, config.num_predictions))
    headline = {f"{s}_{k}": metrics[s][k] for s in EVAL_SPLITS if s in metrics for k in ("mean_iou", "pixel_accuracy")}
    config_json = export.model_config(
        image_size=config.image_size,
        normalization=dataclasses.asdict(state.norm),
        model={
            "architecture": config.model,
            "base_filters": config.base_filters,
            "depth": config.depth,
            "encoder_weights": config.encoder_weights,
            "parameters": int(serving.count_params()),
            "output": "logits; the SavedModel and the LiteRT models apply softmax",
        },
        training={
            **config.hyperparameters(),
            "steps_per_epoch": state.steps_per_epoch,
            "class_weights_used": None
            if state.class_weights is None
            else dict(zip(MASK_CLASSES, state.class_weights, strict=True)),
            "epochs_completed": len(state.history),
            "optimizer_iterations": int(state.model.optimizer.iterations.numpy()),
            "strategy": type(state.strategy).__name__,
            "replicas": state.strategy.num_replicas_in_sync,
            "mixed_precision_used": state.mixed_precision,
            "wall_seconds": round(seconds, 1),
        },
        data=_data_entry(state.data),
        metrics={
            "file": METRICS_NAME,
            "history": HISTORY_NAME,
            **headline,
            "best_epoch": metrics.get("best_epoch"),
            "loss_description": metrics["loss_description"],
            "training_objective": metrics["training_objective"],
        },
        litert=_litert_entry(config.image_size, metrics["litert"]),
    )
    fs.write_json(fs.join(out, CONFIG_NAME), config_json)


def train(config: TrainConfig) -> TrainResult:
    """Trains, evaluates and exports as configured; see the module docstring for the outputs.

    Raises:
        input_pipeline.IncompleteDataError: no ``stats.json``, or shards other than those it names (names the file).
        input_pipeline.InputDataError: no train shards, a corrupt shard or unusable data (names the file).
        input_pipeline.RecordFormatError: a record lacks a feature, has a wrong type, or its image or mask does not
            decode or has another size (names the shard, the record and its ``file_name``).
        OutputExistsError: checkpoints exist and neither ``--resume`` nor ``--overwrite`` was given.
        ConfigError: the flags cannot work together (e.g. resuming a different architecture).
        TrainingDivergedError: the loss became NaN/inf; the newest checkpoint is the last good epoch.
    """
    started = time.monotonic()
    data = _load_data(config)
    if not fs.is_remote(config.output_dir):
        os.makedirs(config.output_dir, exist_ok=True)
    latest = _prepare_checkpoints(config, fs.join(config.output_dir, CHECKPOINT_DIR))
    _withdraw_completeness_marker(config.output_dir)
    state = _start(config, data, latest)
    _fit(state)
    # The published model: a float32 copy outside any strategy, so serving never depends on the training setup.
    with _dtype_policy("float32"):
        serving = _build_model(config, state.norm, encoder_weights=None)
    serving.set_weights(state.model.get_weights())
    metrics = _evaluate(state, serving)
    litert_models = _convert_litert(serving, config.image_size)
    eval_files = {split: state.data.files[split] for split in EVAL_SPLITS if split in state.data.files}
    metrics["litert"] = litert_eval.litert_metrics(
        litert_models, eval_files, reference=metrics, image_size=config.image_size, class_names=MASK_CLASSES
    )
    _write_outputs(state, serving, metrics, litert_models, time.monotonic() - started)
    seconds = time.monotonic() - started
    logger.info("wrote %s in %.0fs", config.output_dir, seconds)
    return TrainResult(output_dir=config.output_dir, history=state.history, metrics=metrics, seconds=seconds)
