"""Stage 3's driver: ``python -m beam_seg.publish --model_dir DIR --model_repo user/name [--space_repo ...]``.

Publishes a training output directory to the Hugging Face Hub as an immutable version and deploys its demo Space::

    export HF_TOKEN=hf_...        # never a flag; or `hf auth login`
    python -m beam_seg.publish --model_dir DIR --model_repo user/name [--space_repo user/demo] [Beam options]

1. The driver creates the model repo (and the Space) with ``exist_ok=True`` and checks that ``--version`` is free (or
   holds exactly these files) while it builds the job, so a bad token, a missing write permission or a version
   conflict stops the run before any upload.
2. The job (:mod:`beam_seg.publish.pipeline`) uploads, commits, tags and pushes the Space.
3. ``publish_manifest.json`` records what happened (:mod:`beam_seg.publish.manifest`).

Re-running is safe: uploads already on the Hub are skipped, a commit that landed is never repeated, and re-publishing
a version with identical content is a no-op. A model below ``--min_miou`` is not pushed. ``--dry_run`` touches no
network; ``--rollback VERSION`` re-points the Space at an earlier version and uploads nothing.

The model directory must be a complete training output: without ``model_config.json`` (written last by training) or
``metrics.json`` the run is refused before any Hub call, with one line naming the file.

Exit codes: 0 pushed / dry run / rolled back, 1 failed, 2 bad input (e.g. an incomplete model directory) or no token,
3 not blessed.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from beam_seg import cli, fs
from beam_seg.hub import auth, errors, files, repos, versions
from beam_seg.publish import baseline, manifest, space
from beam_seg.publish import options as flags
from beam_seg.publish.plan import CARD_NAME, PublishPlan, check_flags, make_plan, plan_chunks

if TYPE_CHECKING:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from huggingface_hub import HfApi

    from beam_seg.publish.pipeline import CreatedRepos

__all__ = ["build_pipeline", "prepare", "run"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_BLESSED = 0, 1, cli.EXIT_USAGE, 3


def prepare(argv: Sequence[str]) -> tuple[PipelineOptions, PublishPlan]:
    """Parses and checks the flags and reads the model directory; no Hub call.

    Raises:
        cli.UsageError: an unknown flag or a bad value (one line).
        ValueError, FileNotFoundError: an unusable model directory or Space template.
    """
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import StandardOptions

    from beam_seg.publish.pipeline import PublishOptions

    started = time.time()
    argv = flags.normalize_argv(argv)
    options = cli.parse_pipeline_options(argv)
    cli.apply_local_runner_defaults(
        options, argv, running_mode=flags.LOCAL_RUNNING_MODE, num_workers=flags.LOCAL_NUM_WORKERS
    )
    opts = options.view_as(PublishOptions)
    runner = str(options.view_as(StandardOptions).runner)
    check_flags(opts, runner=runner)
    FileSystems.set_options(options)
    return options, make_plan(opts, runner=runner, started=started)


def build_pipeline(argv: Sequence[str]) -> tuple[beam.Pipeline, PublishPlan]:
    """Checks the flags, reads the model directory and returns the constructed (not yet run) pipeline.

    No network: the repositories are not created (:func:`run` creates them on the driver while it builds the same
    job), so the manifest would record no creation time.

    Raises:
        cli.UsageError, ValueError, FileNotFoundError: see :func:`prepare`.
    """
    import apache_beam as beam

    from beam_seg.publish.pipeline import PublishModel

    options, plan = prepare(argv)
    p = beam.Pipeline(options=options)
    _ = p | "PublishModel" >> PublishModel(plan)
    return p, plan


def _dry_run(plan: PublishPlan) -> int:
    """Renders the previews and writes the manifest; touches no network."""
    from beam_seg.publish.pipeline import warn_leftovers

    preview = fs.join(plan.output_dir, "publish_preview")
    card = next(f.data for f in plan.files if f.path_in_repo == CARD_NAME)
    doc = manifest.base_manifest(plan, "dry-run")
    doc["files"] = manifest.planned_files(plan)
    doc["totals"] = manifest.totals(doc["files"])
    doc["pipeline"]["chunks"] = len(plan_chunks(plan.files, plan.chunk_bytes))
    if plan.space_repo and plan.template is not None:
        values = space.placeholder_values(
            model_repo=plan.model_repo,
            version=plan.version,
            revision=plan.version,
            endpoint=plan.endpoint,
            extra=plan.placeholders,
        )
        rendered = space.render_template(plan.template, values)
        warn_leftovers(rendered)
        space.write_preview(rendered, fs.join(preview, "space"))
        doc["space"] = manifest.space_entry(
            plan, rendered, version=plan.version, revision=plan.version, preview_dir=fs.join(preview, "space")
        )
    fs.write_bytes(fs.join(preview, CARD_NAME), card or b"")
    for entry in doc["files"]:
        lfs = "  (LFS)" if entry["lfs_predicted"] else ""
        logger.info("dry run: would upload %-55s %12d bytes%s", entry["path"], entry["size"], lfs)
    path = manifest.finish_manifest(plan, doc)
    t = doc["totals"]
    print(  # CLI summary.
        f"publish (dry run): {plan.model_repo}@{plan.version}: would upload {t['files']} files, "
        f"{t['bytes'] / 1e6:.1f} MB ({t['lfs_files']} LFS); previews in {preview}; manifest {path}"
    )
    return EXIT_OK


def _rollback(plan: PublishPlan) -> int:
    """Re-points the Space at an already published version; no model upload, no Beam job."""
    from beam_seg.publish.pipeline import deploy_space, ensure_space

    assert plan.space_repo and plan.rollback
    api = auth.make_api(endpoint=plan.endpoint, token=auth.require_token(plan.space_repo))
    doc = manifest.base_manifest(plan, "rolled-back")
    started = time.time()
    setup = ensure_space(api, plan)
    doc["durations_s"]["create_repos"] = round(time.time() - started, 3)
    _, tags = repos.list_refs(api, repo_id=plan.model_repo, policy=plan.retry)
    sha = tags.get(plan.rollback)
    if sha is None:
        known = ", ".join(sorted(tags)[-5:]) or "none"
        raise errors.VersionNotFoundError(
            f"version {plan.rollback!r} is not a tag of model repo {plan.model_repo} (latest tags: {known}); "
            "publish it first or pick a listed version",
            repo_id=plan.model_repo,
        )
    started = time.time()
    doc["space"] = {**deploy_space(api, plan, version=plan.rollback, revision=sha), **manifest.space_setup_entry(setup)}
    doc["durations_s"]["space"] = round(time.time() - started, 3)
    base = plan.endpoint.rstrip("/")
    doc["model"].update(
        commit_sha=sha,
        commit_url=f"{base}/{plan.model_repo}/commit/{sha}",
        version_url=f"{base}/{plan.model_repo}/tree/{plan.rollback}",
        tag=plan.rollback,
    )
    path = manifest.finish_manifest(plan, doc)
    print(  # CLI summary.
        f"publish: Space {plan.space_repo} now serves {plan.model_repo}@{plan.rollback} ({sha[:12]}); manifest {path}"
    )
    return EXIT_OK


def _check_version(api: HfApi, plan: PublishPlan) -> None:
    """Raises :class:`~beam_seg.hub.errors.VersionConflictError` if ``--version`` exists with other files.

    One refs round trip when the version is new; only an existing version costs hashing the files here.
    """
    branches, tags = repos.list_refs(api, repo_id=plan.model_repo, policy=plan.retry)
    sha = versions.existing_version(repo_id=plan.model_repo, version=plan.version, branches=branches, tags=tags)
    if sha is None:
        return
    from beam_seg.publish.uploads import content_of

    staging = tempfile.mkdtemp(prefix="beam_seg-check-")
    try:
        wanted = [files.local_file(f.path_in_repo, content_of(f, staging)) for f in plan.files]
        tree = repos.remote_tree(api, repo_id=plan.model_repo, revision=sha)
        versions.check_same_content(tree, wanted, repo_id=plan.model_repo, version=plan.version, sha=sha)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare_hub(plan: PublishPlan) -> CreatedRepos:
    """The driver's Hub calls before any upload: create the repos, then check that the version can be published."""
    from beam_seg.publish.pipeline import create_repos

    api = auth.make_api(endpoint=plan.endpoint)
    created = create_repos(api, plan)
    with errors.hub_call("checking the version of", repo_id=plan.model_repo, endpoint=plan.endpoint):
        _check_version(api, plan)
    return created


