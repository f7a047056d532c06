"""Server-side state: repositories with their commits, branches and tags, and the content-addressed blob store.

Every file version, regular or LFS, is stored once under ``<root>/objects/<sha256>``; uploads in progress live
under ``<root>/incoming``. Commits are immutable and hold their full file tree. Nothing here locks: the server
holds its lock around every read and change of a :class:`Repo`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .content import DEFAULT_GITATTRIBUTES, git_blob_sha1, lfs_patterns, lfs_pointer, parse_front_matter
from .messages import HubHTTPError

REPO_TYPES: tuple[str, ...] = ("model", "dataset", "space")
SPACE_SDKS: tuple[str, ...] = ("gradio", "streamlit", "docker", "static")
PLURAL_TO_TYPE: dict[str, str] = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX: dict[str, str] = {"model": "", "dataset": "datasets/", "space": "spaces/"}
SHA40 = re.compile(r"[0-9a-f]{40}")
SHA256 = re.compile(r"[0-9a-f]{64}")


def iso(ts: float) -> str:
    """Formats a POSIX timestamp the way the Hub does (``%Y-%m-%dT%H:%M:%S.%fZ``, milliseconds)."""
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class FileEntry:
    """A file in a commit tree.

    Attributes:
        size: Size of the content in bytes.
        sha256: sha256 of the content (key of the blob store; the LFS oid for LFS files).
        git_oid: Git blob id (of the content for regular files, of the LFS pointer for LFS files).
        lfs: Whether the file is stored with git-lfs.
    """

    size: int
    sha256: str
    git_oid: str
    lfs: bool

    @property
    def pointer_size(self) -> int:
        """Size of the LFS pointer file."""
        return len(lfs_pointer(self.sha256, self.size))

    @property
    def etag(self) -> str:
        """ETag served on resolve: sha256 for LFS files, git blob id for regular files."""
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Commit:
    """An immutable commit: parents, full file tree and metadata.

    Attributes:
        sha: Commit id (40 hex digits).
        parents: Parent commit ids (none for the initial commit).
        tree: Every file of the commit by repo path.
        title: Commit summary.
        message: Commit description.
        author: Name of the user who made the commit (``system`` for the initial commit).
        timestamp: POSIX time of the commit.
    """

    sha: str
    parents: tuple[str, ...]
    tree: dict[str, FileEntry]
    title: str
    message: str
    author: str
    timestamp: float

    @property
    def date(self) -> str:
        """ISO date of the commit."""
        return iso(self.timestamp)


@dataclass
class Tag:
    """A tag pointing to a commit."""

    name: str
    target: str
    message: str | None


@dataclass
class PendingUpload:
    """Bytes received on a signed upload URL, waiting for the verify call.

    Attributes:
        path: Where the bytes are (under ``incoming``).
        sha256: sha256 of the bytes actually received.
        size: Number of bytes actually received.
    """

    path: Path
    sha256: str
    size: int


@dataclass
class Repo:
    """Server-side state of one repository.

    Attributes:
        repo_type: ``model``, ``dataset`` or ``space``.
        repo_id: ``namespace/name``.
        private: Whether only accounts that can write to the namespace can see the repo.
        sdk: SDK of a Space (``None`` for other repo types).
        created_at: POSIX time of creation.
        hardware: The hardware flavour a Gradio/Docker Space asked for (``None`` for other repos and static Spaces).
        branches: Commit id by branch name.
        tags: Tags by name.
        commits: Every commit of the repo by id.
        lfs_oids: Size of each LFS object uploaded and verified for this repo, by oid.
        pending: Uploaded LFS objects waiting for the verify call, by claimed oid.
    """

    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None
    created_at: float
    hardware: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    lfs_oids: dict[str, int] = field(default_factory=dict)
    pending: dict[str, PendingUpload] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        """Owner namespace (user or organization)."""
        return self.repo_id.split("/", 1)[0]

    @property
    def url_path(self) -> str:
        """Path of the repo's web page, without leading slash (``spaces/user/name``)."""
        return f"{URL_PREFIX[self.repo_type]}{self.repo_id}"

    def resolve(self, rev: str) -> Commit:
        """Returns the commit a revision points to.

        Args:
            rev: A branch or tag name (optionally as ``refs/heads/...`` / ``refs/tags/...``) or a full commit id.

        Returns:
            The commit.

        Raises:
            HubHTTPError: 404 ``RevisionNotFound`` for an unknown revision.
        """
        if rev.startswith("refs/heads/") and rev[len("refs/heads/") :] in self.branches:
            return self.commits[self.branches[rev[len("refs/heads/") :]]]
        if rev.startswith("refs/tags/") and rev[len("refs/tags/") :] in self.tags:
            return self.commits[self.tags[rev[len("refs/tags/") :]].target]
        if rev in self.branches:
            return self.commits[self.branches[rev]]
        if rev in self.tags:
            return self.commits[self.tags[rev].target]
        if SHA40.fullmatch(rev) and rev in self.commits:
            return self.commits[rev]
        raise HubHTTPError(404, f"Invalid rev id: {rev}", code="RevisionNotFound")


