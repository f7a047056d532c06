"""The evaluation as one Beam transform: a split's records → each model's summed confusion matrix → the report.

``EvaluateModels`` reads like the job: ``ReadRecords`` → ``DecodeRecords`` → per model, ``Segment<Role>``
(``RunInference``: the model loaded once per worker process, images in batches) → ``Score<Role>`` (one confusion
matrix per record, labels resized as training resizes them) → ``SumConfusions`` (one ``CombineFn`` per model) →
``WriteReport`` (``eval_report.json``, ``eval_comparison.png``). Both models read the same records in one pass.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io.tfrecordio import ReadAllFromTFRecord
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from beam_seg import fs
from beam_seg.evaluate import options as flags
from beam_seg.evaluate import report as report_lib
from beam_seg.evaluate import scoring
from beam_seg.evaluate.report import ModelTotals
from beam_seg.formats import EVAL_COMPARISON_NAME, EVAL_REPORT_NAME
from beam_seg.inference import MODEL_NOT_LOADED, SegmentationModelHandler
from beam_seg.pets import MASK_CLASSES
from beam_seg.records import RecordFormatError, decode_example

__all__ = ["ConfusionSumFn", "EvaluateModels", "EvaluateOptions", "EvaluationSettings"]

_BAD = "bad"


class EvaluateOptions(PipelineOptions):
    """The job's flags (:mod:`beam_seg.evaluate.options`), registered with Beam and read with ``view_as``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        flags.add_flags(parser)


@dataclasses.dataclass(frozen=True)
class EvaluationSettings:
    """The job's validated settings, as :class:`EvaluateModels` needs them.

    Attributes:
        split: The split evaluated.
        data_dir: The TFRecord set (for the report).
        shards: The split's shards.
        models: Role (``candidate``, ``baseline``) → model location, in report order.
        min_batch_size: Smallest batch ``RunInference`` forms.
        max_batch_size: Largest batch.
        quiet_native_stderr: Hide TensorFlow's native start-up lines on the workers.
    """

    split: str
    data_dir: str
    shards: tuple[str, ...]
    models: Mapping[str, str]
    min_batch_size: int = flags.DEFAULT_MIN_BATCH_SIZE
    max_batch_size: int = flags.DEFAULT_MAX_BATCH_SIZE
    quiet_native_stderr: bool = False

    def model_handler(self, location: str) -> KeyedModelHandler:
        """The keyed ``RunInference`` model handler of ``location``."""
        return KeyedModelHandler(
            SegmentationModelHandler(
                location,
                min_batch_size=self.min_batch_size,
                max_batch_size=self.max_batch_size,
                quiet_native_stderr=self.quiet_native_stderr,
            )
        )


def _decode_record(item: tuple[str, bytes]) -> Iterator:
    """``(shard, serialized record)`` → ``((file_name, mask PNG), image bytes)``, or ``(shard, why)`` tagged bad."""
    shard, serialized = item
    try:
        example = decode_example(serialized)
    except RecordFormatError as e:
        yield beam.pvalue.TaggedOutput(_BAD, (shard, str(e)))
        return
    yield (example.file_name, example.mask), example.image


def _score(item: tuple[tuple[str, bytes], PredictionResult]) -> ModelTotals:
    """One record's totals: its confusion matrix at the model's size, or the record skipped with the reason."""
    (name, label_png), result = item
    segmentation = result.inference
    n = len(MASK_CLASSES)
    if segmentation.mask is None:  # The image does not decode, or the model did not load.
        why = segmentation.error or ""
        if segmentation.reason != MODEL_NOT_LOADED:
            why = f"undecodable image: {why}"
        return ModelTotals(np.zeros((n, n), np.int64), skipped=[(name, why)])
    try:
        confusion = scoring.score_record(label_png, segmentation.mask, n)
    except ValueError as e:
        return ModelTotals(np.zeros((n, n), np.int64), skipped=[(name, str(e))])
    return ModelTotals(confusion, 1, [int(segmentation.mask.shape[0])])


