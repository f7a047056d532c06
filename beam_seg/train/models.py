"""Segmentation models: a from-scratch U-Net and a U-Net on a Keras Applications MobileNetV2 encoder.

Every model takes float32 RGB pixels in ``[0, 255]`` of shape ``[N, S, S, 3]``, normalises them in
its first layer (so training, evaluation and the exported SavedModel share one definition of the
preprocessing), and returns float32 logits ``[N, S, S, num_classes]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

__all__ = [
    "MODELS",
    "ModelConfigError",
    "build_mobilenetv2_unet",
    "build_model",
    "build_unet",
    "check_image_size",
    "required_multiple",
]

# Model name -> one-line description (the --model choices).
MODELS: dict[str, str] = {
    "unet": "U-Net trained from scratch (no downloads); width set by --base_filters, depth by --depth",
    "mobilenetv2_unet": "U-Net decoder on a Keras Applications MobileNetV2 encoder (--encoder_weights imagenet "
    "downloads ImageNet weights through Keras)",
}
# MobileNetV2 activations used as skip connections, at strides 2, 4, 8, 16; the stride-32 output is the bottom.
_MOBILENET_SKIPS = ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu")
_MOBILENET_BOTTOM = "block_16_project"
# Faster-adapting moving statistics than Keras' 0.99: runs here are hundreds, not 100k, of steps.
_BN_MOMENTUM = 0.9


class ModelConfigError(ValueError):
    """A model name or size that cannot be built."""


def required_multiple(model: str, depth: int) -> int:
    """The factor the input size must be a multiple of (the model's total downsampling)."""
    if model == "unet":
        return 2**depth
    if model == "mobilenetv2_unet":
        return 32
    raise ModelConfigError(f"unknown model {model!r}; choose one of {sorted(MODELS)}")


def check_image_size(model: str, image_size: int, depth: int = 4) -> None:
    """Raises :class:`ModelConfigError` unless ``model`` can take ``image_size`` inputs."""
    multiple = required_multiple(model, depth)
    if image_size % multiple:
        raise ModelConfigError(
            f"image size {image_size} is not a multiple of {multiple}, which model {model!r} needs; "
            f"use e.g. {max(multiple, image_size // multiple * multiple)}"
        )


def _conv_block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Two 3x3 conv → batch norm → ReLU layers, the U-Net's basic unit."""
    from keras import layers

    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _inputs(image_size: int, mean: Sequence[float], std: Sequence[float]) -> tuple[keras.KerasTensor, ...]:
    from keras import layers

    inputs = layers.Input((image_size, image_size, 3), dtype="float32", name="pixels")
    normalized = layers.Normalization(
        mean=list(mean), variance=[s * s for s in std], dtype="float32", name="normalize"
    )(inputs)
    return inputs, normalized


def _head(x: keras.KerasTensor, num_classes: int) -> keras.KerasTensor:
    from keras import layers

    # float32 logits even under a mixed-precision policy, for a stable softmax/loss.
    return layers.Conv2D(num_classes, 1, dtype="float32", name="logits")(x)


def build_unet(
    *,
    image_size: int,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    base_filters: int = 16,
    depth: int = 4,
) -> keras.Model:
    """A U-Net (Ronneberger et al. 2015) with batch norm, built from scratch.

    Args:
        image_size: Input side ``S``; must be a multiple of ``2**depth``.
        num_classes: Output channels (logits).
        mean: Per-channel mean subtracted in the first layer.
        std: Per-channel standard deviation divided by in the first layer.
        base_filters: Filters of the first level; level ``i`` has ``base_filters * 2**i``.
        depth: Number of 2x downsamplings.

    Returns:
        An uncompiled ``keras.Model`` ``[N, S, S, 3]`` float pixels → ``[N, S, S, num_classes]`` logits.
    """
    import keras
    from keras import layers

    inputs, x = _inputs(image_size, mean, std)
    skips = []
    for level in range(depth):
        x = _conv_block(x, base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _conv_block(x, base_filters * 2**depth, "bottom")
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([x, skips[level]])
        x = _conv_block(x, filters, f"up{level}")
    return keras.Model(inputs, _head(x, num_classes), name=f"unet_f{base_filters}_d{depth}")


def build_mobilenetv2_unet(
    *,
    image_size: int,
    num_classes: int,
    encoder_weights: str | None = None,
    alpha: float = 1.0,
    decoder_filters: Sequence[int] = (256, 128, 64, 32),
) -> keras.Model:
    """A U-Net decoder on a MobileNetV2 encoder from ``keras.applications``.

    The encoder's own preprocessing (pixels scaled to ``[-1, 1]``) is the first layer, so the
    normalisation is fixed to mean 127.5, std 127.5 regardless of the dataset statistics.

    Args:
        image_size: Input side ``S``; must be a multiple of 32.
        num_classes: Output channels (logits).
        encoder_weights: ``None`` (random init) or ``"imagenet"`` (downloaded by Keras on first use).
        alpha: MobileNetV2 width multiplier.
        decoder_filters: Filters of the decoder stages at strides 16, 8, 4, 2.

    Returns:
        An uncompiled ``keras.Model`` ``[N, S, S, 3]`` float pixels → ``[N, S, S, num_classes]`` logits.
    """
    import keras
    from keras import layers

    inputs, x = _inputs(image_size, (127.5, 127.5, 127.5), (127.5, 127.5, 127.5))
    encoder = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3), include_top=False, weights=encoder_weights, alpha=alpha
    )
    features = keras.Model(
        encoder.input,
        [encoder.get_layer(name).output for name in (*_MOBILENET_SKIPS, _MOBILENET_BOTTOM)],
        name="mobilenetv2_encoder",
    )
    *skips, x = features(x)
    for i, (skip, filters) in enumerate(zip(reversed(skips), decoder_filters, strict=True)):
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"up{i}_upsample")(x)
        x = layers.Concatenate(name=f"up{i}_concat")([x, skip])
        x = _conv_block(x, filters, f"up{i}")
    x = layers.Conv2DTranspose(decoder_filters[-1], 3, strides=2, padding="same", name="final_upsample")(x)
    return keras.Model(inputs, _head(x, num_classes), name="mobilenetv2_unet")


def build_model(
    name: str,
    *,
    image_size: int,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    base_filters: int = 16,
    depth: int = 4,
    encoder_weights: str | None = None,
) -> keras.Model:
    """Builds the model called ``name`` (a key of :data:`MODELS`).

    Raises:
        ModelConfigError: on an unknown name or an image size the model cannot take.
    """
    check_image_size(name, image_size, depth)
    if name == "unet":
        return build_unet(
            image_size=image_size, num_classes=num_classes, mean=mean, std=std, base_filters=base_filters, depth=depth
        )
    return build_mobilenetv2_unet(image_size=image_size, num_classes=num_classes, encoder_weights=encoder_weights)
