"""Dataset statistics as one Beam ``CombineFn``: one pass, mergeable, exact.

Each record contributes an :class:`ExampleStats`, summed per split into a :class:`SplitStats`;
:class:`DatasetReportFn` gathers those, the dead-letter entries and the ignored-file counts into
the JSON-ready report behind ``stats.json`` and ``errors-*.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
from PIL import Image

from beam_seg.pets import MASK_CLASSES

__all__ = ["ERROR", "IGNORED", "STATS", "DatasetReportFn", "ExampleStats", "SplitStats", "example_stats"]

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


@dataclasses.dataclass
class DatasetReport:
    """Running totals of the whole job (the combiner's accumulator)."""

    splits: dict[str, SplitStats] = dataclasses.field(default_factory=dict)
    errors: list[dict[str, str]] = dataclasses.field(default_factory=list)
    ignored: Counter = dataclasses.field(default_factory=Counter)
    failures: list[str] = dataclasses.field(default_factory=list)


class DatasetReportFn(beam.CombineFn):
    """Combines everything the job reports into one dict, in one pass over one shuffle.

    Inputs are ``(STATS, split, ExampleStats)`` for each record, ``(ERROR, dead-letter entry)`` for
    each listed image that could not become one, ``(IGNORED, reason)`` for each junk file, and
    ``(FAILURE, message)`` for a whole-input failure (a truncated archive), which fails the job.
    The output is ``{"splits": {split: summary}, "errors": [entries sorted], "ignored": {reason: n},
    "failures": [messages sorted]}``.
    """

    def create_accumulator(self) -> DatasetReport:
        """An empty report."""
        return DatasetReport()

    def add_input(self, accumulator: DatasetReport, element: tuple) -> DatasetReport:
        """Adds one report item (``STATS``, ``ERROR``, ``IGNORED`` or ``FAILURE``; see the class docstring)."""
        kind = element[0]
        if kind == STATS:
            split = accumulator.splits.get(element[1])
            if split is None:  # Not setdefault: a fresh SplitStats per record would cost more than adding it.
                split = accumulator.splits[element[1]] = SplitStats()
            split.add(element[2])
        elif kind == ERROR:
            accumulator.errors.append(element[1])
        elif kind == IGNORED:
            accumulator.ignored[element[1]] += 1
        elif kind == FAILURE:
            accumulator.failures.append(element[1])
        else:
            raise ValueError(
                f"unknown report item kind {kind!r}; expected {STATS!r}, {ERROR!r}, {IGNORED!r} or {FAILURE!r}"
            )
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[DatasetReport]) -> DatasetReport:
        """Sums reports (into the first one)."""
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for acc in accumulators:
            for split, stats in acc.splits.items():
                merged.splits.setdefault(split, SplitStats()).merge(stats)
            merged.errors.extend(acc.errors)
            merged.ignored.update(acc.ignored)
            merged.failures.extend(acc.failures)
        return merged

    def extract_output(self, accumulator: DatasetReport) -> dict[str, object]:
        """The JSON-ready report, with the dead letters in a stable order."""
        return {
            "splits": {split: stats.summary() for split, stats in sorted(accumulator.splits.items())},
            "errors": sorted(accumulator.errors, key=lambda e: json.dumps(e, sort_keys=True)),
            "ignored": dict(sorted(accumulator.ignored.items())),
            "failures": sorted(accumulator.failures),
        }