class ConfusionSumFn(beam.CombineFn):
    """Sums per-record :class:`~beam_seg.evaluate.report.ModelTotals` (int64 C×C confusion matrices and counts)."""

    def create_accumulator(self) -> ModelTotals:
        """Zero totals."""
        n = len(MASK_CLASSES)
        return ModelTotals(np.zeros((n, n), np.int64))

    def add_input(self, accumulator: ModelTotals, element: ModelTotals) -> ModelTotals:
        """Adds one record's totals."""
        return accumulator.merged(element)

    def merge_accumulators(self, accumulators: Sequence[ModelTotals]) -> ModelTotals:
        """Adds partial sums."""
        merged = self.create_accumulator()
        for accumulator in accumulators:
            merged = merged.merged(accumulator)
        return merged

    def extract_output(self, accumulator: ModelTotals) -> ModelTotals:
        """The split's totals."""
        return accumulator


class _WriteReportFn(beam.DoFn):
    """Runs once, after every record is scored: builds the report and writes it with its picture."""

    def __init__(self, settings: EvaluationSettings, output_dir: str) -> None:
        self._settings = settings
        self._output_dir = output_dir

    def process(
        self,
        unused_impulse: bytes,
        totals: dict[str, ModelTotals],
        num_records: int,
        bad: list[tuple[str, str]],
    ) -> Iterator[dict[str, Any]]:
        settings = self._settings
        empty = ConfusionSumFn().create_accumulator()
        report = report_lib.build_report(
            split=settings.split,
            data_dir=settings.data_dir,
            class_names=MASK_CLASSES,
            models={role: (location, totals.get(role, empty)) for role, location in settings.models.items()},
            num_records=num_records,
            bad_records=bad,
        )
        fs.write_bytes(fs.join(self._output_dir, EVAL_COMPARISON_NAME), report_lib.comparison_png(report))
        fs.write_json(fs.join(self._output_dir, EVAL_REPORT_NAME), report)
        yield report


class EvaluateModels(beam.PTransform):
    """The whole job as one transform: PBegin → the report (one dict), once it is written."""

    def __init__(self, settings: EvaluationSettings, *, output_dir: str) -> None:
        super().__init__()
        self._settings = settings
        self._output_dir = output_dir

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        """PBegin → the ``eval_report.json`` contents."""
        settings = self._settings
        # (shard, serialized record)
        records = (
            pbegin
            | "Shards" >> beam.Create(list(settings.shards))
            | "ReadRecords" >> ReadAllFromTFRecord(with_filename=True)
        )
        # ((file_name, mask PNG), image bytes); bad: (shard, why)
        decoded = records | "DecodeRecords" >> beam.FlatMap(_decode_record).with_outputs(_BAD, main="images")
        # (role, ModelTotals of one record), per model
        scored = []
        for role, location in settings.models.items():
            label = role.capitalize()
            scored.append(
                decoded.images
                | f"Segment{label}" >> RunInference(settings.model_handler(location))
                | f"Score{label}" >> beam.Map(lambda item, role=role: (role, _score(item)))
            )
        # (role, ModelTotals of the split)
        totals = scored | "AllModels" >> beam.Flatten() | "SumConfusions" >> beam.CombinePerKey(ConfusionSumFn())
        num_records = records | "CountRecords" >> beam.combiners.Count.Globally()
        # Side inputs are complete before WriteReport runs, so it sees every model's totals.
        return (
            pbegin
            | "ReportAfterAll" >> beam.Impulse()
            | "WriteReport"
            >> beam.ParDo(
                _WriteReportFn(settings, self._output_dir),
                totals=beam.pvalue.AsDict(totals),
                num_records=beam.pvalue.AsSingleton(num_records),
                bad=beam.pvalue.AsList(decoded[_BAD]),
            )
        )
