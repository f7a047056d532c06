"""The predict job as one Beam transform: images (or stage 1's records) → masks, overlays, two JSONL reports.

``PredictImages`` reads like the job: ``ReadImages`` (files matched and named, one ``GroupByKey`` by name so each name
has one owner, the owners read; or records read and decoded, then grouped by name) → ``PrepareImages`` (header
checks; exotic formats re-encoded as PNG) → ``Segment`` (``RunInference``: the model loaded once per worker
process, images in batches) → ``WriteMasks`` (mask PNG at the image's size, turned by its EXIF Orientation as the
image is shown; overlay) → ``WriteReports``
(``dead_letters.jsonl``, then ``predictions.jsonl`` last, both sorted). Every input ends up in exactly one of the
two reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import ClassVar

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import ReadAllFromTFRecord
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image

from beam_seg import drawing, fs
from beam_seg.formats import DEAD_LETTERS_NAME, MASKS_DIR, OVERLAYS_DIR, PREDICTIONS_JSONL_NAME
from beam_seg.inference import Segmentation, SegmentationModelHandler
from beam_seg.pets import MASK_CLASSES, PALETTE
from beam_seg.predict import images as images_lib
from beam_seg.predict import inputs as inputs_lib
from beam_seg.predict import options as flags
from beam_seg.predict import outputs as outputs_lib
from beam_seg.predict.inputs import DeadLetter, NamedImage
from beam_seg.records import RecordFormatError, decode_example

__all__ = ["PredictImages", "PredictOptions", "PredictSettings", "ReadImageFiles", "ReadRecordImages"]

logger = logging.getLogger(__name__)

_DEAD = "dead"
_IMAGES = "images"
# Seconds between two progress lines.
PROGRESS_SECONDS = 10.0


class PredictOptions(PipelineOptions):
    """The job's flags (:mod:`beam_seg.predict.options`), registered with Beam and read with ``view_as``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        flags.add_flags(parser)


@dataclasses.dataclass(frozen=True)
class PredictSettings:
    """The job's validated settings, as :class:`PredictImages` needs them (no Beam options object).

    Attributes:
        model: The model's location, as :func:`beam_seg.loader.load_model` takes it.
        overlay: Also write ``overlays/<name>.png``.
        min_batch_size: Smallest batch ``RunInference`` forms.
        max_batch_size: Largest batch.
        max_pixels: Largest image accepted, in pixels.
        quiet_native_stderr: Hide TensorFlow's native start-up lines on the workers (the console's default).
    """

    model: str
    overlay: bool = False
    min_batch_size: int = flags.DEFAULT_MIN_BATCH_SIZE
    max_batch_size: int = flags.DEFAULT_MAX_BATCH_SIZE
    max_pixels: int = images_lib.DEFAULT_MAX_PIXELS
    quiet_native_stderr: bool = False

    def model_handler(self) -> SegmentationModelHandler:
        """The ``RunInference`` model handler of these settings."""
        return SegmentationModelHandler(
            self.model,
            min_batch_size=self.min_batch_size,
            max_batch_size=self.max_batch_size,
            quiet_native_stderr=self.quiet_native_stderr,
        )


# ---------------------------------------------------------------------------------------------- reading


def _key_by_name(path: str) -> Iterator:
    """``path`` → ``(name, path)``, or a ``bad_name`` dead letter."""
    name = inputs_lib.image_name(path)
    problem = inputs_lib.check_name(name)
    if problem:
        yield beam.pvalue.TaggedOutput(_DEAD, DeadLetter(name, path, "bad_name", problem))
    else:
        yield name, path


def _first_path(item: tuple[str, Iterable[str]]) -> Iterator:
    """``(name, [path])`` → the path that keeps the name; ``duplicate_name`` dead letters for the others."""
    name, paths = item
    winner, dead = inputs_lib.first_of_name(name, [NamedImage(name, path, b"") for path in paths])
    for letter in dead:
        yield beam.pvalue.TaggedOutput(_DEAD, letter)
    yield name, winner.source


