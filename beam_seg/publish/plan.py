"""What a publish will do, decided on the driver before any Hub call: the files, the card, the gate, the settings.

:func:`make_plan` reads the training output directory (local or ``gs://``), renders the model card and the blessing
gate, and returns a frozen :class:`PublishPlan` that the workers receive (no token in it). It refuses a directory that
is not a complete training output: without ``model_config.json`` (which training writes last) or ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import os
import re
import time
from collections.abc import Iterable
from typing import Any

from beam_seg import cli, fs
from beam_seg.formats import CHECKPOINT_DIR, CONFIG_NAME, METRICS_NAME, SAVED_MODEL_DIR
from beam_seg.hub import auth, files, retry, spaces, versions
from beam_seg.publish import baseline, model_card, space
from beam_seg.publish.options import DEFAULT_APP_DIRS, MANIFEST_NAME, SPACE_HARDWARE_AUTO

__all__ = [
    "CARD_NAME",
    "PublishPlan",
    "SourceFile",
    "default_version",
    "list_model_files",
    "make_plan",
    "plan_chunks",
]

logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
_FLAVOUR = re.compile(r"[a-z0-9][a-z0-9-]*")
# Not part of the published model: training state and this stage's own outputs.
EXCLUDED_DIRS: tuple[str, ...] = (CHECKPOINT_DIR, "publish_preview", baseline.EVALUATION_DIR)
EXCLUDED_FILES: tuple[str, ...] = (MANIFEST_NAME, CARD_NAME)


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """One file of the model directory (or the generated card) to publish.

    Attributes:
        path_in_repo: Destination path.
        uri: Where to read it (local path or ``gs://``); empty for generated files.
        size: Size in bytes.
        lfs_predicted: Whether the Hub will store it with LFS (:func:`beam_seg.hub.files.predict_lfs`).
        data: Content of a generated file.
    """

    path_in_repo: str
    uri: str
    size: int
    lfs_predicted: bool
    data: bytes | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass(frozen=True)
class PublishPlan:
    """Everything decided on the driver; shipped to the workers (no token in it)."""

    model_repo: str
    space_repo: str | None
    space_sdk: str
    space_hardware: str
    version: str
    endpoint: str
    private: bool
    output_dir: str
    model_dir: str | None
    files: tuple[SourceFile, ...]
    blessing: model_card.Blessing | None
    bless_against: str | tuple[str, str]
    max_regression: float
    data_dir: str | None
    template: dict[str, bytes] | None
    placeholders: dict[str, str]
    chunk_bytes: int
    upload_threads: int
    parallel_chunks: int
    dry_run: bool
    rollback: str | None
    runner: str
    started: float
    plan_seconds: float
    retry: retry.RetryPolicy
    token_secret: str | None = None


def plan_chunks(items: Iterable[SourceFile], chunk_bytes: int) -> list[list[SourceFile]]:
    """Groups files into chunks of at most ``chunk_bytes`` (first fit, largest first; deterministic).

    A file larger than ``chunk_bytes`` is a chunk of its own. Chunks are ordered largest first, so the longest
    uploads start first.
    """
    chunks: list[list[SourceFile]] = []
    sizes: list[int] = []
    for f in sorted(items, key=lambda f: (-f.size, f.path_in_repo)):
        for i, used in enumerate(sizes):
            if used + f.size <= chunk_bytes:
                chunks[i].append(f)
                sizes[i] += f.size
                break
        else:
            chunks.append([f])
            sizes.append(f.size)
    return [sorted(c, key=lambda f: f.path_in_repo) for c in chunks]


def default_version(now: float | None = None) -> str:
    """``v<UTC timestamp>``, e.g. ``v20261123T010203Z``."""
    moment = _dt.datetime.fromtimestamp(time.time() if now is None else now, _dt.timezone.utc)
    return "v" + moment.strftime("%Y%m%dT%H%M%SZ")


def _read_part(model_dir: str, name: str) -> dict[str, Any]:
    """One JSON file of a complete training output (``model_config.json``, ``metrics.json``).

    Raises:
        FileNotFoundError: the file does not exist: the directory is not a complete training output.
        ValueError: the file is not a JSON object.
    """
    path = fs.join(model_dir, name)
    if not fs.exists(path):
        written = f"{CONFIG_NAME} is written last" if name == CONFIG_NAME else f"{name} is written before {CONFIG_NAME}"
        raise FileNotFoundError(
            f"{path} does not exist: {model_dir} is not a complete training output ({written}); make it with "
            f"python -m beam_seg.train --data_dir DIR --output_dir {model_dir}"
        )
    try:
        value = fs.read_json(path)
    except ValueError as e:
        raise ValueError(f"{e}; is --model_dir a complete training output?") from None
    if not isinstance(value, dict):
        raise ValueError(
            f"{path} holds a JSON {type(value).__name__}, not an object; is --model_dir a training output?"
        )
    return value


def list_model_files(model_dir: str) -> list[SourceFile]:
    """Every file to publish from ``model_dir`` (local or ``gs://``), ``checkpoints/`` and our outputs excluded."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    root = model_dir.rstrip("/")
    result = FileSystems.match([FileSystems.join(root, "**")])[0]
    found = []
    for meta in result.metadata_list:
        relative = meta.path[len(root) + 1 :].replace(os.sep, "/")
        top = relative.split("/", 1)[0]
        if top in EXCLUDED_DIRS or relative in EXCLUDED_FILES or fs.is_temporary(relative):
            continue
        head = b""
        if meta.size_in_bytes:
            with FileSystems.open(meta.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                head = f.read(files.SAMPLE_BYTES)
        lfs = files.predict_lfs(relative, meta.size_in_bytes, head)
        found.append(SourceFile(relative, meta.path, meta.size_in_bytes, lfs))
    return sorted(found, key=lambda f: f.path_in_repo)


def _check_repo_id(flag: str, repo_id: str | None) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo_id is None:
        return
    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise cli.UsageError(f"{flag} {repo_id!r} is not a valid repo id: {str(e).splitlines()[0]}") from None
    if repo_id.count("/") != 1:
        raise cli.UsageError(f"{flag} {repo_id!r} must name its owner: user/name or org/name")


def check_flags(opts: Any, *, runner: str) -> None:
    """Checks the flag values and their combinations, quoting the first bad one.

    Raises:
        cli.UsageError: one line.
    """
    if not opts.model_repo:
        raise cli.UsageError("--model_repo is required (see --help)")
    _check_repo_id("--model_repo", opts.model_repo)
    _check_repo_id("--space_repo", opts.space_repo)
    if opts.rollback:
        if not opts.space_repo:
            raise cli.UsageError("--rollback re-points a Space: give --space_repo")
        if opts.version:
            raise cli.UsageError("--rollback VERSION names the version; do not also give --version")
    elif not opts.model_dir:
        raise cli.UsageError("--model_dir is required (see --help)")
    if opts.space_sdk == "static" and opts.space_hardware != SPACE_HARDWARE_AUTO:
        raise cli.UsageError(
            f"--space_hardware {opts.space_hardware} applies to Gradio Spaces; a static Space runs in the browser"
        )
    if not _FLAVOUR.fullmatch(opts.space_hardware):
        raise cli.UsageError(
            f"--space_hardware {opts.space_hardware!r} must be auto or a Hub hardware flavour such as "
            f"{spaces.CPU_BASIC} or {spaces.ZERO_GPU}"
        )
    if not 0.0 <= opts.min_miou <= 1.0:
        raise cli.UsageError(f"--min_miou {opts.min_miou} must be in [0, 1]")
    if not 0.0 <= opts.max_regression <= 1.0:
        raise cli.UsageError(f"--max_regression {opts.max_regression} must be in [0, 1]")
    if opts.chunk_size_mb <= 0:
        raise cli.UsageError(f"--chunk_size_mb {opts.chunk_size_mb} must be > 0")
    if opts.upload_threads < 1 or opts.parallel_chunks < 1:
        raise cli.UsageError(
            f"--upload_threads {opts.upload_threads} and --parallel_chunks {opts.parallel_chunks} must be >= 1"
        )
    if not cli.is_local_runner(runner) and not opts.rollback:
        if not fs.is_remote(opts.model_dir or ""):
            raise cli.UsageError(
                f"--model_dir {opts.model_dir!r} must be gs:// with --runner {runner} (workers read it)"
            )
        if opts.output_dir is None or not fs.is_remote(opts.output_dir):
            raise cli.UsageError(f"--output_dir must be gs:// with --runner {runner} (workers write the manifest)")
    try:
        versions.validate_version(opts.rollback or opts.version or "v0")
        space.parse_placeholders(opts.placeholder or [])
        baseline.parse_bless_against(opts.bless_against)
        if opts.hf_token_secret:
            auth.secret_version_name(opts.hf_token_secret)
    except ValueError as e:
        raise cli.UsageError(str(e)) from None


def make_plan(opts: Any, *, runner: str, started: float) -> PublishPlan:
    """Reads the model directory and the Space template into a plan; no Hub call.

    Args:
        opts: The job's validated options (:func:`check_flags`).
        runner: The Beam runner that will run the job.
        started: When the run started (POSIX time).

    Raises:
        ValueError: an unusable model directory or template file (quoting the path).
        FileNotFoundError: a missing model directory or Space template, or a model directory that is not a complete
            training output (no ``model_config.json``, which training writes last, or no ``metrics.json``).
    """
    version = versions.validate_version(opts.rollback or opts.version or default_version(started))
    template = space.load_template(opts.app_dir or DEFAULT_APP_DIRS[opts.space_sdk]) if opts.space_repo else None
    model_dir = opts.model_dir
    if model_dir and not fs.is_remote(model_dir):
        model_dir = os.path.abspath(model_dir)
    output_dir = opts.output_dir or (model_dir if model_dir and not fs.is_remote(model_dir) else os.getcwd())
    planned: list[SourceFile] = []
    blessing = None
    if not opts.rollback:
        assert model_dir is not None
        # model_config.json first: training writes it last, so without it nothing else in the directory counts.
        config = _read_part(model_dir, CONFIG_NAME)
        metrics = _read_part(model_dir, METRICS_NAME)
        saved_model = fs.join(model_dir, SAVED_MODEL_DIR, "saved_model.pb")
        if not fs.exists(saved_model):
            raise FileNotFoundError(f"{saved_model} does not exist; --model_dir must be a training output directory")
        blessing = model_card.evaluate_blessing(metrics, opts.min_miou)
        planned = list_model_files(model_dir)
        names = [f.path_in_repo for f in planned] + [CARD_NAME]
        card = model_card.render_model_card(
            repo_id=opts.model_repo, version=version, config=config, metrics=metrics, files=names
        ).encode("utf-8")
        planned = sorted([*planned, SourceFile(CARD_NAME, "", len(card), False, card)], key=lambda f: f.path_in_repo)
    return PublishPlan(
        model_repo=opts.model_repo,
        space_repo=opts.space_repo,
        space_sdk=opts.space_sdk,
        space_hardware=opts.space_hardware,
        version=version,
        endpoint=auth.resolve_endpoint(),
        token_secret=auth.secret_version_name(opts.hf_token_secret) if opts.hf_token_secret else None,
        private=bool(opts.private),
        output_dir=output_dir,
        model_dir=model_dir,
        files=tuple(planned),
        blessing=blessing,
        bless_against=baseline.parse_bless_against(opts.bless_against),
        max_regression=opts.max_regression,
        data_dir=opts.data_dir,
        template=template,
        placeholders=space.parse_placeholders(opts.placeholder or []),
        chunk_bytes=max(1, int(opts.chunk_size_mb * 1e6)),
        upload_threads=opts.upload_threads,
        parallel_chunks=opts.parallel_chunks,
        dry_run=bool(opts.publish_dry_run),
        rollback=opts.rollback,
        runner=runner,
        started=started,
        plan_seconds=time.time() - started,
        retry=retry.DEFAULT_RETRY,
    )
