"""Dataset statistics, pure and mergeable: one record's :class:`ExampleStats`, one split's :class:`SplitStats`.

:class:`beam_seg.data.report.DatasetReportFn` sums them per split, with the dead letters and ignored files, into the
report behind ``stats.json`` and ``errors-*.jsonl``. No Beam here (worker pools import this).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
from PIL import Image

from beam_seg.pets import MASK_CLASSES

__all__ = ["ERROR", "FAILURE", "IGNORED", "STATS", "ExampleStats", "SplitStats", "example_stats"]

_LEVELS = np.arange(256, dtype=np.float64)
_LEVELS_SQ = _LEVELS**2


@dataclasses.dataclass(frozen=True)
class ExampleStats:
    """What one stored record adds to its split's statistics."""

    class_pixels: tuple[int, ...]
    channel_sum: tuple[float, ...]
    channel_sumsq: tuple[float, ...]
    height: int
    width: int
    source_height: int
    source_width: int
    record_bytes: int
    conversion: str


def example_stats(
    image: Image.Image, mask: Image.Image, *, source_height: int, source_width: int, record_bytes: int, conversion: str
) -> ExampleStats:
    """Computes one record's contribution from its stored RGB image and its mode ``L`` mask."""
    # Per-channel 256-bin histograms give exact sums and sums of squares without a float copy of the
    # image; PIL counts all three channels in one C pass, where numpy would need a pass per channel.
    hists = np.array(image.histogram(), np.float64).reshape(3, 256)
    return ExampleStats(
        class_pixels=tuple(mask.histogram()[: len(MASK_CLASSES)]),
        channel_sum=tuple((hists @ _LEVELS).tolist()),
        channel_sumsq=tuple((hists @ _LEVELS_SQ).tolist()),
        height=image.height,
        width=image.width,
        source_height=source_height,
        source_width=source_width,
        record_bytes=record_bytes,
        conversion=conversion,
    )


@dataclasses.dataclass
class SplitStats:
    """Running sums for one split (the combiner's accumulator)."""

    num_examples: int = 0
    record_bytes: int = 0
    class_pixels: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(MASK_CLASSES), np.int64))
    channel_sum: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3, np.float64))
    channel_sumsq: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3, np.float64))
    # [height, width, source_height, source_width] sums, minima and maxima.
    size_sum: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4, np.int64))
    size_min: np.ndarray = dataclasses.field(default_factory=lambda: np.full(4, np.iinfo(np.int64).max))
    size_max: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(4, np.int64))
    conversions: Counter = dataclasses.field(default_factory=Counter)

    def add(self, s: ExampleStats) -> None:
        """Adds one record's contribution."""
        sizes = np.array([s.height, s.width, s.source_height, s.source_width], np.int64)
        self.num_examples += 1
        self.record_bytes += s.record_bytes
        self.class_pixels += np.asarray(s.class_pixels, np.int64)
        self.channel_sum += np.asarray(s.channel_sum)
        self.channel_sumsq += np.asarray(s.channel_sumsq)
        self.size_sum += sizes
        np.minimum(self.size_min, sizes, out=self.size_min)
        np.maximum(self.size_max, sizes, out=self.size_max)
        if s.conversion:
            self.conversions[s.conversion] += 1

    def merge(self, other: SplitStats) -> None:
        """Adds another accumulator's sums into this one."""
        self.num_examples += other.num_examples
        self.record_bytes += other.record_bytes
        self.class_pixels += other.class_pixels
        self.channel_sum += other.channel_sum
        self.channel_sumsq += other.channel_sumsq
        self.size_sum += other.size_sum
        np.minimum(self.size_min, other.size_min, out=self.size_min)
        np.maximum(self.size_max, other.size_max, out=self.size_max)
        self.conversions.update(other.conversions)

    def summary(self) -> dict[str, object]:
        """The JSON-ready statistics of the split."""
        n = max(self.num_examples, 1)
        pixels = max(int(self.class_pixels.sum()), 1)
        mean = self.channel_sum / pixels
        std = np.sqrt(np.maximum(self.channel_sumsq / pixels - mean**2, 0.0))
        sizes = {}
        for i, name in enumerate(("height", "width", "source_height", "source_width")):
            sizes[name] = {
                "min": int(self.size_min[i]) if self.num_examples else 0,
                "max": int(self.size_max[i]),
                "mean": round(float(self.size_sum[i]) / n, 3),
            }
        return {
            "num_examples": self.num_examples,
            "record_bytes": self.record_bytes,
            "class_pixel_fractions": {
                name: round(float(c) / pixels, 6) for name, c in zip(MASK_CLASSES, self.class_pixels, strict=True)
            },
            "channel_mean": [round(float(v), 4) for v in mean],
            "channel_std": [round(float(v), 4) for v in std],
            **sizes,
            "conversions": dict(sorted(self.conversions.items())),
        }


# Kinds of the items PrepareExamples reports to DatasetReportFn.
STATS, ERROR, IGNORED, FAILURE = "stats", "error", "ignored", "failure"
