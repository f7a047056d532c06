"""Stage 1: Oxford-IIIT Pet images + trimaps → sharded TFRecords, dead-letter file and statistics.

Usage::

    python -m beam_seg.tfrecord_gen --input DIR --output_dir DIR [--resize 128] [Beam options]

Reads the extracted PETS layout or the two official archives (local or ``gs://``), pairs each
listed image with its trimap, validates and converts it, and writes ``{train,val,test}-SSSSS-of-
NNNNN.tfrecord`` (record format: :mod:`beam_seg.codec`), ``errors-00000-of-00001.jsonl`` (one line
per listed image that could not become a record), ``stats.json`` and ``schema.pbtxt``. Every
listed image ends up in exactly one of records or errors. ``stats.json`` is written last: a
directory without it is not a complete output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions, TestOptions

from beam_seg import codec, imaging, pets, sharding, sources
from beam_seg.options import OutputOptions
from beam_seg import stats as stats_lib
from beam_seg.stats import DatasetReportFn, SplitStats, example_stats

__all__ = ["BuildTFRecords", "TFRecordGenOptions", "run"]

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
ERRORS_NAME = "errors-00000-of-00001.jsonl"
STATS_NAME = "stats.json"
SCHEMA_NAME = "schema.pbtxt"
_REPORT = "report"
# Local default runner settings; the running mode is the fastest one measured by bench/tfrecord_gen.py.
LOCAL_RUNNER = "FnApiRunner"
LOCAL_RUNNING_MODE = "multi_threading"


_OUTPUT_DIR_HELP = "Directory (local or gs://) for shards and statistics. Required."


class OutputExistsError(FileExistsError):
    """``--output_dir`` already holds a TFRecord set and ``--overwrite`` was not given."""


class TFRecordGenOptions(PipelineOptions):
    """Options of the TFRecord generation job; ``--output_dir`` is the shared :class:`OutputOptions` flag."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--input",
            help="Directory (local or gs://) with the official images.tar.gz + annotations.tar.gz, or with their "
            "extracted images/ and annotations/ folders. Required.",
        )
        parser.add_argument(
            "--input_layout",
            default="auto",
            choices=("auto", "archives", "extracted"),
            help="Which layout to read; auto prefers the archives when both are present (default: %(default)s).",
        )
        parser.add_argument(
            "--resize",
            type=int,
            default=None,
            help="Resize images and masks to SxS (bilinear with antialias for images, nearest for masks). "
            "Default: keep the source size and the source JPEG bytes.",
        )
        parser.add_argument(
            "--val_fraction",
            type=float,
            default=0.1,
            help="Share of trainval carved out as val by a stable hash of the image name (default: %(default)s).",
        )
        parser.add_argument(
            "--split_seed",
            type=int,
            default=0,
            help="Seed of the stable hashes that pick val images and order records (default: %(default)s).",
        )
        parser.add_argument(
            "--target_shard_mb",
            type=float,
            default=128.0,
            help="Target shard size in MB; shard counts come from the data, at least one per split "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--shards_per_split",
            type=int,
            default=0,
            help="Fixed number of shards per split, overriding --target_shard_mb (default: 0 = from the data).",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="Replace an existing TFRecord set in --output_dir (otherwise the job refuses to start).",
        )


def _dead_letter(name: str, split: str, stage: str, reason: str, detail: str) -> beam.pvalue.TaggedOutput:
    beam.metrics.Metrics.counter("beam_seg", "images_failed").inc()
    entry = {"name": name, "split": split, "stage": stage, "reason": reason, "detail": detail}
    return beam.pvalue.TaggedOutput(_REPORT, (stats_lib.ERROR, entry))


def _ignored(reason: str) -> beam.pvalue.TaggedOutput:
    beam.metrics.Metrics.counter("beam_seg", "files_ignored").inc()
    return beam.pvalue.TaggedOutput(_REPORT, (stats_lib.IGNORED, reason))


