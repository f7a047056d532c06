"""The commit route: ``POST /api/{type}/{repo}/commit/{branch}`` with an NDJSON payload.

Lines: a ``header`` (``summary``, ``description``, optional ``parentCommit``), then operations: ``file`` (base64
content of a regular file), ``lfsFile`` (oid and size of an LFS object uploaded and verified for this repo),
``deletedFile`` and ``deletedFolder``. A commit is atomic: the first invalid operation fails it with no change.
A ``parentCommit`` that is not the head of the branch is a 412; ``create_pr=1`` is a 400 (no pull requests here).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Any

from .accounts import writable_repo
from .content import git_blob_sha1, lfs_pointer, looks_binary
from .messages import HubHTTPError, Request, Response, truthy
from .storage import SHA256, FileEntry, Repo

if TYPE_CHECKING:
    from .server import HubServer

_LOG = logging.getLogger(__name__)

Operation = tuple[str, str, Any]
"""A validated operation: ``(kind, path, argument)`` with kind ``add`` (argument: the stored :class:`FileEntry`),
``lfs`` (``(oid, size)``), ``deletedFile`` or ``deletedFolder`` (``None``)."""


def commit(hub: HubServer, req: Request, repo_type: str, repo_id: str, rev: str) -> Response:
    """Creates a commit on branch ``rev`` and answers its id and URL."""
    with hub.lock:
        writable_repo(hub.storage, req.user, repo_type, repo_id)  # auth first, before reading a possibly large body
    if truthy(req.param("create_pr")):
        raise HubHTTPError(400, "create_pr (pull requests) is not supported by the HubServer test double")
    lines = [line for line in req.body.read().splitlines() if line.strip()]
    try:
        items = [json.loads(line) for line in lines]
    except ValueError as exc:
        raise HubHTTPError(400, f"Invalid NDJSON commit payload: {exc}") from exc
    if not items or items[0].get("key") != "header":
        raise HubHTTPError(400, "The first line of the commit payload must be the header")
    header = items[0].get("value") or {}
    title = str(header.get("summary") or "").strip()
    if not title:
        raise HubHTTPError(400, "Commit summary (message) is required")
    operations = [_prepare_operation(hub, item) for item in items[1:]]
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        if rev not in repo.branches:
            raise HubHTTPError(
                404, f"Invalid rev id: {rev} (commits must target an existing branch)", code="RevisionNotFound"
            )
        head = repo.commits[repo.branches[rev]]
        parent = header.get("parentCommit")
        if parent and not head.sha.startswith(str(parent).lower()):
            raise HubHTTPError(412, "A commit has happened since. Please refresh and try again.")
        tree = _apply_operations(repo, dict(head.tree), operations)
        author = req.user.name if req.user else "?"
        new = hub.storage.new_commit(repo, (head.sha,), tree, title, str(header.get("description") or ""), author)
        repo.branches[rev] = new.sha
        hub.stats.add_commit()
        url = f"{hub.url}/{repo.url_path}/commit/{new.sha}"
    _LOG.debug("hub-server commit %s on %s@%s (%d ops)", new.sha[:8], repo.repo_id, rev, len(operations))
    return Response.json(
        {"success": True, "commitOid": new.sha, "commitUrl": url, "hookOutput": "", "pullRequestUrl": None}
    )


def _prepare_operation(hub: HubServer, item: dict[str, Any]) -> Operation:
    """Validates one NDJSON operation and pre-stores regular file content (outside the lock)."""
    key, value = item.get("key"), item.get("value") or {}
    path = value.get("path")
    if not isinstance(path, str):
        raise HubHTTPError(400, f"Operation {key!r} has no path")
    if key == "file":
        path = _validate_path(path)
        if value.get("encoding", "base64") != "base64":
            raise HubHTTPError(400, f"Unsupported encoding for {path}: {value.get('encoding')}")
        try:
            data = base64.b64decode(value.get("content") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HubHTTPError(400, f"Invalid base64 content for {path}") from exc
        if len(data) >= hub.lfs_threshold_bytes:
            raise HubHTTPError(
                400,
                f"Your push was rejected because it contains files larger than "
                f"{hub.lfs_threshold_bytes // (1024 * 1024)} MiB ({path}). Please use git-lfs.",
            )
        if data and looks_binary(data[:512]):
            raise HubHTTPError(
                400, f"Your push was rejected because it contains binary files ({path}). Please use git-lfs."
            )
        entry = FileEntry(len(data), hub.storage.store_bytes(data), git_blob_sha1(data), lfs=False)
        return ("add", path, entry)
    if key == "lfsFile":
        path = _validate_path(path)
        oid, size = value.get("oid"), value.get("size")
        if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str) or not SHA256.fullmatch(oid):
            raise HubHTTPError(400, f"Invalid LFS oid for {path}: {oid!r}")
        return ("lfs", path, (oid, size))
    if key in ("deletedFile", "deletedFolder"):
        return (key, path.strip("/"), None)
    raise HubHTTPError(400, f"Unsupported commit operation: {key!r}")


def _validate_path(path: str) -> str:
    """Validates a file path inside a repo, as the Hub does for commit operations."""
    parts = path.split("/")
    if not path or path.startswith("/") or path.endswith("/") or any(p in ("", ".", "..") for p in parts):
        raise HubHTTPError(400, f"Invalid path in repo: '{path}'")
    if any(p in (".git", ".cache") for p in parts):
        raise HubHTTPError(400, f"Invalid path in repo (forbidden folder): '{path}'")
    return path


def _apply_operations(repo: Repo, tree: dict[str, FileEntry], operations: list[Operation]) -> dict[str, FileEntry]:
    """Applies operations to a copy of the tree; raises (no state change) on the first invalid one."""
    for kind, path, arg in operations:
        if kind == "add":
            tree[path] = arg
        elif kind == "lfs":
            oid, size = arg
            if oid not in repo.lfs_oids:
                raise HubHTTPError(422, f"LFS object {oid} for '{path}' was not uploaded and verified for this repo")
            if size is not None and size != repo.lfs_oids[oid]:
                raise HubHTTPError(422, f"LFS object {oid} for '{path}' has size {repo.lfs_oids[oid]}, not {size}")
            real = repo.lfs_oids[oid]
            tree[path] = FileEntry(real, oid, git_blob_sha1(lfs_pointer(oid, real)), lfs=True)
        elif kind == "deletedFile":
            if path not in tree:
                raise HubHTTPError(404, f"A file with this name doesn't exist: {path}", code="EntryNotFound")
            del tree[path]
        else:  # deletedFolder
            doomed = [p for p in tree if p.startswith(path + "/")] if path else list(tree)
            if not doomed:
                raise HubHTTPError(404, f"A folder with this name doesn't exist: {path}", code="EntryNotFound")
            for p in doomed:
                del tree[p]
    folders = {p.rsplit("/", 1)[0] for p in tree if "/" in p}
    folders |= {f.rsplit("/", i)[0] for f in list(folders) for i in range(1, f.count("/") + 1)}
    clashes = sorted(folders & tree.keys())
    if clashes:
        raise HubHTTPError(400, f"Path conflict: '{clashes[0]}' would be both a file and a folder")
    return tree
