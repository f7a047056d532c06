"""Stage 3 as one Beam transform: chunks of files → parallel uploads → one exact commit → version refs → Space.

``PublishModel`` reads like the job: ``GroupIntoChunks`` (the files, about ``--chunk_size_mb`` each) →
``UploadChunks`` (hash and send LFS content, :mod:`beam_seg.publish.uploads`) → ``CollectUploads`` →
``CommitVersion`` (one commit on ``main`` with every file and the card, then a tag and a branch named after the
version) → ``PushSpace`` (the rendered template, for that commit) → ``WriteManifest``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_seg import cli, fs
from beam_seg.hub import repos, spaces, versions
from beam_seg.publish import manifest, space
from beam_seg.publish import options as flags
from beam_seg.publish.plan import PublishPlan, SourceFile, plan_chunks
from beam_seg.publish.uploads import ChunkResult, UploadChunksFn, content_of, worker_api

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "CreatedRepos",
    "GroupIntoChunks",
    "PublishModel",
    "PublishOptions",
    "create_repos",
    "deploy_space",
    "warn_leftovers",
]

logger = logging.getLogger(__name__)


class PublishOptions(PipelineOptions):
    """The job's flags (:mod:`beam_seg.publish.options`), registered with Beam and read with ``view_as``."""

    @classmethod
    def _add_argparse_args(cls, parser: argparse.ArgumentParser) -> None:
        flags.add_flags(parser)


@dataclasses.dataclass(frozen=True)
class CreatedRepos:
    """The repositories the driver created (or found) before launching the job.

    Attributes:
        urls: ``{"model": url}``, plus ``"space"`` when a Space is deployed.
        seconds: Time the creation took.
        space: How the Space was set up (SDK, hardware), when one is deployed.
    """

    urls: dict[str, str]
    seconds: float
    space: spaces.SpaceSetup | None = None


def create_repos(api: HfApi, plan: PublishPlan) -> CreatedRepos:
    """Creates the model repo and the Space (concurrently) unless they exist; any other error is raised.

    The Space gets its SDK and hardware here (:func:`beam_seg.hub.spaces.ensure_space`), so a Space the account may
    not host stops the run before any model file is uploaded.

    Raises:
        HubError: One line naming the repo (bad token, no write access, network...);
            :class:`~beam_seg.hub.spaces.SpaceHostingError` when every hardware tried was refused with a 402.
    """
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="create-repo") as pool:
        model = pool.submit(
            repos.ensure_repo, api, repo_id=plan.model_repo, repo_type="model", private=plan.private, policy=plan.retry
        )
        setup = pool.submit(ensure_space, api, plan) if plan.space_repo else None
        urls = {"model": model.result()}
        space_setup = setup.result() if setup is not None else None
    if space_setup is not None:
        urls["space"] = space_setup.url
    return CreatedRepos(urls, time.time() - started, space_setup)


def ensure_space(api: HfApi, plan: PublishPlan) -> spaces.SpaceSetup:
    """Creates (or finds) ``plan``'s Space with its SDK, on hardware the account may use."""
    assert plan.space_repo
    return spaces.ensure_space(
        api,
        repo_id=plan.space_repo,
        sdk=plan.space_sdk,
        hardware=plan.space_hardware,
        private=plan.private,
        policy=plan.retry,
    )


class _CommitVersionFn(beam.DoFn):
    """Fan-in: one exact commit of every file on ``main``, then the version's tag and branch."""

    def __init__(self, plan: PublishPlan) -> None:
        self._plan = plan

    def setup(self) -> None:
        self._api = worker_api(self._plan)
        self._staging = tempfile.mkdtemp(prefix="beam_seg-commit-")

    def teardown(self) -> None:
        shutil.rmtree(self._staging, ignore_errors=True)

    def process(self, group: tuple[None, Iterable[ChunkResult]]) -> Iterator[dict[str, Any]]:
        plan = self._plan
        chunks = list(group[1])
        files = sorted((f for c in chunks for f in c.files), key=lambda f: f.path_in_repo)
        result = versions.publish_version(
            self._api,
            repo_id=plan.model_repo,
            version=plan.version,
            files=files,
            content=lambda f: content_of(f, self._staging),
            read_ahead=not fs.is_remote(plan.model_dir or ""),
            policy=plan.retry,
        )
        logger.info(
            "model %s version %s -> %s (%s)",
            plan.model_repo,
            plan.version,
            result.sha[:12],
            "reused" if result.reused else "new commit",
        )
        yield manifest.pushed_manifest(plan, files, result, chunks=chunks)


