"""Exact, idempotent commits: make a branch hold exactly a set of files, safely retried.

:func:`commit_tree` diffs the wanted files against the branch head by git blob id, sends only the changes (and
deletes files no longer wanted) and makes no commit when the head already holds exactly these files. Every commit
names its parent; after a failure the head is read back, and a commit that landed is never sent twice.

Per-commit limits (see :func:`split_operations`): the Hub documentation ("Repository limitations and
recommendations", https://huggingface.co/docs/hub/repositories-recommendations) recommends commits of fewer than
100 files for HTTP uploads, and the ``HfApi.create_commit`` docstring states a hard limit of 25k LFS files and a
1 GB payload of regular (inline, base64-encoded) files per commit.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from beam_seg.hub.errors import ConcurrentUpdateError, hub_call
from beam_seg.hub.files import LFS_MIN_BYTES, LocalFile
from beam_seg.hub.lfs import hashed_addition
from beam_seg.hub.repos import BranchHead, list_refs, read_head, remote_tree
from beam_seg.hub.retry import DEFAULT_RETRY, RetryPolicy, retry_delay, short_reason, status_of

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "KEEP_PATHS",
    "MAX_FILES_PER_COMMIT",
    "MAX_INLINE_BYTES_PER_COMMIT",
    "FileOperation",
    "TreeCommit",
    "commit_tree",
    "preupload_files",
    "split_operations",
    "tree_differences",
]

logger = logging.getLogger(__name__)

# https://huggingface.co/docs/hub/repositories-recommendations: "Commit size <100 files" (HTTP uploads).
MAX_FILES_PER_COMMIT = 100
# HfApi.create_commit docstring: "limited to 25k LFS files and a 1GB payload for regular files".
MAX_INLINE_BYTES_PER_COMMIT = 1_000_000_000
# Paths every Hub repo starts with; never deleted by an exact commit.
KEEP_PATHS: tuple[str, ...] = (".gitattributes",)


def preupload_files(
    api: HfApi,
    *,
    repo_id: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    repo_type: str = "model",
    revision: str = "main",
) -> dict[str, Any]:
    """``HfApi.preupload_lfs_files`` of ``files``, returning the prepared ``CommitOperationAdd`` s by path.

    Asks the Hub how it stores each file (LFS or inline) and uploads the LFS content it lacks (none, after
    :func:`beam_seg.hub.lfs.upload_lfs_files`): a ``create_commit`` of the result repeats neither call (the client's
    documented two-step upload).
    """
    additions = {f.path_in_repo: hashed_addition(f, content(f)) for f in files}
    with hub_call("uploading files to", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        api.preupload_lfs_files(
            repo_id, additions=list(additions.values()), repo_type=repo_type, revision=revision, free_memory=False
        )
    return additions


def _differs(remote_id: str | None, f: LocalFile) -> bool:
    """Whether the Hub's blob ``remote_id`` is not ``f``'s content (stored with LFS or inline)."""
    return remote_id not in f.blob_ids


def tree_differences(
    remote: Mapping[str, str], files: Sequence[LocalFile], keep: Sequence[str] = KEEP_PATHS
) -> list[str]:
    """Paths where ``remote`` differs from exactly ``files`` (plus ``keep`` paths, which are ignored)."""
    wanted = {f.path_in_repo: f for f in files}
    changed = [p for p, f in wanted.items() if _differs(remote.get(p), f)]
    extra = [p for p in remote if p not in wanted and p not in keep]
    return sorted(changed + extra)


@dataclasses.dataclass(frozen=True)
class FileOperation:
    """One change of a commit: add (or replace) ``path`` with ``add``, or delete ``path`` when ``add`` is None."""

    path: str
    add: LocalFile | None

    @property
    def inline_bytes(self) -> int:
        """Upper bound of this operation's inline payload (regular files travel base64-encoded in the commit)."""
        if self.add is None or self.add.size >= LFS_MIN_BYTES:
            return 0
        return -(-self.add.size // 3) * 4


def split_operations(
    operations: Sequence[FileOperation],
    *,
    max_files: int | None = None,
    max_inline_bytes: int | None = None,
) -> list[list[FileOperation]]:
    """Packs operations, in order, into as few commits as the per-commit limits allow.

    A commit is closed when the next operation would exceed ``max_files`` operations or ``max_inline_bytes`` of
    inline payload (files under 10 MiB may be stored inline, counted base64-encoded). Since a regular file is under
    10 MiB, the file count is the binding limit in practice, and then this greedy packing is optimal:
    ``ceil(n / max_files)`` commits. The limits default to :data:`MAX_FILES_PER_COMMIT` and
    :data:`MAX_INLINE_BYTES_PER_COMMIT` (read at call time).
    """
    max_files = MAX_FILES_PER_COMMIT if max_files is None else max_files
    max_inline_bytes = MAX_INLINE_BYTES_PER_COMMIT if max_inline_bytes is None else max_inline_bytes
    if max_files < 1:
        raise ValueError(f"max_files must be >= 1, got {max_files}")
    batches: list[list[FileOperation]] = []
    current: list[FileOperation] = []
    inline = 0
    for op in operations:
        if current and (len(current) + 1 > max_files or inline + op.inline_bytes > max_inline_bytes):
            batches.append(current)
            current, inline = [], 0
        current.append(op)
        inline += op.inline_bytes
    if current:
        batches.append(current)
    return batches


@dataclasses.dataclass(frozen=True)
class TreeCommit:
    """Result of :func:`commit_tree`.

    Attributes:
        sha: Commit whose tree holds exactly the wanted files (new, or the reused branch head).
        commits_created: New commits (0 when the branch already held these files).
        changed: Paths added or modified.
        unchanged: Paths already identical on the branch.
        deleted: Paths removed because they are no longer wanted.
    """

    sha: str
    commits_created: int
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]
    deleted: tuple[str, ...]