class _PrepareExampleFn(beam.DoFn):
    """Turns one image name's joined files into a record, a dead-letter entry, or ignored files.

    Main output: ``(split, (shard key, name, serialized example))``; tagged output ``report``: the
    items :class:`~beam_seg.stats.DatasetReportFn` combines (a record's statistics, a dead-letter
    entry, or an ignored file's reason).
    """

    def __init__(self, *, has_lists: bool, resize: int | None, val_fraction: float, seed: int) -> None:
        self._has_lists = has_lists
        self._resize = resize
        self._val_fraction = val_fraction
        self._seed = seed
        self._images_read = beam.metrics.Metrics.counter("beam_seg", "images_read")
        self._records_written = beam.metrics.Metrics.counter("beam_seg", "records_written")
        self._seen = 0

    def process(self, element: tuple[str, dict[str, Iterable]]) -> Iterator:
        name, groups = element
        listed, files = list(groups["listing"]), list(groups["files"])
        images = [payload for kind, payload in files if kind == sources.IMAGE]
        trimaps = [payload for kind, payload in files if kind == sources.TRIMAP]
        for kind, reason in files:
            if kind == sources.IGNORED:
                yield _ignored(reason)
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
                entry = pets.entry_from_name(name)
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
            pair = imaging.prepare_pair(
                sources.read_payload(images[0]), sources.read_payload(trimaps[0]), self._resize
            )
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
    """Runs once, after every shard is written: renames shards into place and writes the reports."""

    def __init__(self, *, output_dir: str, temp_dir: str, listed: int | None, config: dict[str, object]) -> None:
        self._output_dir = output_dir
        self._temp_dir = temp_dir
        self._listed = listed
        self._config = config

    def process(self, unused_impulse: bytes, report: dict | None, shards: list[dict]) -> Iterator[dict]:
        out = self._output_dir
        if report is None:  # Nothing at all was read: the report of an empty input.
            empty = DatasetReportFn()
            report = empty.extract_output(empty.create_accumulator())
        split_stats, errors, ignored = report["splits"], report["errors"], report["ignored"]
        records = sum(s["num_examples"] for s in split_stats.values())
        by_reason: dict[str, int] = {}
        for e in errors:
            by_reason[e["reason"]] = by_reason.get(e["reason"], 0) + 1
        listed = self._listed if self._listed is not None else records + len(errors)
        if records + len(errors) != listed:
            logger.error("accounting mismatch: %d records + %d errors != %d listed", records, len(errors), listed)
        stats = {
            "splits": {split: split_stats.get(split, SplitStats().summary()) for split in SPLITS},
            "shards": {split: sorted(s["name"] for s in shards if s["split"] == split) for split in SPLITS},
            "listed": listed,
            "records": records,
            "errors": len(errors),
            "errors_by_reason": dict(sorted(by_reason.items())),
            "ignored_files": dict(sorted(ignored.items())),
            "config": self._config,
        }  # fmt: skip
        staged = {
            ERRORS_NAME: "".join(json.dumps(e, sort_keys=True) + "\n" for e in errors).encode("utf-8"),
            SCHEMA_NAME: str(codec.make_schema()).encode("utf-8"),
        }
        for name, data in staged.items():
            with FileSystems.create(FileSystems.join(self._temp_dir, name)) as f:
                f.write(data)
        moves = [(s["temp_path"], FileSystems.join(out, s["name"])) for s in shards]
        moves += [(FileSystems.join(self._temp_dir, name), FileSystems.join(out, name)) for name in staged]
        # First the old stats.json goes, so a mix of old and new files never looks complete; then the
        # previous set's files that the new set does not replace (renames overwrite the others).
        new_paths = {dst for _, dst in moves}
        stale = [path for path in _existing_outputs(out) if path not in new_paths]
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
        with FileSystems.create(FileSystems.join(out, STATS_NAME)) as f:
            f.write(json.dumps(stats, indent=2, sort_keys=True).encode("utf-8"))
        if FileSystems.exists(self._temp_dir):
            FileSystems.delete([self._temp_dir])
        yield stats


def _runs_on_many_workers(options: PipelineOptions) -> bool:
    """False only for the local default runner given a single worker, where redistributing is pure overhead."""
    runner = options.view_as(StandardOptions).runner
    return runner not in (None, LOCAL_RUNNER) or (options.view_as(DirectOptions).direct_num_workers or 1) > 1


def _existing_outputs(output_dir: str) -> list[str]:
    patterns = [FileSystems.join(output_dir, f"{split}-*-of-*.tfrecord") for split in SPLITS]
    patterns += [FileSystems.join(output_dir, name) for name in ("errors-*.jsonl", STATS_NAME, SCHEMA_NAME)]
    return sorted(m.path for result in FileSystems.match(patterns) for m in result.metadata_list)


def _shard_counts(report: dict, target_bytes: int, fixed: int) -> dict[str, int]:
    return {
        split: sharding.num_shards_for(s["record_bytes"], target_bytes, fixed) for split, s in report["splits"].items()
    }