class _ReadFileFn(beam.DoFn):
    """``(name, path)`` → :class:`NamedImage`, or an ``unreadable_file`` dead letter."""

    def __init__(self) -> None:
        self._read = beam.metrics.Metrics.counter("beam_seg", "images_read")

    def process(self, item: tuple[str, str]) -> Iterator:
        name, path = item
        try:
            with FileSystems.open(path, compression_type="uncompressed") as f:
                data = f.read()
        except Exception as e:  # Any filesystem's error (OSError, GCS client errors, ...) is this file's.
            yield beam.pvalue.TaggedOutput(_DEAD, DeadLetter(name, path, "unreadable_file", _one_line(e)))
            return
        self._read.inc()
        yield NamedImage(name, path, data)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class ReadImageFiles(beam.PTransform):
    """File patterns → :class:`NamedImage` (main output ``images``) and dead letters (``dead``).

    One ``GroupByKey`` of the file names (not their bytes) gives each name one owner, the first by path, and spreads
    the reads over the workers.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        super().__init__()
        self._patterns = list(patterns)

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        """PBegin → ``{"images": NamedImage, "dead": DeadLetter}``."""
        # path
        paths = (
            pbegin
            | "Patterns" >> beam.Create(self._patterns)
            | "MatchFiles" >> fileio.MatchAll()
            | "Paths" >> beam.Map(lambda metadata: metadata.path).with_output_types(str)
            | "ImagesOnly" >> beam.Filter(inputs_lib.is_image_file)
        )
        # (name, path), dead letters (bad_name)
        keyed = paths | "KeyByName" >> beam.FlatMap(_key_by_name).with_outputs(_DEAD, main="named")
        # (name, path) of each name's owner, dead letters (duplicate_name)
        owners = (
            keyed.named
            | "GroupByName" >> beam.GroupByKey()
            | "FirstOfName" >> beam.FlatMap(_first_path).with_outputs(_DEAD, main="owners")
        )
        read = owners.owners | "ReadFiles" >> beam.ParDo(_ReadFileFn()).with_outputs(_DEAD, main=_IMAGES)
        dead = (keyed[_DEAD], owners[_DEAD], read[_DEAD]) | "DeadLetters" >> beam.Flatten()
        return {_IMAGES: read[_IMAGES], _DEAD: dead}


def _decode_record(item: tuple[str, bytes]) -> Iterator:
    """``(shard, serialized record)`` → ``(name, NamedImage)``, or a ``bad_record``/``bad_name`` dead letter."""
    shard, serialized = item
    try:
        example = decode_example(serialized)
    except RecordFormatError as e:
        yield beam.pvalue.TaggedOutput(_DEAD, DeadLetter("", shard, "bad_record", str(e)))
        return
    problem = inputs_lib.check_name(example.file_name)
    if problem:
        yield beam.pvalue.TaggedOutput(_DEAD, DeadLetter(example.file_name, shard, "bad_name", problem))
        return
    yield example.file_name, NamedImage(example.file_name, shard, example.image)


def _first_image(item: tuple[str, Iterable[NamedImage]]) -> Iterator:
    """``(name, [NamedImage])`` → the one that keeps the name; ``duplicate_name`` dead letters for the others."""
    name, images = item
    winner, dead = inputs_lib.first_of_name(name, images)
    for letter in dead:
        yield beam.pvalue.TaggedOutput(_DEAD, letter)
    yield winner


class ReadRecordImages(beam.PTransform):
    """TFRecord shards of stage 1 → :class:`NamedImage` (``images``, named by ``file_name``) and dead letters."""

    def __init__(self, shards: Iterable[str]) -> None:
        super().__init__()
        self._shards = list(shards)

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        """PBegin → ``{"images": NamedImage, "dead": DeadLetter}``."""
        # (name, NamedImage), dead letters (bad_record, bad_name)
        decoded = (
            pbegin
            | "Shards" >> beam.Create(self._shards)
            | "ReadRecords" >> ReadAllFromTFRecord(with_filename=True)
            | "DecodeRecords" >> beam.FlatMap(_decode_record).with_outputs(_DEAD, main="named")
        )
        # NamedImage of each name's owner, dead letters (duplicate_name)
        owners = (
            decoded.named
            | "GroupByName" >> beam.GroupByKey()
            | "FirstOfName" >> beam.FlatMap(_first_image).with_outputs(_DEAD, main=_IMAGES)
        )
        dead = (decoded[_DEAD], owners[_DEAD]) | "DeadLetters" >> beam.Flatten()
        return {_IMAGES: owners[_IMAGES], _DEAD: dead}


# ---------------------------------------------------------------------------------------------- predicting


class _PrepareFn(beam.DoFn):
    """:class:`NamedImage` → ``(ImageInfo, model bytes)``, or a dead letter (see :func:`.images.prepare_image`)."""

    def __init__(self, max_pixels: int) -> None:
        self._max_pixels = max_pixels

    def process(self, image: NamedImage) -> Iterator:
        prepared = images_lib.prepare_image(image, max_pixels=self._max_pixels)
        if isinstance(prepared, DeadLetter):
            yield beam.pvalue.TaggedOutput(_DEAD, prepared)
        else:
            yield prepared


class _Progress:
    """Images written in this process, logged every :data:`PROGRESS_SECONDS` (one tracker per job and process)."""

    _lock = threading.Lock()
    _jobs: ClassVar[dict[str, _Progress]] = {}

    def __init__(self, total: int | None) -> None:
        self._total = total
        self._count = 0
        self._started = self._logged = 0.0  # From the first image: the model loads before it.

    @classmethod
    def for_job(cls, job: str, total: int | None) -> _Progress:
        """The tracker of ``job`` in this process."""
        with cls._lock:
            return cls._jobs.setdefault(job, cls(total))

    def add(self) -> None:
        """Counts one image; logs a progress line when one is due."""
        now = time.monotonic()
        with self._lock:
            if not self._count:
                self._started = self._logged = now
            self._count += 1
            if now - self._logged < PROGRESS_SECONDS:
                return
            self._logged, count = now, self._count
        rate = count / max(now - self._started, 1e-9)
        of = f" of {self._total}" if self._total else ""
        logger.info("segmented %d%s images in this process (%.1f/s)", count, of, rate)


class _WriteMasksFn(beam.DoFn):
    """``(ImageInfo, PredictionResult)`` → the mask (and overlay) files, and the image's ``predictions.jsonl`` line.

    An image the model could not decode becomes an ``undecodable_image`` dead letter instead.
    """

    def __init__(self, output_dir: str, *, overlay: bool, progress: tuple[str, int | None] | None = None) -> None:
        self._output_dir = output_dir
        self._overlay = overlay
        self._progress_key = progress
        self._progress: _Progress | None = None
        self._written = beam.metrics.Metrics.counter("beam_seg", "masks_written")

    def setup(self) -> None:
        if self._progress_key is not None:
            self._progress = _Progress.for_job(*self._progress_key)

    def process(self, item: tuple[images_lib.ImageInfo, PredictionResult]) -> Iterator:
        info, result = item
        segmentation: Segmentation = result.inference
        if segmentation.mask is None:  # undecodable_image, or model_not_loaded (for every image then).
            letter = DeadLetter(info.name, info.source, segmentation.reason or "", segmentation.error or "")
            yield beam.pvalue.TaggedOutput(_DEAD, letter)
            return
        # The model read the stored pixels: the mask is upsampled to their size, then turned as the image is shown.
        mask = outputs_lib.upsample_mask(segmentation.mask, *info.stored_size)
        files = {"mask": f"{MASKS_DIR}/{info.name}.png"}
        self._write(files["mask"], outputs_lib.encode_png(drawing.upright(mask, info.orientation)))
        if self._overlay:
            files["overlay"] = f"{OVERLAYS_DIR}/{info.name}.png"
            with Image.open(io.BytesIO(result.example)) as pil:
                pixels = np.asarray(pil.convert("RGB"))
            drawn = drawing.overlay(pixels, mask, PALETTE, MASK_CLASSES)
            self._write(files["overlay"], outputs_lib.encode_png(drawing.upright(drawn, info.orientation)))
        self._written.inc()
        if self._progress is not None:
            self._progress.add()
        yield outputs_lib.prediction_line(
            name=info.name,
            source=info.source,
            width=info.width,
            height=info.height,
            fractions=outputs_lib.class_fractions(mask, MASK_CLASSES),
            files=files,
        )

    def _write(self, relative: str, data: bytes) -> None:
        with FileSystems.create(fs.join(self._output_dir, *relative.split("/"))) as f:
            f.write(data)


class _WriteReportsFn(beam.DoFn):
    """Runs once, after every mask is written: ``dead_letters.jsonl``, then ``predictions.jsonl`` (last), sorted."""

    def __init__(self, output_dir: str) -> None:
        self._output_dir = output_dir

    def process(self, unused_impulse: bytes, predictions: list[dict], dead_letters: list[DeadLetter]) -> Iterator:
        fs.write_bytes(
            fs.join(self._output_dir, DEAD_LETTERS_NAME),
            outputs_lib.jsonl((d.to_json() for d in dead_letters), "name", "source"),
        )
        fs.write_bytes(fs.join(self._output_dir, PREDICTIONS_JSONL_NAME), outputs_lib.jsonl(predictions, "name"))
        yield {"predictions": len(predictions), "dead_letters": len(dead_letters)}


class PredictImages(beam.PTransform):
    """The whole job as one transform: PBegin → ``{"predictions": n, "dead_letters": n}`` once both are written."""

    def __init__(
        self,
        found: inputs_lib.Inputs,
        settings: PredictSettings,
        *,
        output_dir: str,
    ) -> None:
        super().__init__()
        self._found = found
        self._settings = settings
        self._output_dir = output_dir

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        """PBegin → the counts of the two reports, once both are written."""
        settings, found = self._settings, self._found
        read = ReadImageFiles(found.patterns) if found.kind == inputs_lib.IMAGES else ReadRecordImages(found.patterns)
        # {"images": NamedImage, "dead": DeadLetter}
        named = pbegin | "ReadImages" >> read
        # (ImageInfo, model bytes); dead letters (empty_image, unknown_format, image_too_large, undecodable_image)
        prepared = named[_IMAGES] | "PrepareImages" >> beam.ParDo(_PrepareFn(settings.max_pixels)).with_outputs(
            _DEAD, main=_IMAGES
        )
        # (ImageInfo, PredictionResult(model bytes, Segmentation))
        segmented = prepared[_IMAGES] | "Segment" >> RunInference(KeyedModelHandler(settings.model_handler()))
        # predictions.jsonl lines; dead letters (undecodable_image: the model's decoder refused it)
        written = segmented | "WriteMasks" >> beam.ParDo(
            _WriteMasksFn(
                self._output_dir,
                overlay=settings.overlay,
                progress=(self._output_dir, found.count if found.kind == inputs_lib.IMAGES else None),
            )
        ).with_outputs(_DEAD, main="lines")
        dead = (named[_DEAD], prepared[_DEAD], written[_DEAD]) | "DeadLetters" >> beam.Flatten()
        # Side inputs are complete before WriteReports runs, so it runs after every mask is written.
        return (
            pbegin
            | "ReportsAfterAll" >> beam.Impulse()
            | "WriteReports"
            >> beam.ParDo(
                _WriteReportsFn(self._output_dir),
                predictions=beam.pvalue.AsList(written.lines),
                dead_letters=beam.pvalue.AsList(dead),
            )
        )
