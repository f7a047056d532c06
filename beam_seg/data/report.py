"""The job's report as one Beam ``CombineFn``: per-split statistics, dead letters, ignored files, failures.

One pass, mergeable, exact: each record's :class:`~beam_seg.data.stats.ExampleStats` is summed per split into a
:class:`~beam_seg.data.stats.SplitStats`; the output is the JSON-ready report behind ``stats.json`` and
``errors-*.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable

import apache_beam as beam

from beam_seg.data.stats import ERROR, FAILURE, IGNORED, STATS, SplitStats

__all__ = ["DatasetReport", "DatasetReportFn"]


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
