"""The training stage's command line, parsed into a frozen :class:`TrainConfig`.

Defaults are tuned with ``bench/train_quality.py`` for a 2-core CPU: 128x128 inputs, a 0.5M-parameter
U-Net (``--base_filters 8``), 30 epochs of batch 8 with Adam 2e-3 on a cosine schedule, a
cross-entropy + Dice loss with the cross-entropy weighted by 1/sqrt(class pixel fraction), and
flip + colour augmentation without the random crop (which would resample the stored masks a second
time and jitter the thin border band); bench/README.md has the time and quality they reach. On a GPU, a wider
U-Net (``--base_filters 16`` or more) and more epochs are the first things to raise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from beam_seg import cli
from beam_seg.pets import MASK_CLASSES
from beam_seg.train.metrics import LOSSES
from beam_seg.train.models import MODELS, ModelConfigError, check_image_size

__all__ = [
    "CLASS_WEIGHTINGS",
    "HYPERPARAMETERS",
    "MIXED_PRECISION_MODES",
    "ConfigError",
    "TrainConfig",
    "build_parser",
    "parse_args",
]

PROG = "python -m beam_seg.train"
MIXED_PRECISION_MODES: tuple[str, ...] = ("auto", "on", "off")
LR_SCHEDULES: tuple[str, ...] = ("cosine", "constant")
# --class_weights keywords (besides explicit numbers) -> description.
CLASS_WEIGHTINGS: dict[str, str] = {
    "inverse_sqrt": "1/sqrt(pixel fraction) of each class in the train split (from stats.json), scaled to a pixel "
    "mean of 1",
    "none": "every pixel weighs the same",
}


# The fields that define the model and how it was trained (architecture, data handling, optimisation, seed), as
# published in model_config.json; the others are paths and run control (resume, checks, logging, pictures).
HYPERPARAMETERS: tuple[str, ...] = (
    "model",
    "image_size",
    "base_filters",
    "depth",
    "encoder_weights",
    "epochs",
    "batch_size",
    "learning_rate",
    "lr_schedule",
    "loss",
    "class_weights",
    "steps_per_epoch",
    "shuffle_buffer",
    "augment",
    "min_crop",
    "seed",
    "deterministic",
)


class ConfigError(cli.UsageError):
    """A flag value, or a combination of flags, that training cannot run with (exit code 2, one line)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on (one field per command-line flag)."""

    data_dir: str
    output_dir: str
    image_size: int = 128
    model: str = "unet"
    base_filters: int = 8
    depth: int = 4
    encoder_weights: str | None = None
    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 2e-3
    lr_schedule: str = "cosine"
    loss: str = "ce_dice"
    class_weights: str = "inverse_sqrt"
    steps_per_epoch: int | None = None
    val_steps: int | None = None
    shuffle_buffer: int = 1024
    augment: bool = True
    min_crop: float = 1.0
    seed: int = 0
    deterministic: bool = False
    mixed_precision: str = "auto"
    resume: bool = False
    overwrite: bool = False
    validate_records: bool = True
    num_predictions: int = 6

    def __post_init__(self) -> None:
        positive = {
            "--image_size": self.image_size,
            "--base_filters": self.base_filters,
            "--depth": self.depth,
            "--epochs": self.epochs,
            "--batch_size": self.batch_size,
            "--shuffle_buffer": self.shuffle_buffer,
        }
        for flag, value in positive.items():
            if value < 1:
                raise ConfigError(f"{flag} must be >= 1, got {value}")
        for flag, value in (("--steps_per_epoch", self.steps_per_epoch), ("--val_steps", self.val_steps)):
            if value is not None and value < 1:
                raise ConfigError(f"{flag} must be >= 1 when given, got {value}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--learning_rate must be > 0, got {self.learning_rate}")
        if self.model not in MODELS:
            raise ConfigError(f"--model {self.model!r} is not one of {sorted(MODELS)}")
        if self.encoder_weights not in (None, "imagenet"):
            raise ConfigError(f"--encoder_weights {self.encoder_weights!r} must be 'imagenet' or omitted")
        if self.encoder_weights and self.model == "unet":
            raise ConfigError(
                "--encoder_weights applies to --model mobilenetv2_unet only; the U-Net has no encoder weights"
            )
        if self.mixed_precision not in MIXED_PRECISION_MODES:
            raise ConfigError(f"--mixed_precision {self.mixed_precision!r} is not one of {MIXED_PRECISION_MODES}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr_schedule {self.lr_schedule!r} is not one of {LR_SCHEDULES}")
        if self.loss not in LOSSES:
            raise ConfigError(f"--loss {self.loss!r} is not one of {sorted(LOSSES)}")
        if self.class_weights not in CLASS_WEIGHTINGS:
            self.explicit_class_weights()  # Raises on a malformed list.
        if not 0 < self.min_crop <= 1:
            raise ConfigError(f"--min_crop must be in (0, 1], got {self.min_crop}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume and --overwrite contradict each other; pass one of them")
        if self.num_predictions < 0:
            raise ConfigError(f"--num_predictions must be >= 0, got {self.num_predictions}")
        try:
            check_image_size(self.model, self.image_size, self.depth)
        except ModelConfigError as e:
            raise ConfigError(f"--image_size {self.image_size}: {e}") from None

    def explicit_class_weights(self) -> tuple[float, ...] | None:
        """The numbers of ``--class_weights W,W,W``, or ``None`` for a keyword of :data:`CLASS_WEIGHTINGS`.

        Raises:
            ConfigError: if the value is neither a keyword nor one positive number per class.
        """
        if self.class_weights in CLASS_WEIGHTINGS:
            return None
        try:
            weights = tuple(float(v) for v in self.class_weights.split(","))
        except ValueError:
            weights = ()
        if len(weights) != len(MASK_CLASSES) or not all(w > 0 for w in weights):
            raise ConfigError(
                f"--class_weights {self.class_weights!r} must be one of {sorted(CLASS_WEIGHTINGS)} or "
                f"{len(MASK_CLASSES)} positive comma-separated numbers (for {','.join(MASK_CLASSES)})"
            )
        return weights

    def to_dict(self) -> dict[str, object]:
        """The whole configuration as a JSON-ready dict (kept with the checkpoints, to check a resumed run)."""
        return dataclasses.asdict(self)

    def hyperparameters(self) -> dict[str, object]:
        """The settings that define the model and its training (:data:`HYPERPARAMETERS`), without paths or run control.

        What ``model_config.json`` publishes: nothing in it depends on where the run read or wrote, or how it was
        started.
        """
        return {name: getattr(self, name) for name in HYPERPARAMETERS}


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("", "none", "0") else int(text)


def _encoder_weights(text: str) -> str | None:
    return None if text.lower() in ("", "none") else text


def build_parser() -> cli.StrictArgumentParser:
    """The ``python -m beam_seg.train`` argument parser."""
    p = cli.StrictArgumentParser(
        prog=PROG,
        description="Train a segmentation model on beam_seg TFRecords (the output of python -m beam_seg.tfrecord_gen), "
        "evaluate it and export a SavedModel plus reports into a flat --output_dir.",
        epilog="Outputs in --output_dir: saved_model/, model_config.json, metrics.json, history.json, "
        "training_curves.png, predictions.png and checkpoints/. Exit codes: 0 ok, 2 bad flags or input data, "
        "3 training diverged (non-finite loss).",
    )
    d = TrainConfig.__dataclass_fields__
    p.add_argument(
        "--data_dir",
        required=True,
        help="A complete output directory (local or gs://) of beam_seg.tfrecord_gen: stats.json and exactly the "
        "{train,val,test}-*.tfrecord shards it names. Required.",
    )
    p.add_argument(
        "--output_dir",
        required=True,
        help="Directory (local or gs://) for the model, reports and checkpoints. Required.",
    )
    p.add_argument(
        "--image_size",
        type=int,
        default=d["image_size"].default,
        help="Model input side S; images are resized to SxS (default: %(default)s).",
    )
    p.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=d["model"].default,
        help="Architecture: " + "; ".join(f"{k}: {v}" for k, v in MODELS.items()) + " (default: %(default)s).",
    )
    p.add_argument(
        "--base_filters",
        type=int,
        default=d["base_filters"].default,
        help="U-Net filters at the first level, doubled per level (default: %(default)s).",
    )
    p.add_argument(
        "--depth",
        type=int,
        default=d["depth"].default,
        help="U-Net downsampling levels; --image_size must be a multiple of 2**depth (default: %(default)s).",
    )
    p.add_argument(
        "--encoder_weights",
        type=_encoder_weights,
        default=None,
        help="mobilenetv2_unet encoder weights: 'imagenet' (Keras downloads them) or none (default: none).",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=d["epochs"].default,
        help="Total number of epochs, also when resuming (default: %(default)s).",
    )
    p.add_argument(
        "--batch_size",
        type=int,
        default=d["batch_size"].default,
        help="Global batch size, split across GPUs under MirroredStrategy (default: %(default)s).",
    )
    p.add_argument(
        "--learning_rate",
        type=float,
        default=d["learning_rate"].default,
        help="Adam peak learning rate (default: %(default)s).",
    )
    p.add_argument(
        "--lr_schedule",
        choices=LR_SCHEDULES,
        default=d["lr_schedule"].default,
        help="cosine: decay to 1%% of the peak over all steps; constant: no decay (default: %(default)s).",
    )
    p.add_argument(
        "--loss",
        choices=sorted(LOSSES),
        default=d["loss"].default,
        help="Training loss: " + "; ".join(f"{k}: {v}" for k, v in LOSSES.items()) + " (default: %(default)s).",
    )
    p.add_argument(
        "--class_weights",
        default=d["class_weights"].default,
        help="Cross-entropy class weights: "
        + "; ".join(f"{k}: {v}" for k, v in CLASS_WEIGHTINGS.items())
        + f"; or {len(MASK_CLASSES)} numbers for {','.join(MASK_CLASSES)}, e.g. 1,1,2 (default: %(default)s).",
    )
    p.add_argument(
        "--steps_per_epoch",
        type=_optional_int,
        default=None,
        help="Train batches per epoch (default: one pass over the train split, rounded up).",
    )
    p.add_argument(
        "--val_steps",
        type=_optional_int,
        default=None,
        help="Cap on val batches evaluated after each epoch (default: all). The final metrics.json "
        "always uses every val and test record.",
    )
    p.add_argument(
        "--shuffle_buffer",
        type=int,
        default=d["shuffle_buffer"].default,
        help="Records shuffled together within a pass, after shuffling shard order (default: %(default)s).",
    )
    p.add_argument(
        "--no_augment",
        dest="augment",
        action="store_false",
        help="Disable augmentation (horizontal flip, brightness/contrast, random crop if --min_crop < 1; default: on).",
    )
    p.add_argument(
        "--min_crop",
        type=float,
        default=d["min_crop"].default,
        help="Random-crop augmentation: smallest crop side as a fraction of the image side, resized back "
        "to --image_size; 1 disables it. Cropping is off by default because the resize samples the stored mask a "
        "second time (nearest neighbour), which jitters thin bands such as the border class by a pixel "
        "(default: %(default)s).",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=d["seed"].default,
        help="Seed of weight initialisation, data order and augmentation (default: %(default)s).",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="Also make TensorFlow ops deterministic (tf.config.experimental.enable_op_determinism); "
        "slower on GPU (default: off).",
    )
    p.add_argument(
        "--mixed_precision",
        choices=MIXED_PRECISION_MODES,
        default=d["mixed_precision"].default,
        help="mixed_float16 training: auto = on when a GPU is visible (default: %(default)s).",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="Continue from the last checkpoint in <output_dir>/checkpoints (starts fresh if there is none).",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="Discard existing checkpoints in <output_dir>/checkpoints and start over.",
    )
    p.add_argument(
        "--no_validate_records",
        dest="validate_records",
        action="store_false",
        help="Skip the check before the first step that reads and decodes every record once (corrupt shards, "
        "records without the expected features, images or masks that do not decode or disagree in size).",
    )
    p.add_argument(
        "--num_predictions",
        type=int,
        default=d["num_predictions"].default,
        help="Val examples drawn in predictions.png (default: %(default)s).",
    )
    cli.add_logging_flags(p)
    return p


def parse_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parses command-line flags into a validated :class:`TrainConfig`.

    Raises:
        cli.UsageError: on an unknown flag, a missing required flag or a malformed value (one line).
        ConfigError: on a value or combination of values that cannot be trained with.
        SystemExit: for ``--help``, once the help is printed.
    """
    values = vars(build_parser().parse_args(argv))
    for console_only in ("verbose", "log_level"):  # Read by cli.configure_logging; not a training setting.
        values.pop(console_only)
    return TrainConfig(**values)
