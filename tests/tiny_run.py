"""One tiny run of stages 1 and 2, shared by the predict and evaluate tests (a helper, not a test module).

Sample data with the archives' faults → TFRecords at the source sizes (no ``--resize``, so evaluating at the model's
32 px resizes every label, as training does) → a 2-level U-Net trained for 2 steps at 32 px. Made once per pytest
session: the first caller builds it under the session's base temporary directory, later callers find it there.
The model is meaningless but has the real layout, signatures and ``metrics.json`` of a training output.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

SIZE = 32


@dataclasses.dataclass(frozen=True)
class TinyRun:
    """Where the run's inputs and outputs are."""

    raw: Path  # The sample data (extracted layout): raw/images/*.jpg, with the planted faults.
    tfrecords: Path  # Stage 1's output.
    model: Path  # Stage 2's output.

    @property
    def images(self) -> Path:
        return self.raw / "images"

    @property
    def faults(self) -> dict[str, str]:
        """The planted faults: image name → kind (``truncated_jpeg``, ``cmyk_jpeg``, ...)."""
        return json.loads((self.raw.parent / "faults.json").read_text())


def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """The session's tiny run (built on first use: about 30 s on 2 CPU cores)."""
    from beam_seg.data import job as tfrecord_gen
    from beam_seg.data import sample as sample_data
    from beam_seg.train import job as train

    root = tmp_path_factory.getbasetemp() / "inference-tiny-run"
    run = TinyRun(raw=root / "raw", tfrecords=root / "tfrecords", model=root / "model")
    if (run.model / "model_config.json").is_file():
        return run
    shutil.rmtree(root, ignore_errors=True)
    sample = sample_data.make_sample_data(str(run.raw), num_images=24, min_size=40, max_size=96, seed=3)
    (root / "faults.json").write_text(json.dumps(sample.faults))
    argv = ["--input", str(run.raw), "--output_dir", str(run.tfrecords), "--val_fraction", "0.3"]
    assert tfrecord_gen.run([*argv, "--direct_running_mode=in_memory", "--direct_num_workers=1"]) == 0
    assert (
        train.run(
            [
                *("--data_dir", str(run.tfrecords), "--output_dir", str(run.model)),
                *("--image_size", str(SIZE), "--base_filters", "4", "--depth", "2", "--batch_size", "4"),
                *("--epochs", "1", "--steps_per_epoch", "2", "--num_predictions", "1", "--seed", "1"),
            ]
        )
        == 0
    )
    return run


def worse_model(model_dir: Path, dest: Path) -> Path:
    """A copy of ``model_dir`` whose logits' bias makes it predict ``border`` everywhere: surely worse than trained.

    Every pixel predicted as the thinnest class gives that class's IoU its pixel share (a few %) and 0 to the others.
    """
    import tensorflow as tf

    shutil.copytree(model_dir, dest, ignore=shutil.ignore_patterns("checkpoints", "saved_model"))
    loaded = tf.saved_model.load(str(model_dir / "saved_model"))
    (bias,) = [v for v in loaded.variables if v.name == "logits/bias:0"]
    bias.assign([-100.0, -100.0, 100.0])
    tf.saved_model.save(loaded, str(dest / "saved_model"), signatures=dict(loaded.signatures))
    return dest