class BuildTFRecords(beam.PTransform):
    """The whole job as one transform: PBegin → a single ``stats`` dict once the output is final."""

    def __init__(self, source: sources.PetsInput, options: TFRecordGenOptions, *, output_dir: str, temp_dir: str) -> None:
        super().__init__()
        self._source = source
        self._options = options
        self._output_dir = output_dir
        self._temp_dir = temp_dir

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        opts = self._options
        prepared = (
            pbegin
            | "ReadPetsFiles" >> sources.ReadPetsFiles(self._source, redistribute=_runs_on_many_workers(opts))
            | "PrepareExamples"
            >> beam.ParDo(
                _PrepareExampleFn(
                    has_lists=self._source.listing is not None,
                    resize=opts.resize,
                    val_fraction=opts.val_fraction,
                    seed=opts.split_seed,
                )
            ).with_outputs(_REPORT, main="records")
        )
        # Without defaults: Finalize substitutes the empty report itself (see _FinalizeFn), which
        # spares the three steps CombineGlobally adds to inject one.
        report = prepared[_REPORT] | "Report" >> beam.CombineGlobally(DatasetReportFn()).without_defaults()
        num_shards = report | "ShardCounts" >> beam.Map(
            _shard_counts, int(opts.target_shard_mb * 1e6), opts.shards_per_split
        )
        shards = prepared.records | "WriteShards" >> sharding.WriteShards(
            self._temp_dir, beam.pvalue.AsSingleton(num_shards)
        )
        # Side inputs are complete before a consumer runs, so Finalize sees every shard written.
        return pbegin | "FinalizeAfterAll" >> beam.Impulse() | "Finalize" >> beam.ParDo(
            _FinalizeFn(
                output_dir=self._output_dir,
                temp_dir=self._temp_dir,
                listed=len(self._source.listing) if self._source.listing is not None else None,
                config={
                    "input": self._source.root,
                    "input_layout": self._source.layout,
                    "resize": opts.resize,
                    "val_fraction": opts.val_fraction,
                    "split_seed": opts.split_seed,
                },
            ),
            report=beam.pvalue.AsSingleton(report, default_value=None),
            shards=beam.pvalue.AsList(shards),
        )


def _help_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m beam_seg.tfrecord_gen",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"""\
Apache Beam pipeline options are accepted too, for example:
  --runner DirectRunner|DataflowRunner   default: {LOCAL_RUNNER} (the DirectRunner's batch engine,
                                         without its Prism download attempt) with
                                         --direct_running_mode={LOCAL_RUNNING_MODE}
                                         --direct_num_workers=<number of cores>
  --direct_running_mode, --direct_num_workers
  Dataflow: --project, --region, --temp_location gs://..., --staging_location gs://...,
            --setup_file ./setup.py, --machine_type, --max_num_workers,
            --sdk_container_image, --dry_run (build the job without submitting it)

Outputs in --output_dir:
  {{train,val,test}}-SSSSS-of-NNNNN.tfrecord   records (format: see README "Record format")
  errors-00000-of-00001.jsonl                listed images that could not become records
  schema.pbtxt                               tensorflow_metadata Schema of the records
  stats.json                                 per-split statistics; written last