def _build_job(options: PipelineOptions, plan: PublishPlan) -> beam.Pipeline:
    """The constructed job, built while a thread makes the driver's Hub calls (:func:`_prepare_hub`).

    The round trips overlap the job's construction (bench/publish.py, ``repos_overlap``); their error (401, a
    version conflict...) is raised here, before the job runs.
    """
    import apache_beam as beam

    from beam_seg.publish.pipeline import PublishModel

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="prepare-hub") as pool:
        created = pool.submit(_prepare_hub, plan)
        p = beam.Pipeline(options=options)
        _ = p | "PublishModel" >> PublishModel(plan, created.result)  # Calls it last: raises its error, if any.
    return p


def _fail(plan: PublishPlan, line: str, *, status: str = "failed") -> None:
    """Logs the one-line reason and records it in the manifest."""
    logger.error("%s", line)
    doc = manifest.base_manifest(plan, status, reason=line)
    doc["files"] = manifest.planned_files(plan)
    doc["totals"] = manifest.totals(doc["files"])
    try:
        manifest.finish_manifest(plan, doc)
    except OSError as e:  # The reason is already logged; do not hide it behind a write error.
        logger.error("could not write the manifest to %s: %s", plan.output_dir, e)


def _bless_against_baseline(plan: PublishPlan) -> PublishPlan:
    """``plan`` with its blessing decided against the published baseline (``--bless_against``), if there is one.

    Raises:
        cli.UsageError: there is a baseline but no ``--data_dir`` to evaluate both models on.
        HubError: the baseline cannot be resolved (one line).
        baseline.BaselineError: the evaluation failed.
    """
    if plan.bless_against == baseline.NONE or plan.blessing is None or not plan.blessing.blessed:
        return plan
    api = auth.make_api(endpoint=plan.endpoint)
    found = baseline.resolve_baseline(api, plan.bless_against, model_repo=plan.model_repo, policy=plan.retry)
    if found is None:
        logger.info("no published version of %s yet: no baseline to compare with", plan.model_repo)
        return plan
    if found.repo_id == plan.model_repo and found.version == plan.version:
        logger.info("%s is the version being published: no baseline comparison", found.describe())
        return plan
    if not plan.data_dir:
        raise cli.UsageError(
            f"--bless_against: {found.describe()} is published; give --data_dir (the candidate's TFRecords) to "
            "compare both on its test split, or --bless_against none"
        )
    assert plan.model_dir is not None
    result = baseline.compare(
        found,
        candidate_dir=plan.model_dir,
        data_dir=plan.data_dir,
        output_dir=plan.output_dir,
        max_regression=plan.max_regression,
    )
    verdict = ">=" if result.blessed else "<"
    reason = (
        f"{result.split}/mean_iou {result.candidate:.4f} {verdict} {found.describe()}'s {result.baseline:.4f} "
        f"- --max_regression {result.max_regression:g} (both on {plan.data_dir}, report {result.report})"
    )
    logger.info("baseline gate: %s", reason)
    blessing = dataclasses.replace(
        plan.blessing,
        blessed=result.blessed,
        reason=reason if not result.blessed else f"{plan.blessing.reason}; {reason}",
        baseline=found.describe(),
        candidate_value=result.candidate,
        baseline_value=result.baseline,
        max_regression=result.max_regression,
    )
    return dataclasses.replace(plan, blessing=blessing)


