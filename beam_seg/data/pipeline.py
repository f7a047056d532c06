"""Stage 1 as one Beam transform: PETS files → validated, encoded records in shards, a dead-letter file, statistics.

``BuildTFRecords`` reads like the job: ``ReadPetsFiles`` → ``PrepareExamples`` (decode, validate, convert, encode,
report) → ``Report`` (one ``CombineFn``: statistics, dead letters, ignored files) → ``ShardCounts`` →
``WriteShards`` (one ``GroupByKey``) → ``Finalize`` (accounting check, renames, reports; ``stats.json`` last).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import warnings
from collections.abc import Iterable, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from PIL import Image

from beam_seg import cli, fs
from beam_seg.data import codec, imaging, lists, sharding, sources
from beam_seg.data import options as flags
from beam_seg.data import stats as stats_lib
from beam_seg.data.stats import DatasetReportFn, SplitStats, example_stats
from beam_seg.formats import ERRORS_NAME, SCHEMA_NAME, SPLITS, STATS_NAME, shard_pattern

__all__ = [
    "JOB_FAILURES",
    "BuildTFRecords",
    "IncompleteOutputError",
    "JobSettings",
    "TFRecordGenOptions",
    "existing_outputs",
    "failures_of",
    "runs_on_many_workers",
]

logger = logging.getLogger(__name__)

_REPORT = "report"
# The Beam string set through which the job reports why it could not write a complete set (see _FinalizeFn).
JOB_FAILURES = "job_failures"


class TFRecordGenOptions(PipelineOptions):
    """The job's flags (:mod:`beam_seg.data.options`), registered with Beam and read with ``view_as``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        flags.add_flags(parser)


class IncompleteOutputError(RuntimeError):
    """The job would write a set that is not whole: no record at all, or records + errors != listed images.

    Found before anything in the output directory is touched, so an earlier complete set stays as it was.
    """


def _dead_letter(name: str, split: str, stage: str, reason: str, detail: str) -> beam.pvalue.TaggedOutput:
    beam.metrics.Metrics.counter("beam_seg", "images_failed").inc()
    entry = {"name": name, "split": split, "stage": stage, "reason": reason, "detail": detail}
    return beam.pvalue.TaggedOutput(_REPORT, (stats_lib.ERROR, entry))


def _ignored(reason: str) -> beam.pvalue.TaggedOutput:
    beam.metrics.Metrics.counter("beam_seg", "files_ignored").inc()
    return beam.pvalue.TaggedOutput(_REPORT, (stats_lib.IGNORED, reason))


def _read(payload: bytes | str) -> bytes:
    """A file's bytes (see :func:`~beam_seg.data.sources.read_payload`); a file that cannot be read is a dead letter."""
    try:
        return sources.read_payload(payload)
    except OSError as e:
        raise imaging.BadInputError("unreadable_file", f"{payload}: {type(e).__name__}: {e}") from None


