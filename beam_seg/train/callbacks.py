"""The training run's Keras callbacks: a NaN guard, and a checkpoint (model, optimizer, epoch, history) per epoch.

A non-finite loss or weight stops training before that epoch is checkpointed, so the newest checkpoint is always
the last good epoch.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from beam_seg import fs

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["NanGuard", "make_callbacks"]

logger = logging.getLogger(__name__)


def _all_finite(model: keras.Model) -> bool:
    return all(np.isfinite(w).all() for w in model.get_weights())


def _float(value: object) -> float:
    return float(np.asarray(value))


class NanGuard:
    """Shared state of the callbacks: where the first non-finite value was seen, if anywhere."""

    def __init__(self) -> None:
        self.where: str | None = None


def make_callbacks(
    *,
    guard: NanGuard,
    manager: tf.train.CheckpointManager,
    epoch_var: tf.Variable,
    history_var: tf.Variable,
    history: list[dict[str, Any]],
    history_path: str,
    total_epochs: int,
) -> list[keras.callbacks.Callback]:
    """The NaN guard and the per-epoch checkpoint writer (in that order)."""
    import keras

    class StopOnNaN(keras.callbacks.Callback):
        """Stops at the first non-finite batch loss (the running mean stays NaN once it is)."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch = epoch

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(_float(loss)):
                guard.where = f"loss became {_float(loss)} at epoch {self._epoch + 1}, step {batch + 1}"
                self.model.stop_training = True

    class EpochCheckpoint(keras.callbacks.Callback):
        """Saves model, optimizer, epoch and history after every epoch whose loss and weights are finite."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.monotonic()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            values = {key: _float(value) for key, value in (logs or {}).items()}
            if guard.where is None and not (math.isfinite(values.get("loss", 0.0)) and _all_finite(self.model)):
                guard.where = f"weights or loss became non-finite at the end of epoch {epoch + 1}"
                self.model.stop_training = True
            if guard.where is not None:
                logger.error("not checkpointing epoch %d: %s", epoch + 1, guard.where)
                return
            optimizer = self.model.optimizer
            record = {
                "epoch": epoch + 1,
                **values,
                "learning_rate": _float(optimizer.learning_rate),
                "iterations": int(optimizer.iterations.numpy()),
                "seconds": round(time.monotonic() - self._start, 3),
            }
            history.append(record)
            epoch_var.assign(epoch + 1)
            history_var.assign(json.dumps(history))
            path = manager.save(checkpoint_number=epoch + 1)
            fs.write_json(history_path, history)
            shown = " ".join(
                f"{k}={values[k]:.4f}" for k in ("loss", "mean_iou", "val_loss", "val_mean_iou") if k in values
            )
            logger.info("epoch %d/%d %s (%.1fs) → %s", epoch + 1, total_epochs, shown, record["seconds"], path)

    return [StopOnNaN(), EpochCheckpoint()]