""",
    )
    TFRecordGenOptions._add_argparse_args(parser)
    parser.add_argument("--output_dir", help=_OUTPUT_DIR_HELP)  # Parsed by OutputOptions (shared).
    return parser


def _validate(opts: TFRecordGenOptions, output_dir: str | None) -> None:
    if not opts.input or not output_dir:
        raise ValueError("--input and --output_dir are required (see --help)")
    if opts.resize is not None and not 8 <= opts.resize <= 4096:
        raise ValueError(f"--resize {opts.resize} is out of range; use a side between 8 and 4096 pixels")
    if not 0.0 <= opts.val_fraction < 1.0:
        raise ValueError(f"--val_fraction {opts.val_fraction} must be in [0, 1)")
    if opts.target_shard_mb <= 0 or opts.shards_per_split < 0:
        raise ValueError(
            f"--target_shard_mb {opts.target_shard_mb} must be > 0 and --shards_per_split {opts.shards_per_split} >= 0"
        )


def make_pipeline_options(
    argv: Sequence[str], *, running_mode: str = LOCAL_RUNNING_MODE, num_workers: int | None = None
) -> PipelineOptions:
    """Parses argv into pipeline options, applying the local runner defaults when no runner is given.

    Without ``--runner`` the job runs on ``FnApiRunner``, the engine the DirectRunner itself uses for
    batch pipelines, chosen directly: Beam 2.77's ``DirectRunner`` first tries the Prism runner, which
    downloads a binary from GitHub at run time (and would run the job on a different engine when it
    succeeds). ``--runner DirectRunner`` still gets Beam's own behaviour.

    Args:
        argv: Command-line arguments (job flags and Beam flags).
        running_mode: ``--direct_running_mode`` unless given in ``argv``.
        num_workers: ``--direct_num_workers`` unless given in ``argv`` (default: the number of cores).
    """
    options = PipelineOptions(argv)
    standard = options.view_as(StandardOptions)
    direct = options.view_as(DirectOptions)
    given = {arg.split("=", 1)[0] for arg in argv if arg.startswith("--")}
    if standard.runner is None:
        standard.runner = LOCAL_RUNNER
    if standard.runner in StandardOptions.LOCAL_RUNNERS:
        if "--direct_running_mode" not in given:
            direct.direct_running_mode = running_mode
        if "--direct_num_workers" not in given:
            direct.direct_num_workers = num_workers or os.cpu_count() or 1
    return options


def build_pipeline(argv: Sequence[str]) -> tuple[beam.Pipeline, str]:
    """Validates arguments and input, and returns the constructed (not yet run) pipeline and its output dir.

    Raises:
        ValueError: on bad arguments or input (including :class:`sources.InputError`).
        OutputExistsError: if the output directory holds a TFRecord set and ``--overwrite`` is off.
    """
    options = make_pipeline_options(argv)
    opts = options.view_as(TFRecordGenOptions)
    output_dir = options.view_as(OutputOptions).output_dir
    _validate(opts, output_dir)
    FileSystems.set_options(options)  # Construction-time reads use the job's GCS settings (e.g. --no_auth).
    source = sources.find_input(opts.input, opts.input_layout)
    existing = _existing_outputs(output_dir)
    if existing and not opts.overwrite:
        raise OutputExistsError(
            f"--output_dir {output_dir!r} already holds a TFRecord set ({existing[0]} …); "
            "pass --overwrite to replace it or choose another directory"
        )
    temp_dir = FileSystems.join(output_dir.rstrip("/"), f".tmp-{uuid.uuid4().hex}")
    pipeline = beam.Pipeline(options=options)
    _ = pipeline | "BuildTFRecords" >> BuildTFRecords(source, opts, output_dir=output_dir, temp_dir=temp_dir)
    return pipeline, output_dir


class _WorkerLogFilter(logging.Filter):
    """Keeps the multi-process DirectRunner's relayed worker logs to warnings and beam_seg's own lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "beam_seg" in record.getMessage()


def configure_logging() -> None:
    """INFO logging for the CLI, without the DirectRunner's per-worker chatter."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam.runners.portability.local_job_service").addFilter(_WorkerLogFilter())


def run(argv: Sequence[str] | None = None) -> int:
    """Builds and runs the job; returns the process exit code (0 ok, 2 bad arguments or input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        _help_parser().print_help()
        return 0
    configure_logging()
    try:
        pipeline, output_dir = build_pipeline(argv)
    except (ValueError, FileExistsError) as e:
        logger.error("%s", e)
        return 2
    result = pipeline.run()
    result.wait_until_finish()
    if pipeline.options.view_as(TestOptions).dry_run:
        logger.info("dry run: the %s job was built and not submitted", pipeline.options.view_as(StandardOptions).runner)
        return 0
    print(summarize(output_dir))  # CLI summary.
    return 0


def summarize(output_dir: str) -> str:
    """One line describing a finished output directory, read from its ``stats.json``."""
    with FileSystems.open(FileSystems.join(output_dir, STATS_NAME)) as f:
        stats = json.loads(f.read())
    counts = ", ".join(
        f"{split} {stats['splits'][split]['num_examples']} ({len(stats['shards'][split])} shards)" for split in SPLITS
    )
    errors = ", ".join(f"{k} {v}" for k, v in stats["errors_by_reason"].items()) or "none"
    ignored = sum(stats["ignored_files"].values())
    return (
        f"tfrecord_gen: {stats['records']} records of {stats['listed']} listed images → {output_dir}: {counts}; "
        f"{stats['errors']} errors ({errors}); {ignored} ignored files"
    )


if __name__ == "__main__":
    sys.exit(run())