class Storage:
    """All repositories of a server and the blob store under ``root``.

    Args:
        root: Storage directory (``objects`` and ``incoming`` are created in it).

    Attributes:
        root: The storage directory.
        repos: Repositories by ``(repo_type, repo_id)``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "objects").mkdir(parents=True, exist_ok=True)
        (root / "incoming").mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}
        self._commit_counter = itertools.count()

    # ---------------------------------------------------------------- blobs

    def object_path(self, sha256: str) -> Path:
        """Returns the path of the stored blob with this sha256."""
        return self.root / "objects" / sha256

    def incoming_path(self, name: str) -> Path:
        """Returns a path for bytes being received (uploads, multipart parts)."""
        return self.root / "incoming" / name

    def store_bytes(self, data: bytes) -> str:
        """Stores a blob content-addressed by sha256 (idempotent, atomic) and returns its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.object_path(digest)
        if not target.exists():
            tmp = self.incoming_path(f"{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return digest

    # ---------------------------------------------------------------- repos and commits

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        """Returns a repository.

        Args:
            repo_type: ``model``, ``dataset`` or ``space``.
            repo_id: ``namespace/name``.

        Returns:
            The repository.

        Raises:
            HubHTTPError: 404 ``RepoNotFound`` if there is no such repository.
        """
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubHTTPError(404, "Repository not found", code="RepoNotFound")
        return repo

    def create_repo(
        self, repo_type: str, repo_id: str, *, private: bool, sdk: str | None, hardware: str | None = None
    ) -> Repo:
        """Creates a repository whose ``main`` holds the Hub's "initial commit" (its default ``.gitattributes``).

        Args:
            repo_type: ``model``, ``dataset`` or ``space``.
            repo_id: ``namespace/name`` (not checked: the caller validated it and checked it is free).
            private: Whether the repo is private.
            sdk: SDK of a Space (``None`` for other repo types).
            hardware: Hardware flavour of a Gradio/Docker Space.

        Returns:
            The new repository.
        """
        repo = Repo(repo_type, repo_id, private, sdk, time.time(), hardware=hardware)
        blob = DEFAULT_GITATTRIBUTES.encode()
        entry = FileEntry(len(blob), self.store_bytes(blob), git_blob_sha1(blob), lfs=False)
        initial = self.new_commit(repo, (), {".gitattributes": entry}, "initial commit", "", "system")
        repo.branches["main"] = initial.sha
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def new_commit(
        self,
        repo: Repo,
        parents: tuple[str, ...],
        tree: dict[str, FileEntry],
        title: str,
        message: str,
        author: str,
    ) -> Commit:
        """Adds a commit to ``repo`` (no branch is moved).

        Args:
            repo: The repository.
            parents: Parent commit ids.
            tree: The full file tree of the commit.
            title: Commit summary.
            message: Commit description.
            author: Name of the committing user.

        Returns:
            The commit, with a unique id derived from its content.
        """
        timestamp = time.time()
        tree_id = hashlib.sha1("".join(f"{p}\0{e.git_oid}\n" for p, e in sorted(tree.items())).encode()).hexdigest()
        text = (
            f"tree {tree_id}\n"
            + "".join(f"parent {p}\n" for p in parents)
            + f"author {author} {timestamp:.6f}\nnonce {next(self._commit_counter)}\n\n{title}\n\n{message}"
        )
        sha = hashlib.sha1(b"commit %d\x00" % len(text.encode()) + text.encode()).hexdigest()
        commit = Commit(sha, parents, tree, title, message, author, timestamp)
        repo.commits[sha] = commit
        return commit

    def card_data(self, commit: Commit) -> dict[str, Any] | None:
        """Returns the README front matter of a commit (``None`` without README or with invalid metadata)."""
        entry = commit.tree.get("README.md")
        if entry is None:
            return None
        try:
            return parse_front_matter(self.object_path(entry.sha256).read_text(encoding="utf-8", errors="replace"))
        except ValueError:
            return None

    def lfs_patterns(self, commit: Commit) -> list[re.Pattern[str]]:
        """Returns the LFS patterns of a commit's ``.gitattributes`` (none without one)."""
        entry = commit.tree.get(".gitattributes")
        if entry is None:
            return []
        return lfs_patterns(self.object_path(entry.sha256).read_text(errors="replace"))