_Tree = Mapping[str, "str | LocalFile"]  # path -> blob id already on the Hub, or the file we are adding


def _apply(tree: _Tree, batch: Sequence[FileOperation]) -> dict[str, str | LocalFile]:
    out = dict(tree)
    for op in batch:
        if op.add is None:
            out.pop(op.path, None)
        else:
            out[op.path] = op.add
    return out


def _matches(remote: Mapping[str, str], expected: _Tree) -> bool:
    if remote.keys() != expected.keys():
        return False
    return all(
        not _differs(remote[p], want) if isinstance(want, LocalFile) else remote[p] == want
        for p, want in expected.items()
    )


def commit_tree(
    api: HfApi,
    *,
    repo_id: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    message: str,
    description: str = "",
    repo_type: str = "model",
    branch: str = "main",
    keep: Sequence[str] = KEEP_PATHS,
    head: BranchHead | None = None,
    prepared: Mapping[str, Any] | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TreeCommit:
    """Makes ``branch`` hold exactly ``files`` (plus ``keep``), idempotently and safely retried.

    Only changed files are sent (LFS objects already on the server are skipped by the client's batch call), files
    no longer wanted are deleted, and nothing is committed if the head already matches. Each commit names its
    parent; after a failed attempt the head is read back and a commit that landed is never sent twice.

    Args:
        api: Client.
        repo_id: Repository.
        files: The complete wanted content.
        content: Gives the local path or bytes of a file to upload (called only for changed files).
        message: Commit title (``" (i/n)"`` is appended when the change is split).
        description: Commit description.
        repo_type: ``model`` or ``space``.
        branch: Target branch.
        keep: Paths never deleted.
        head: The branch head and its files if the caller just read them (:func:`read_head`; saves a round trip);
            the commit names it as parent, so a head that moved since makes the commit fail rather than write on
            top of unseen changes.
        prepared: ``CommitOperationAdd`` s by path from :func:`preupload_files` (read ahead by the caller): the
            first attempt of each commit uses them, which spares ``create_commit`` its preupload and LFS batch
            round trips; retries build fresh ones.
        policy: Backoff of the commit and ref calls.
        sleep: Injected in tests.

    Raises:
        HubError: On a final failure (one line, names the repo), including :class:`ConcurrentUpdateError`.
    """
    if head is None:
        head = read_head(api, repo_id=repo_id, repo_type=repo_type, branch=branch, policy=policy)
    sha, remote = head.sha, head.tree
    wanted = {f.path_in_repo: f for f in files}
    changed = sorted(p for p, f in wanted.items() if _differs(remote.get(p), f))
    deleted = sorted(p for p in remote if p not in wanted and p not in keep)
    unchanged = sorted(set(wanted) - set(changed))
    operations = [FileOperation(p, None) for p in deleted] + [FileOperation(p, wanted[p]) for p in changed]
    batches = split_operations(operations)
    tree: dict[str, str | LocalFile] = dict(remote)
    for index, batch in enumerate(batches, start=1):
        title = message if len(batches) == 1 else f"{message} ({index}/{len(batches)})"
        expected = _apply(tree, batch)
        sha = _commit_batch(
            api,
            repo_id=repo_id,
            repo_type=repo_type,
            branch=branch,
            parent=sha,
            batch=batch,
            expected=expected,
            title=title,
            description=description,
            content=content,
            prepared=prepared or {},
            policy=policy or DEFAULT_RETRY,
            sleep=sleep,
        )
        tree = expected
    if batches:
        logger.info(
            "%s repo %s: %d commit(s) on %s -> %s (%d changed, %d deleted, %d unchanged)",
            repo_type,
            repo_id,
            len(batches),
            branch,
            sha[:12],
            len(changed),
            len(deleted),
            len(unchanged),
        )
    else:
        logger.info(
            "%s repo %s: %s already holds these %d files at %s; no new commit",
            repo_type,
            repo_id,
            branch,
            len(wanted),
            sha[:12],
        )
    return TreeCommit(sha, len(batches), tuple(changed), tuple(unchanged), tuple(deleted))


def _commit_batch(
    api: HfApi,
    *,
    repo_id: str,
    repo_type: str,
    branch: str,
    parent: str,
    batch: Sequence[FileOperation],
    expected: _Tree,
    title: str,
    description: str,
    content: Callable[[LocalFile], str | bytes],
    prepared: Mapping[str, Any],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
) -> str:
    """One commit with ``parent_commit``; on failure, checks whether it landed before retrying."""
    from huggingface_hub import CommitOperationDelete

    attempt = 0
    with hub_call("committing to", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        while True:
            attempt += 1
            operations: list[Any] = []  # Fresh ones after a failure: the client mutates what it was given.
            for op in batch:
                if op.add is None:
                    operations.append(CommitOperationDelete(op.path))
                elif attempt == 1 and op.path in prepared:
                    operations.append(prepared[op.path])
                else:
                    operations.append(hashed_addition(op.add, content(op.add)))
            try:
                info = api.create_commit(
                    repo_id,
                    operations,
                    commit_message=title,
                    commit_description=description,
                    repo_type=repo_type,
                    revision=branch,
                    parent_commit=parent,
                )
                return info.oid
            except Exception as exc:
                if retry_delay(exc, 1, policy) is None and status_of(exc) != 412:
                    raise  # Final (401, 403, 404, bad request...): translated by hub_call.
                landed = _landed(
                    api,
                    repo_id=repo_id,
                    repo_type=repo_type,
                    branch=branch,
                    parent=parent,
                    expected=expected,
                    policy=policy,
                )
                if landed is not None:
                    logger.warning(
                        "commit to %s %s failed (%s) but it landed as %s; not sending it again",
                        repo_type,
                        repo_id,
                        short_reason(exc),
                        landed[:12],
                    )
                    return landed
                delay = retry_delay(exc, attempt, policy)
                if delay is None:
                    raise
                logger.warning(
                    "commit to %s %s failed (%s); retrying in %.1fs (attempt %d of %d)",
                    repo_type,
                    repo_id,
                    short_reason(exc),
                    delay,
                    attempt + 1,
                    policy.max_attempts,
                )
                sleep(delay)


def _landed(
    api: HfApi,
    *,
    repo_id: str,
    repo_type: str,
    branch: str,
    parent: str,
    expected: _Tree,
    policy: RetryPolicy,
) -> str | None:
    """The new head if our commit landed; ``None`` if the head is still ``parent``; raises if someone else moved it."""
    branches, _ = list_refs(api, repo_id=repo_id, repo_type=repo_type, policy=policy)
    head = branches.get(branch)
    if head == parent:
        return None
    if head is not None and _matches(remote_tree(api, repo_id=repo_id, repo_type=repo_type, revision=head), expected):
        return head
    raise ConcurrentUpdateError(
        f"branch {branch!r} of {repo_type} repo {repo_id} moved from {parent[:12]} to {str(head)[:12]} while we were "
        "committing; another writer is active; re-run when it is done",
        repo_id=repo_id,
    )
