"""Repositories and refs: create a repo, list its branches and tags, read a branch head and its files."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from beam_seg.hub.errors import NotFoundError, hub_call
from beam_seg.hub.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = ["BranchHead", "ensure_repo", "lfs_paths", "list_refs", "read_head", "remote_tree"]


def ensure_repo(
    api: HfApi, *, repo_id: str, repo_type: str = "model", private: bool = False, policy: RetryPolicy | None = None
) -> str:
    """Creates the repository if needed (``exist_ok=True``; any other error is raised) and returns its URL."""
    kwargs: dict[str, Any] = {"space_sdk": "gradio"} if repo_type == "space" else {}
    with hub_call("creating", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        url = call_with_retry(
            lambda: api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, **kwargs),
            what=f"create_repo {repo_type} {repo_id}",
            policy=policy,
        )
    return str(url)


def list_refs(
    api: HfApi, *, repo_id: str, repo_type: str = "model", policy: RetryPolicy | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """``(branches, tags)`` of a repository, each ``name -> commit sha``."""
    with hub_call("reading the refs of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        refs = call_with_retry(
            lambda: api.list_repo_refs(repo_id, repo_type=repo_type),
            what=f"list_repo_refs {repo_type} {repo_id}",
            policy=policy,
        )
    return ({r.name: r.target_commit for r in refs.branches}, {r.name: r.target_commit for r in refs.tags})


def remote_tree(api: HfApi, *, repo_id: str, repo_type: str = "model", revision: str) -> dict[str, str]:
    """Every file at ``revision`` as ``path -> git blob id`` (the listing is retried by the client)."""
    from huggingface_hub.hf_api import RepoFile

    with hub_call("listing the files of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        entries = api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        return {e.path: e.blob_id for e in entries if isinstance(e, RepoFile)}


def lfs_paths(api: HfApi, *, repo_id: str, repo_type: str = "model", revision: str) -> set[str]:
    """Paths stored with LFS (or Xet) at ``revision``."""
    from huggingface_hub.hf_api import RepoFile

    with hub_call("listing the files of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        entries = api.list_repo_tree(repo_id, repo_type=repo_type, revision=revision, recursive=True)
        return {e.path for e in entries if isinstance(e, RepoFile) and (e.lfs is not None or e.xet_hash)}


@dataclasses.dataclass(frozen=True)
class BranchHead:
    """A branch's head commit and the files of exactly that commit.

    Attributes:
        sha: The head commit.
        tree: Every file at ``sha`` as ``path -> git blob id``.
    """

    sha: str
    tree: Mapping[str, str]


def read_head(
    api: HfApi, *, repo_id: str, repo_type: str = "model", branch: str = "main", policy: RetryPolicy | None = None
) -> BranchHead:
    """The head of ``branch`` and its files, in one call.

    ``repo_info`` with ``files_metadata`` gives one consistent snapshot, where reading the refs then the tree takes
    two round trips.
    """
    from huggingface_hub.errors import RevisionNotFoundError

    with hub_call("reading the head of", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        try:
            info = call_with_retry(
                lambda: api.repo_info(repo_id, repo_type=repo_type, revision=branch, files_metadata=True),
                what=f"repo_info {repo_type} {repo_id}@{branch}",
                policy=policy,
            )
        except RevisionNotFoundError:
            raise NotFoundError(
                f"branch {branch!r} not found in {repo_type} repo {repo_id}", repo_id=repo_id, status=404
            ) from None
    return BranchHead(str(info.sha), {s.rfilename: str(s.blob_id) for s in info.siblings or ()})