class _PrepareExampleFn(beam.DoFn):
    """Turns one image name's joined files into a record, a dead-letter entry, or ignored files.

    Main output: ``(split, (shard key, name, serialized example))``; tagged output ``report``: the
    items :class:`~beam_seg.data.stats.DatasetReportFn` combines (a record's statistics, a dead-letter
    entry, or an ignored file's reason).
    """

    def __init__(self, *, has_lists: bool, resize: int | None, max_pixels: int, val_fraction: float, seed: int) -> None:
        self._has_lists = has_lists
        self._resize = resize
        self._max_pixels = max_pixels
        self._val_fraction = val_fraction
        self._seed = seed
        self._images_read = beam.metrics.Metrics.counter("beam_seg", "images_read")
        self._records_written = beam.metrics.Metrics.counter("beam_seg", "records_written")
        self._seen = 0

    def setup(self) -> None:
        """Lets PIL open every image up to ``max_pixels`` without its own bomb warning or error.

        :func:`~beam_seg.data.imaging.prepare_pair` refuses larger ones from their headers; PIL's process-wide
        limit would otherwise warn on stderr from half of it and refuse from twice its default.
        """
        Image.MAX_IMAGE_PIXELS = max(self._max_pixels, Image.MAX_IMAGE_PIXELS or 0)
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

    def process(self, element: tuple[str, dict[str, Iterable]]) -> Iterator:
        name, groups = element
        listed, files = list(groups["listing"]), list(groups["files"])
        images = [payload for kind, payload in files if kind == sources.IMAGE]
        trimaps = [payload for kind, payload in files if kind == sources.TRIMAP]
        for kind, reason in files:
            if kind == sources.IGNORED:
                yield _ignored(reason)
            elif kind == sources.FAILURE:
                yield beam.pvalue.TaggedOutput(_REPORT, (stats_lib.FAILURE, reason))
        self._images_read.inc(len(images))
        if listed:
            split, label, species = listed[0]
        elif self._has_lists:
            yield from [_ignored("unlisted_image")] * len(images)
            yield from [_ignored("unlisted_trimap")] * len(trimaps)
            return
        elif not images:
            yield from [_ignored("trimap_without_image")] * len(trimaps)
            return
        else:
            split = "trainval"
            try:
                entry = lists.entry_from_name(name)
            except ValueError as e:
                yield _dead_letter(name, split, "pair", "unknown_breed", str(e))
                return
            label, species = entry.label, entry.species
        if split == "trainval":
            split = "val" if sharding.is_val(name, self._val_fraction, self._seed) else "train"
        if not images:
            yield _dead_letter(name, split, "pair", "missing_image", "no images/<name>.{jpg,jpeg,png} file")
            return
        if len(images) > 1:
            yield _dead_letter(name, split, "pair", "duplicate_image", f"{len(images)} image files share this name")
            return
        if not trimaps:
            yield _dead_letter(name, split, "pair", "missing_trimap", "no annotations/trimaps/<name>.png file")
            return
        try:
            image_bytes, trimap_bytes = _read(images[0]), _read(trimaps[0])
            pair = imaging.prepare_pair(image_bytes, trimap_bytes, self._resize, max_pixels=self._max_pixels)
        except imaging.BadInputError as e:
            yield _dead_letter(name, split, "decode", e.reason, e.detail)
            return
        serialized = codec.encode_example(
            codec.PetExample(
                image=pair.image,
                mask=pair.mask,
                height=pair.height,
                width=pair.width,
                file_name=name,
                label=label,
                species=species,
            )
        )
        stats = example_stats(
            pair.rgb_image,
            pair.mask_image,
            source_height=pair.source_height,
            source_width=pair.source_width,
            record_bytes=len(serialized),
            conversion=pair.conversion,
        )
        self._records_written.inc()
        self._seen += 1
        if self._seen % 500 == 0:
            logger.info("this worker has prepared %d records", self._seen)
        yield beam.pvalue.TaggedOutput(_REPORT, (stats_lib.STATS, split, stats))
        yield split, (sharding.shard_key(name, self._seed), name, serialized)