def _configure_logging(argv: Sequence[str]) -> None:
    """The stages' CLI logging, minus Beam's tracebacks of reported errors (and, without -v, one line per request)."""
    verbose, level = cli.configure_logging(argv, reported=(errors.HubError,))
    if not verbose and level is None:
        logging.getLogger("httpx2").setLevel(logging.WARNING)


def run(argv: Sequence[str] | None = None) -> int:
    """Publishes (or dry-runs / rolls back); returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if cli.wants_help(argv):
        flags.help_parser().print_help()
        return EXIT_OK
    _configure_logging(argv)
    try:
        options, plan = prepare(argv)
    except cli.UsageError as e:
        return cli.usage_exit_code(flags.PROG, e)
    except (ValueError, FileNotFoundError) as e:
        logger.error("%s", e)
        return EXIT_BAD_INPUT
    if plan.blessing is not None and not plan.blessing.blessed:
        _fail(plan, f"not blessed, nothing pushed to {plan.model_repo}: {plan.blessing.reason}", status="not-blessed")
        return EXIT_NOT_BLESSED
    if plan.dry_run:
        return _dry_run(plan)
    try:
        if plan.token_secret:
            auth.use_token_secret(plan.token_secret)
        auth.require_token(plan.model_repo)
    except errors.MissingTokenError as e:
        _fail(plan, str(e))
        return EXIT_BAD_INPUT
    if not plan.rollback:
        try:
            plan = _bless_against_baseline(plan)
        except cli.UsageError as e:
            _fail(plan, str(e))
            return EXIT_BAD_INPUT
        except (errors.HubError, baseline.BaselineError) as e:
            _fail(plan, errors.one_line(e))
            return EXIT_FAILED
        if plan.blessing is not None and not plan.blessing.blessed:
            reason = f"not blessed, nothing pushed to {plan.model_repo}: {plan.blessing.reason}"
            _fail(plan, reason, status="not-blessed")
            return EXIT_NOT_BLESSED
    try:
        if plan.rollback:
            return _rollback(plan)
        _build_job(options, plan).run().wait_until_finish()
    except Exception as e:
        logger.debug("publish failed", exc_info=True)
        _fail(plan, errors.one_line(e))
        return EXIT_FAILED
    doc = manifest.read_manifest(plan.output_dir)
    t = doc["totals"]
    space_note = f"; Space {doc['space']['repo_id']} -> {doc['model']['commit_sha'][:12]}" if doc["space"] else ""
    print(  # CLI summary.
        f"publish: {plan.model_repo}@{plan.version} = {doc['model']['commit_sha'][:12]} "
        f"({'reused' if doc['model']['reused_commit'] else 'new commit'}): {t['files_uploaded']} files / "
        f"{t['bytes_uploaded'] / 1e6:.1f} MB uploaded, {t['files_skipped']} unchanged{space_note}; "
        f"manifest {os.path.join(plan.output_dir, manifest.MANIFEST_NAME)}"
    )
    return EXIT_OK
