"""Immutable versions: a commit on ``main`` plus a tag and a branch named after the version.

Re-publishing identical content is a no-op; an existing version with other content is an error; an interrupted run
is completed (missing commit, branch or tag) without duplicating anything.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from beam_seg.hub.commits import TreeCommit, commit_tree, preupload_files, tree_differences
from beam_seg.hub.errors import VersionConflictError, hub_call
from beam_seg.hub.files import LocalFile
from beam_seg.hub.repos import lfs_paths, list_refs, read_head, remote_tree
from beam_seg.hub.retry import RetryPolicy, call_with_retry, status_of

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = ["VersionCommit", "check_same_content", "existing_version", "publish_version", "validate_version"]

logger = logging.getLogger(__name__)

_SHA40 = re.compile(r"[0-9a-f]{40}")


@dataclasses.dataclass(frozen=True)
class VersionCommit:
    """Result of :func:`publish_version`.

    Attributes:
        sha: The commit the version's tag and branch point to.
        reused: True if no commit was needed (the version, or ``main``, already held exactly these files).
        tree: The commit result (``None`` when the version already existed).
        commit_seconds: Time spent checking and committing.
        refs_seconds: Time spent creating and checking the tag and branch.
        lfs_paths: Paths stored with LFS (or Xet) in the version.
    """

    sha: str
    reused: bool
    tree: TreeCommit | None
    commit_seconds: float = 0.0
    refs_seconds: float = 0.0
    lfs_paths: frozenset[str] = frozenset()


def validate_version(version: str) -> str:
    """Checks that ``version`` can name both a tag and a branch; returns it.

    Raises:
        ValueError: quoting the bad value.
    """
    if (
        not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", version)
        or _SHA40.fullmatch(version)
        or version
        in (
            "main",
            "HEAD",
        )
    ):
        raise ValueError(
            f"--version {version!r} cannot name a tag and a branch: use letters, digits, '.', '_' or '-' "
            "(e.g. v20261123T010203Z), not 'main' nor a commit sha"
        )
    return version


def publish_version(
    api: HfApi,
    *,
    repo_id: str,
    version: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    branch: str = "main",
    read_ahead: bool = True,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> VersionCommit:
    """Publishes ``files`` as immutable version ``version``: exact commit on ``branch`` + tag and branch ``version``.

    Re-publishing identical content is a no-op; an existing version with other content is an error; an interrupted
    run is completed (missing commit, branch or tag) without duplicating anything. The refs, the head of ``branch``
    with its files and (``read_ahead``) the client's preupload of every file are independent reads, made
    concurrently: the commit then costs the slowest of them plus ``create_commit``'s own round trips, where in turn
    they would cost two more (bench/publish.py, ``read_ahead``).

    Args:
        api: Client (endpoint and token).
        repo_id: Model repository.
        version: The version's name (a tag and a branch; see :func:`validate_version`).
        files: Every file of the version (hashed).
        content: Gives the local path or bytes of a file.
        branch: The branch the version's commit goes to.
        read_ahead: Preupload every file while the refs and the head are read; turn it off when ``content`` is
            costly for files that turn out unchanged (e.g. it downloads them from ``gs://``).
        policy: Backoff of the calls the client does not retry.
        sleep: Injected in tests.

    Raises:
        VersionConflictError: ``version`` exists with different content, or its tag and branch disagree.
        HubError: Any other final failure.
    """
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3, thread_name_prefix="publish-version") as pool:
        refs = pool.submit(list_refs, api, repo_id=repo_id, policy=policy)
        head = pool.submit(read_head, api, repo_id=repo_id, branch=branch, policy=policy)
        prepared = (
            pool.submit(preupload_files, api, repo_id=repo_id, files=files, content=content, revision=branch)
            if read_ahead
            else None
        )
        concurrent.futures.wait([f for f in (refs, head, prepared) if f is not None])
    branches, tags = refs.result()
    existing = existing_version(repo_id=repo_id, version=version, branches=branches, tags=tags)
    if existing is not None:
        at_head = head.exception() is None and head.result().sha == existing
        tree = head.result().tree if at_head else remote_tree(api, repo_id=repo_id, revision=existing)
        check_same_content(tree, files, repo_id=repo_id, version=version, sha=existing)
        logger.info("version %s of %s already published at %s with identical content", version, repo_id, existing[:12])
        checked = time.monotonic()
        lfs = _ensure_version_refs(
            api,
            repo_id=repo_id,
            version=version,
            sha=existing,
            policy=policy,
            branch_exists=version in branches,
            tag_exists=version in tags,
        )
        return VersionCommit(existing, True, None, checked - started, time.monotonic() - checked, lfs)
    result = commit_tree(
        api,
        repo_id=repo_id,
        files=files,
        content=content,
        message=f"Publish {version}",
        description=f"beam_seg publish of version {version}",
        branch=branch,
        head=head.result(),
        prepared=prepared.result() if prepared else None,
        policy=policy,
        sleep=sleep,
    )
    committed = time.monotonic()
    lfs = _ensure_version_refs(api, repo_id=repo_id, version=version, sha=result.sha, policy=policy)
    return VersionCommit(
        result.sha, result.commits_created == 0, result, committed - started, time.monotonic() - committed, lfs
    )


def existing_version(*, repo_id: str, version: str, branches: dict[str, str], tags: dict[str, str]) -> str | None:
    """The commit ``version`` points to, or ``None`` if it is not published.

    Raises:
        VersionConflictError: if its tag and its branch point to different commits.
    """
    if version in tags and version in branches and tags[version] != branches[version]:
        raise VersionConflictError(
            f"version {version!r} of model repo {repo_id} is inconsistent: tag -> {tags[version][:12]}, "
            f"branch -> {branches[version][:12]}; fix or delete one of them, or publish under a new --version",
            repo_id=repo_id,
        )
    return tags.get(version) or branches.get(version)


def check_same_content(
    tree: Mapping[str, str],
    files: Sequence[LocalFile],
    *,
    repo_id: str,
    version: str,
    sha: str,
) -> None:
    """Raises :class:`VersionConflictError` unless the published ``tree`` of ``version`` holds exactly ``files``."""
    differences = tree_differences(tree, files)
    if differences:
        shown = ", ".join(differences[:3]) + (f" and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise VersionConflictError(
            f"version {version!r} of model repo {repo_id} already exists at {sha[:12]} with different content "
            f"({shown}); published versions are immutable: choose another --version",
            repo_id=repo_id,
        )


def _ensure_version_refs(
    api: HfApi,
    *,
    repo_id: str,
    version: str,
    sha: str,
    policy: RetryPolicy | None,
    branch_exists: bool = False,
    tag_exists: bool = False,
) -> frozenset[str]:
    """Creates the missing ``version`` branch and tag at ``sha`` (concurrently); verifies them on a conflict.

    Existing refs were already checked by the caller. A 409 means one appeared meanwhile (or a retried request
    had landed): the refs are then read back and must point at ``sha``. Returns the LFS paths at ``sha``, read in
    the same round trip.
    """
    from huggingface_hub.errors import HfHubHTTPError

    def create(kind: str) -> bool:
        """Creates one ref; returns False on a 409 (exists) so the caller verifies it."""

        def call() -> object:
            if kind == "branch":
                return api.create_branch(repo_id, branch=version, revision=sha)
            return api.create_tag(repo_id, tag=version, revision=sha, tag_message=f"beam_seg version {version}")

        try:
            call_with_retry(call, what=f"create_{kind} {version} on {repo_id}", policy=policy)
        except HfHubHTTPError as e:
            if status_of(e) != 409:
                raise
            return False
        return True

    wanted = [kind for kind, exists in (("branch", branch_exists), ("tag", tag_exists)) if not exists]
    with (
        hub_call("creating the version branch and tag of", repo_id=repo_id, endpoint=api.endpoint),
        concurrent.futures.ThreadPoolExecutor(len(wanted) + 1) as pool,
    ):
        lfs = pool.submit(lfs_paths, api, repo_id=repo_id, revision=sha)
        created = list(pool.map(create, wanted))
        stored_in_lfs = frozenset(lfs.result())
    if all(created):
        return stored_in_lfs
    branches, tags = list_refs(api, repo_id=repo_id, policy=policy)
    if branches.get(version) != sha or tags.get(version) != sha:
        raise VersionConflictError(
            f"version {version!r} of model repo {repo_id} points elsewhere (branch -> "
            f"{str(branches.get(version))[:12]}, tag -> {str(tags.get(version))[:12]}, expected {sha[:12]}); "
            "published versions are immutable: choose another --version",
            repo_id=repo_id,
        )
    return stored_in_lfs