class _FinalizeFn(beam.DoFn):
    """Runs once, after every shard is written: checks the accounting, renames shards into place, writes reports.

    A job that cannot produce a complete set (no records, an accounting mismatch, an unreadable archive, a shard or
    report that cannot be written) does not raise: Finalize adds why to the ``beam_seg:job_failures`` string set and
    emits nothing, the driver reports the reason in one line, and no runner prints tracebacks or retries a failure
    that a retry cannot mend. Nothing is moved into the output directory then, except when a write fails midway
    through the renames; ``stats.json`` is then missing, so the directory does not look complete.
    """

    def __init__(self, *, output_dir: str, temp_dir: str, listed: int | None, config: dict[str, object]) -> None:
        self._output_dir = output_dir
        self._temp_dir = temp_dir
        self._listed = listed
        self._config = config
        self._failures = beam.metrics.Metrics.string_set("beam_seg", JOB_FAILURES)

    def process(self, unused_impulse: bytes, report: dict | None, shards: list[dict]) -> Iterator[dict]:
        if report is None:  # Nothing at all was read: the report of an empty input.
            empty = DatasetReportFn()
            report = empty.extract_output(empty.create_accumulator())
        stats = self._stats(report, [s for s in shards if "error" not in s])
        failures = failures_of(report, shards, stats)
        if failures:
            fs.delete([self._temp_dir])
            for failure in failures:
                self._failures.add(failure)
            return
        try:
            self._publish(report["errors"], shards)
            fs.write_bytes(fs.join(self._output_dir, STATS_NAME), json.dumps(stats, indent=2, sort_keys=True).encode())
        except OSError as e:  # The temporary folder may still hold shards: the driver removes it.
            self._failures.add(f"cannot finish the TFRecord set in {self._output_dir}: {e}")
            return
        fs.delete([self._temp_dir])
        yield stats

    def _stats(self, report: dict, shards: list[dict]) -> dict[str, object]:
        """The ``stats.json`` contents."""
        split_stats, errors = report["splits"], report["errors"]
        records = sum(s["num_examples"] for s in split_stats.values())
        by_reason: dict[str, int] = {}
        for e in errors:
            by_reason[e["reason"]] = by_reason.get(e["reason"], 0) + 1
        return {
            "splits": {split: split_stats.get(split, SplitStats().summary()) for split in SPLITS},
            "shards": {split: sorted(s["name"] for s in shards if s["split"] == split) for split in SPLITS},
            "listed": self._listed if self._listed is not None else records + len(errors),
            "records": records,
            "errors": len(errors),
            "errors_by_reason": dict(sorted(by_reason.items())),
            "ignored_files": dict(sorted(report["ignored"].items())),
            "config": self._config,
        }

    def _publish(self, errors: list[dict], shards: list[dict]) -> None:
        """Moves the new set into place; the previous set's ``stats.json`` goes first, so no mix looks complete."""
        out = self._output_dir
        staged = {
            ERRORS_NAME: "".join(json.dumps(e, sort_keys=True) + "\n" for e in errors).encode("utf-8"),
            SCHEMA_NAME: str(codec.make_schema()).encode("utf-8"),
        }
        for name, data in staged.items():
            with FileSystems.create(FileSystems.join(self._temp_dir, name)) as f:
                f.write(data)
        moves = [(s["temp_path"], FileSystems.join(out, s["name"])) for s in shards]
        moves += [(FileSystems.join(self._temp_dir, name), FileSystems.join(out, name)) for name in staged]
        # The previous set's files that the new set does not replace (renames overwrite the others).
        new_paths = {dst for _, dst in moves}
        stale = [path for path in existing_outputs(out) if path not in new_paths]
        if stale:
            logger.info("removing %d files of the previous TFRecord set in %s", len(stale), out)
            stats_path = FileSystems.join(out, STATS_NAME)
            for group in ([p for p in stale if p == stats_path], [p for p in stale if p != stats_path]):
                if group:
                    FileSystems.delete(group)
        # A retried bundle finds some files already moved: move only what is still in the temp dir.
        moves = [(src, dst) for src, dst in moves if FileSystems.exists(src)]
        if moves:
            FileSystems.rename([src for src, _ in moves], [dst for _, dst in moves])


def failures_of(report: dict, shards: list[dict], stats: dict[str, object]) -> list[str]:
    """Why the job cannot write a complete set (unreadable archives, unwritten shards, incomplete accounting)."""
    failures = [*report["failures"], *sorted(s["error"] for s in shards if "error" in s)]
    if not failures:
        try:
            _check_complete(stats, report["errors"])
        except IncompleteOutputError as e:
            failures.append(str(e))
    return failures


def _check_complete(stats: dict[str, object], errors: list[dict]) -> None:
    """Raises :class:`IncompleteOutputError` unless the set has records and accounts for every listed image."""
    records, failed, listed = stats["records"], stats["errors"], stats["listed"]
    if records == 0:
        reasons = ", ".join(f"{k} {v}" for k, v in stats["errors_by_reason"].items()) or "no image files found"
        first = f"; first: {errors[0]['name']}: {errors[0]['reason']} ({errors[0]['detail']})" if errors else ""
        raise IncompleteOutputError(
            f"no records: none of the {listed} listed images became a record ({reasons}){first}; "
            "nothing was written to the output directory"
        )
    if records + failed != listed:
        raise IncompleteOutputError(
            f"accounting mismatch: {records} records + {failed} errors != {listed} listed images; "
            "nothing was written to the output directory (please report this as a bug)"
        )


