"""``eval_report.json`` and ``eval_comparison.png`` from the summed confusion matrices: pure functions, no Beam.

Each model's entry holds :func:`beam_seg.confusion.summarize_confusion`'s numbers (those of training's
``metrics.json``) plus what was evaluated; ``differences`` are candidate − baseline, so a negative ``mean_iou``
difference means the candidate is worse. The picture is drawn with PIL (matplotlib is a training-only dependency).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from beam_seg.confusion import summarize_confusion
from beam_seg.pets import PALETTE

__all__ = ["BASELINE", "CANDIDATE", "ModelTotals", "build_report", "comparison_png", "differences", "model_entry"]

CANDIDATE, BASELINE = "candidate", "baseline"


class ModelTotals:
    """What one model's pass over the split adds up to (the output of the job's confusion ``CombineFn``).

    Attributes:
        confusion: int64 ``[true, predicted]`` matrix summed over the scored records.
        num_examples: Records scored.
        image_sizes: The model's mask sizes seen (one: its ``S``).
        skipped: ``(record name, why)`` of records the model could not read.
    """

    def __init__(
        self,
        confusion: np.ndarray,
        num_examples: int = 0,
        image_sizes: Sequence[int] = (),
        skipped: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.confusion = np.asarray(confusion, dtype=np.int64)
        self.num_examples = num_examples
        self.image_sizes = tuple(sorted(set(image_sizes)))
        self.skipped = tuple(sorted(skipped))

    def merged(self, other: ModelTotals) -> ModelTotals:
        """The totals of both passes."""
        return ModelTotals(
            self.confusion + other.confusion,
            self.num_examples + other.num_examples,
            self.image_sizes + other.image_sizes,
            self.skipped + other.skipped,
        )


def model_entry(location: str, totals: ModelTotals, class_names: Sequence[str]) -> dict[str, Any]:
    """One model's part of the report."""
    return {
        "model": location,
        "image_size": totals.image_sizes[0] if len(totals.image_sizes) == 1 else list(totals.image_sizes),
        "num_examples": totals.num_examples,
        "skipped_records": [{"name": name, "detail": detail} for name, detail in totals.skipped],
        **summarize_confusion(totals.confusion, class_names),
    }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def differences(candidate: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, Any]:
    """Candidate − baseline of ``mean_iou``, ``pixel_accuracy`` and each class's IoU (``None`` where one is absent)."""
    return {
        "mean_iou": _minus(candidate["mean_iou"], baseline["mean_iou"]),
        "pixel_accuracy": _minus(candidate["pixel_accuracy"], baseline["pixel_accuracy"]),
        "per_class_iou": {
            name: _minus(iou, baseline["per_class_iou"].get(name)) for name, iou in candidate["per_class_iou"].items()
        },
    }


def build_report(
    *,
    split: str,
    data_dir: str,
    class_names: Sequence[str],
    models: Mapping[str, tuple[str, ModelTotals]],
    num_records: int,
    bad_records: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The ``eval_report.json`` contents.

    Args:
        split: The split evaluated.
        data_dir: The TFRecord set it came from.
        class_names: The classes, in id order.
        models: :data:`CANDIDATE` (and :data:`BASELINE`) → ``(location, totals)``.
        num_records: Records read from the split's shards.
        bad_records: ``(shard, why)`` of records that could not be parsed (scored by no model).
    """
    entries = {role: model_entry(location, totals, class_names) for role, (location, totals) in models.items()}
    baseline = entries.get(BASELINE)
    return {
        "split": split,
        "data_dir": data_dir,
        "num_records": num_records,
        "bad_records": [{"source": source, "detail": detail} for source, detail in sorted(bad_records)],
        "class_names": list(class_names),
        CANDIDATE: entries[CANDIDATE],
        BASELINE: baseline,
        "differences": differences(entries[CANDIDATE], baseline) if baseline else None,
    }


# ---------------------------------------------------------------------------------------------- the picture

_WIDTH, _HEIGHT = 720, 400
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 56, 20, 48, 72
_COLOURS = {CANDIDATE: PALETTE[0], BASELINE: (150, 150, 150)}


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font.
        return ImageFont.load_default()


def comparison_png(report: Mapping[str, Any]) -> bytes:
    """Per-class IoU (and mean IoU, pixel accuracy) of the report's models as grouped bars, a PNG."""
    roles = [role for role in (CANDIDATE, BASELINE) if report.get(role)]
    groups = [*report["class_names"], "mean IoU", "pixel acc."]

    def values(entry: Mapping[str, Any]) -> list[float | None]:
        per_class = [entry["per_class_iou"].get(name) for name in report["class_names"]]
        return [*per_class, entry["mean_iou"], entry["pixel_accuracy"]]

    image = Image.new("RGB", (_WIDTH, _HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    small, large = _font(12), _font(16)
    plot_w = _WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = _HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    bottom = _MARGIN_TOP + plot_h
    title = f"IoU and pixel accuracy on the {report['split']} split ({report['num_records']} records)"
    draw.text((_MARGIN_LEFT, 12), title, "black", large)
    for tick in range(6):  # 0.0 .. 1.0
        y = bottom - plot_h * tick / 5
        draw.line([(_MARGIN_LEFT, y), (_WIDTH - _MARGIN_RIGHT, y)], (225, 225, 225))
        draw.text((8, y - 7), f"{tick / 5:.1f}", "black", small)
    group_w = plot_w / len(groups)
    bar_w = group_w * 0.8 / len(roles)
    for g, group in enumerate(groups):
        left = _MARGIN_LEFT + g * group_w + group_w * 0.1
        for r, role in enumerate(roles):
            value = values(report[role])[g]
            x0 = left + r * bar_w
            if value is not None:
                top = bottom - plot_h * max(0.0, min(1.0, value))
                draw.rectangle([(x0, top), (x0 + bar_w - 2, bottom)], fill=_COLOURS[role])
                draw.text((x0 + 2, top - 15), f"{value:.3f}", "black", small)
        draw.text((left, bottom + 8), group, "black", small)
    draw.line([(_MARGIN_LEFT, bottom), (_WIDTH - _MARGIN_RIGHT, bottom)], "black")
    for r, role in enumerate(roles):  # One legend line per model, below the group names.
        y = bottom + 30 + 16 * r
        draw.rectangle([(_MARGIN_LEFT, y + 2), (_MARGIN_LEFT + 10, y + 12)], fill=_COLOURS[role])
        draw.text((_MARGIN_LEFT + 16, y), f"{role}: {report[role]['model']}"[:100], "black", small)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