class _PushSpaceFn(beam.DoFn):
    """Renders the Space template for the pushed commit and pushes it in one commit."""

    def __init__(self, plan: PublishPlan) -> None:
        self._plan = plan

    def setup(self) -> None:
        self._api = worker_api(self._plan)

    def process(self, doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
        started = time.time()
        entry = deploy_space(self._api, self._plan, version=self._plan.version, revision=doc["model"]["commit_sha"])
        yield {**doc, "space": entry, "durations_s": {**doc["durations_s"], "space": round(time.time() - started, 3)}}


class _WriteManifestFn(beam.DoFn):
    """Writes ``publish_manifest.json`` once everything is pushed, with the repositories the driver created."""

    def __init__(self, plan: PublishPlan, repos: CreatedRepos | None) -> None:
        self._plan = plan
        self._repos = repos

    def process(self, doc: dict[str, Any]) -> Iterator[str]:
        if self._repos is not None:  # The URLs as the Hub returned them (canonical names).
            urls = self._repos.urls
            doc = {
                **doc,
                "model": {**doc["model"], "url": urls["model"]},
                "durations_s": {**doc["durations_s"], "create_repos": round(self._repos.seconds, 3)},
            }
            if doc.get("space") and "space" in urls:
                doc["space"] = {**doc["space"], **manifest.space_setup_entry(self._repos.space), "url": urls["space"]}
        yield manifest.finish_manifest(self._plan, doc)


class _Gather(beam.PTransform):
    """All elements as one ``(None, elements)`` group.

    One GroupByKey, lighter than ``ToList``'s global combine (bench/publish.py, ``gather_by_key``).
    """

    def expand(self, pcoll: beam.PCollection) -> beam.PCollection:
        return pcoll | "KeyAll" >> beam.Map(lambda element: (None, element)) | "Group" >> beam.GroupByKey()


class GroupIntoChunks(beam.PTransform):
    """PBegin → ``(index, [files])`` chunks of about ``chunk_bytes``.

    The chunks are planned from the listing made on the driver (the plan needs it anyway for the model card and
    the gate), which spares the job a global gather of the file list; they come largest first (bench/publish.py,
    ``largest_first``). A reshuffle spreads them over the workers; ``spread=False`` skips it for a single local
    worker, which runs a bundle's chunks concurrently anyway (``no_reshuffle_local``).
    """

    def __init__(self, files: Sequence[SourceFile], chunk_bytes: int, *, spread: bool = True) -> None:
        super().__init__()
        self._chunks = list(enumerate(plan_chunks(files, chunk_bytes)))
        self._spread = spread

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        """PBegin → ``(index, [SourceFile])`` chunks."""
        chunks = (
            pbegin | "Start" >> beam.Impulse() | "PlanChunks" >> beam.FlatMap(lambda _, chunks: chunks, self._chunks)
        )
        return chunks | "Spread" >> beam.Reshuffle() if self._spread and len(self._chunks) > 1 else chunks


class PublishModel(beam.PTransform):
    """The whole job as one transform: PBegin → the manifest path, once the version and the Space are pushed.

    The repositories must exist: :func:`beam_seg.publish.job.run` creates them on the driver (:func:`create_repos`)
    while it builds the job. ``repos`` gives their URLs and creation time to the manifest; it is called last, once
    the rest of the job is built, so that the round trips overlap the construction (``repos_overlap``). The default
    records no creation (a job built offline, :func:`beam_seg.publish.job.build_pipeline`).
    """

    def __init__(self, plan: PublishPlan, repos: Callable[[], CreatedRepos | None] = lambda: None) -> None:
        super().__init__()
        self._plan = plan
        self._repos = repos

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        """PBegin → the manifest's path."""
        plan = self._plan
        spread = not cli.is_local_runner(plan.runner)
        published = (
            pbegin
            | "GroupIntoChunks" >> GroupIntoChunks(plan.files, plan.chunk_bytes, spread=spread)
            | "UploadChunks" >> beam.ParDo(UploadChunksFn(plan))
            | "CollectUploads" >> _Gather()
            | "CommitVersion" >> beam.ParDo(_CommitVersionFn(plan))
        )
        if plan.space_repo:
            published = published | "PushSpace" >> beam.ParDo(_PushSpaceFn(plan))
        return published | "WriteManifest" >> beam.ParDo(_WriteManifestFn(plan, self._repos()))


def deploy_space(api: Any, plan: PublishPlan, *, version: str, revision: str) -> dict[str, Any]:
    """Renders the template for ``version``/``revision`` and makes the Space's ``main`` hold exactly that."""
    assert plan.space_repo and plan.template is not None
    values = space.placeholder_values(
        model_repo=plan.model_repo, version=version, revision=revision, endpoint=plan.endpoint, extra=plan.placeholders
    )
    files = space.render_template(plan.template, values)
    warn_leftovers(files)
    result = space.push_space(
        api,
        repo_id=plan.space_repo,
        rendered=files,
        policy=plan.retry,
        message=f"Serve {plan.model_repo} {version} ({revision[:12]})",
    )
    if plan.private:
        logger.warning(
            "the Space %s serves a private model: add a read token as its HF_TOKEN secret in the Space "
            "settings, or it cannot download %s",
            plan.space_repo,
            plan.model_repo,
        )
    return manifest.space_entry(
        plan, files, version=version, revision=revision, sha=result.sha, commits_created=result.commits_created
    )


def warn_leftovers(files: dict[str, bytes]) -> None:
    """Logs template placeholders left unrendered (a typo in the template)."""
    for path, names in space.leftover_placeholders(files).items():
        logger.warning("Space file %s still holds unknown placeholders %s (not replaced)", path, names)