def runs_on_many_workers(options: PipelineOptions) -> bool:
    """False only for the local default runner given a single worker, where redistributing is pure overhead."""
    runner = options.view_as(StandardOptions).runner
    return runner not in (None, cli.LOCAL_RUNNER) or (options.view_as(DirectOptions).direct_num_workers or 1) > 1


def existing_outputs(output_dir: str) -> list[str]:
    """The files of a TFRecord set already in ``output_dir`` (shards, reports), sorted."""
    patterns = [FileSystems.join(output_dir, shard_pattern(split)) for split in SPLITS]
    patterns += [FileSystems.join(output_dir, name) for name in ("errors-*.jsonl", STATS_NAME, SCHEMA_NAME)]
    return sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)


def _shard_counts(report: dict, target_bytes: int, fixed: int) -> dict[str, int]:
    return {
        split: sharding.num_shards_for(s["record_bytes"], target_bytes, fixed) for split, s in report["splits"].items()
    }


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """The job's validated settings, as :class:`BuildTFRecords` needs them (no Beam options object).

    Attributes:
        resize: Square side of stored images and masks, or ``None`` to keep the source size and bytes.
        max_pixels: Largest image or trimap accepted, in pixels (larger ones are dead letters).
        val_fraction: Share of trainval carved out as val.
        split_seed: Seed of the stable hashes (val membership, shard and order).
        target_shard_bytes: Shard size target.
        shards_per_split: Fixed shard count per split (0: from ``target_shard_bytes``).
        redistribute: Spread the file groups over workers before the heavy step (see :class:`ReadPetsFiles`).
    """

    resize: int | None
    max_pixels: int
    val_fraction: float
    split_seed: int
    target_shard_bytes: int
    shards_per_split: int
    redistribute: bool


class BuildTFRecords(beam.PTransform):
    """The whole job as one transform: PBegin → a single ``stats`` dict once the output is final."""

    def __init__(self, source: sources.PetsInput, settings: JobSettings, *, output_dir: str, temp_dir: str) -> None:
        super().__init__()
        self._source = source
        self._settings = settings
        self._output_dir = output_dir
        self._temp_dir = temp_dir

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        """PBegin → the ``stats.json`` contents, once the set is in place."""
        settings, source = self._settings, self._source
        # (name, {"listing": [(split, label, species)], "files": [(kind, payload)]})
        files = pbegin | "ReadPetsFiles" >> sources.ReadPetsFiles(source, redistribute=settings.redistribute)
        # records: (split, (shard key, name, serialized example)); report: statistics, dead letters, ignored files
        prepared = files | "PrepareExamples" >> beam.ParDo(
            _PrepareExampleFn(
                has_lists=source.listing is not None,
                resize=settings.resize,
                max_pixels=settings.max_pixels,
                val_fraction=settings.val_fraction,
                seed=settings.split_seed,
            )
        ).with_outputs(_REPORT, main="records")
        # One dict. Without defaults: Finalize substitutes the empty report itself, which spares the three steps
        # CombineGlobally adds to inject one.
        report = prepared[_REPORT] | "Report" >> beam.CombineGlobally(DatasetReportFn()).without_defaults()
        # {split: shard count}
        num_shards = report | "ShardCounts" >> beam.Map(
            _shard_counts, settings.target_shard_bytes, settings.shards_per_split
        )
        # One dict per shard written to the temp dir.
        shards = prepared.records | "WriteShards" >> sharding.WriteShards(
            self._temp_dir, beam.pvalue.AsSingleton(num_shards)
        )
        # Side inputs are complete before a consumer runs, so Finalize sees every shard written.
        finalize = _FinalizeFn(
            output_dir=self._output_dir,
            temp_dir=self._temp_dir,
            listed=len(source.listing) if source.listing is not None else None,
            config={
                "input": source.root,
                "input_layout": source.layout,
                "resize": settings.resize,
                "max_pixels": settings.max_pixels,
                "val_fraction": settings.val_fraction,
                "split_seed": settings.split_seed,
            },
        )
        return (
            pbegin
            | "FinalizeAfterAll" >> beam.Impulse()
            | "Finalize"
            >> beam.ParDo(
                finalize,
                report=beam.pvalue.AsSingleton(report, default_value=None),
                shards=beam.pvalue.AsList(shards),
            )
        )
