"""The route table, dispatch, and the routes that create, describe, list and download (uploads: :mod:`.lfs`,
:mod:`.commits`).

A route handler is a function ``(hub, request, **path_params) -> Response`` that raises
:class:`~.messages.HubHTTPError` for error answers. Path parameters are URL-decoded; a route on a repository
gets ``repo_type`` (``model`` | ``dataset`` | ``space``) and ``repo_id`` (``namespace/name``) in place of the
URL's pieces.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import commits, lfs, spaces
from .accounts import readable_repo, writable_repo
from .content import parse_front_matter
from .messages import HubHTTPError, Request, Response, truthy
from .storage import PLURAL_TO_TYPE, REPO_TYPES, SHA40, SPACE_SDKS, Commit, Tag, iso

if TYPE_CHECKING:
    from .server import HubServer

_LOG = logging.getLogger(__name__)

_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")

Handler = Callable[..., Response]


# ---------------------------------------------------------------- POST /api/repos/create, POST /api/validate-yaml


def create_repo(hub: HubServer, req: Request) -> Response:
    """Creates a repo (409 with its ``url`` if it exists; a Space needs a valid ``sdk``; 402 for hardware the
    account's plan does not cover, see :mod:`.spaces`)."""
    user = req.user
    if user is None:
        raise HubHTTPError(401, "You must be authenticated to create a repo (missing token)")
    payload = req.json()
    repo_type = payload.get("type") or "model"
    name = payload.get("name") or ""
    namespace = payload.get("organization") or user.name
    if repo_type not in REPO_TYPES:
        raise HubHTTPError(400, f"Invalid repo type: {repo_type}")
    if not _REPO_NAME.fullmatch(name) or "--" in name or ".." in name or name.endswith((".git", ".")):
        raise HubHTTPError(400, f"Invalid repo name: '{name}'")
    if not user.can_write(namespace):
        raise HubHTTPError(403, f'You don\'t have the rights to create a {repo_type} under the namespace "{namespace}"')
    sdk = payload.get("sdk")
    if repo_type == "space" and sdk not in SPACE_SDKS:
        raise HubHTTPError(400, f"Invalid or missing sdk for a space: {sdk!r}. Expected one of {list(SPACE_SDKS)}")
    visibility = payload.get("visibility")
    private = visibility in ("private", "protected") if visibility is not None else bool(payload.get("private"))
    repo_id = f"{namespace}/{name}"
    hardware = None
    if repo_type == "space" and sdk != "static":
        hardware = payload.get("hardware") or spaces.CPU_BASIC
    with hub.lock:
        existing = hub.storage.repos.get((repo_type, repo_id))
        if existing is not None:
            url = f"{hub.url}/{existing.url_path}"
            raise HubHTTPError(409, f"You already created this {repo_type} repo", extra={"url": url})
        if hardware is not None:
            spaces.check_hardware(hub, user, sdk=sdk, hardware=hardware, repo_id=repo_id)
        repo = hub.storage.create_repo(
            repo_type, repo_id, private=private, sdk=sdk if repo_type == "space" else None, hardware=hardware
        )
        url = f"{hub.url}/{repo.url_path}"
    _LOG.debug("hub-server created %s repo %s", repo_type, repo_id)
    return Response.json({"url": url, "name": repo_id, "id": repo_id})


def validate_yaml(hub: HubServer, req: Request) -> Response:
    """Validates the YAML front matter of a README (``content``), as ``RepoCard.validate`` asks."""
    payload = req.json()
    content = payload.get("content")
    if not isinstance(content, str):
        return Response.json({"errors": [{"message": "`content` must be a string"}], "warnings": []}, status=400)
    try:
        metadata = parse_front_matter(content)
    except ValueError as exc:
        return Response.json({"errors": [{"message": str(exc)}], "warnings": []}, status=400)
    warnings = [] if metadata else [{"message": "empty or missing yaml metadata in repo card"}]
    return Response.json({"errors": [], "warnings": warnings})


# ---------------------------------------------------------------- GET /api/{type}/{repo}[/revision/{rev}]


def repo_info(hub: HubServer, req: Request, repo_type: str, repo_id: str, rev: str = "main") -> Response:
    """Describes a repo at a revision (``blobs=true``: sizes, blob ids and LFS info of the files)."""
    with hub.lock:
        repo = readable_repo(hub.storage, req.user, repo_type, repo_id)
        commit = repo.resolve(rev)
        main = repo.commits[repo.branches["main"]]
    blobs = truthy(req.param("blobs"))
    siblings = []
    for path, entry in sorted(commit.tree.items()):
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            sibling.update(size=entry.size, blobId=entry.git_oid)
            if entry.lfs:
                sibling["lfs"] = {"size": entry.size, "sha256": entry.sha256, "pointerSize": entry.pointer_size}
        siblings.append(sibling)
    card = hub.storage.card_data(commit)
    info: dict[str, Any] = {
        "_id": hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}".encode()).hexdigest()[:24],
        "id": repo.repo_id,
        "author": repo.namespace,
        "sha": commit.sha,
        "createdAt": iso(repo.created_at),
        "lastModified": main.date,
        "private": repo.private,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": list((card or {}).get("tags") or []),
        "siblings": siblings,
        "usedStorage": sum(e.size for e in commit.tree.values()),
    }
    if card is not None:
        info["cardData"] = card
    if repo.repo_type == "model" and card:
        info.update({k: card[k] for k in ("library_name", "pipeline_tag") if k in card})
    if repo.repo_type == "space":
        info.update(sdk=repo.sdk, subdomain=repo.repo_id.replace("/", "-").lower(), host=hub.url)
    return Response.json(info)


# ---------------------------------------------------------------- GET /api/{type}/{repo}/tree/{rev}


def tree(hub: HubServer, req: Request, repo_type: str, repo_id: str, rev: str) -> Response:
    """Lists the files and folders of a revision, top level or (``recursive=true``) all, in one page."""
    if truthy(req.param("expand")):
        raise HubHTTPError(400, "expand=true (last commit of each entry) is not supported by the HubServer test double")
    recursive = truthy(req.param("recursive"))
    with hub.lock:
        repo = readable_repo(hub.storage, req.user, repo_type, repo_id)
        commit = repo.resolve(rev)
        entries = [_entry_json(commit, p) for p in _paths(commit, recursive)]
    return Response.json(entries)


def _paths(commit: Commit, recursive: bool) -> list[str]:
    """Paths of the files and folders at the root (all of them if ``recursive``), sorted."""
    found: set[str] = set()
    for file_path in commit.tree:
        parts = file_path.split("/")
        depth = len(parts) if recursive else 1
        for i in range(1, depth + 1):
            found.add("/".join(parts[:i]))
    return sorted(found)


def _entry_json(commit: Commit, path: str) -> dict[str, Any]:
    entry = commit.tree.get(path)
    if entry is None:
        prefix = path + "/"
        folder = tuple(sorted((p, e.git_oid) for p, e in commit.tree.items() if p.startswith(prefix)))
        return {"type": "directory", "oid": hashlib.sha1(repr(folder).encode()).hexdigest(), "size": 0, "path": path}
    data: dict[str, Any] = {"type": "file", "oid": entry.git_oid, "size": entry.size, "path": path}
    if entry.lfs:
        data["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": entry.pointer_size}
    return data


# ---------------------------------------------------------------- refs: GET refs, POST branch/{branch}, POST tag/{rev}


def refs(hub: HubServer, req: Request, repo_type: str, repo_id: str) -> Response:
    """Lists branches and tags (``converts`` is always empty)."""
    with hub.lock:
        repo = readable_repo(hub.storage, req.user, repo_type, repo_id)
        branches = [
            {"name": b, "ref": f"refs/heads/{b}", "targetCommit": sha} for b, sha in sorted(repo.branches.items())
        ]
        tags = [
            {"name": t.name, "ref": f"refs/tags/{t.name}", "targetCommit": t.target}
            for _, t in sorted(repo.tags.items())
        ]
    return Response.json({"branches": branches, "converts": [], "tags": tags})


def create_branch(hub: HubServer, req: Request, repo_type: str, repo_id: str, branch: str) -> Response:
    """Creates a branch at ``startingPoint`` (default ``main``); 409 if it exists."""
    payload = req.json()
    if not branch or branch.startswith(("refs/", "/")) or " " in branch or SHA40.fullmatch(branch):
        raise HubHTTPError(400, f"Invalid branch name: '{branch}'")
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        if branch in repo.branches:
            raise HubHTTPError(409, f"Reference already exists: refs/heads/{branch}")
        start = repo.resolve(payload.get("startingPoint") or "main")
        repo.branches[branch] = start.sha
    return Response.json({})


def create_tag(hub: HubServer, req: Request, repo_type: str, repo_id: str, rev: str) -> Response:
    """Tags revision ``rev`` (``tag``, optional ``message``); 409 if the tag exists."""
    payload = req.json()
    tag = payload.get("tag")
    if not isinstance(tag, str) or not tag or " " in tag or tag.startswith("refs/"):
        raise HubHTTPError(400, f"Invalid tag name: {tag!r}")
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        target = repo.resolve(rev)
        if tag in repo.tags:
            raise HubHTTPError(409, f"Tag already exists: refs/tags/{tag}")
        repo.tags[tag] = Tag(tag, target.sha, payload.get("message"))
    return Response.json({})


# ---------------------------------------------------------------- PUT /api/{type}/{repo}/settings


def settings(hub: HubServer, req: Request, repo_type: str, repo_id: str) -> Response:
    """Changes the visibility of a repo (the only setting ``update_repo_settings`` sends here)."""
    payload = req.json()
    unsupported = sorted(set(payload) - {"visibility"})
    if unsupported:
        raise HubHTTPError(400, f"Unsupported settings for the HubServer test double: {unsupported}")
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        if "visibility" in payload:
            if payload["visibility"] not in ("public", "private", "protected"):
                raise HubHTTPError(400, f"Invalid visibility: {payload['visibility']!r}")
            repo.private = payload["visibility"] != "public"
    return Response.json({})


# ---------------------------------------------------------------- GET|HEAD /{prefix}{repo}/resolve/{rev}/{path}


def resolve(hub: HubServer, req: Request, repo_type: str, repo_id: str, rev: str, path: str) -> Response:
    """Serves a file at a revision, with the Hub's metadata headers and single ``Range`` requests."""
    with hub.lock:
        repo = readable_repo(hub.storage, req.user, repo_type, repo_id)
        commit = repo.resolve(rev)
        entry = commit.tree.get(path)
    base = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
    if entry is None:
        raise HubHTTPError(404, f"Entry not found: {path}", code="EntryNotFound", headers=base)
    headers = {**base, "ETag": f'"{entry.etag}"', "Content-Type": "application/octet-stream"}
    if entry.lfs:
        headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size)})
    start, length, status = 0, entry.size, 200
    range_header = req.headers.get("Range")
    if range_header:
        start, length = _parse_range(range_header, entry.size, headers)
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{entry.size}"
        status = 206
    return Response(status, headers, file=(hub.storage.object_path(entry.sha256), start, length), is_download=True)


def _parse_range(value: str, size: int, headers: dict[str, str]) -> tuple[int, int]:
    """Parses a single ``bytes=`` range into (start, length); 416 if unsatisfiable."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    error = HubHTTPError(
        416, f"Range Not Satisfiable: {value}", headers={**headers, "Content-Range": f"bytes */{size}"}
    )
    if match is None or (not match.group(1) and not match.group(2)):
        raise error
    first, last = match.groups()
    if not first:
        length = min(int(last), size)
        start = size - length
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
        length = end - start + 1
    if start >= size or length <= 0:
        raise error
    return start, length


# Browser apps (a static Space) download model files from other origins: huggingface.co answers /resolve, errors
# included, allowing the caller's Origin and exposing its headers.
_CORS_EXPOSED = (
    "X-Repo-Commit,X-Request-Id,X-Error-Code,X-Error-Message,X-Total-Count,ETag,Link,Accept-Ranges,Content-Range,"
    "X-Linked-Size,X-Linked-ETag,X-Xet-Hash"
)


def resolve_with_cors(hub: HubServer, req: Request, **params: str) -> Response:
    """:func:`resolve` with the Hub's CORS headers: the request's ``Origin`` (else ``*``) is allowed."""
    cors = {
        "Access-Control-Allow-Origin": req.headers.get("Origin") or "*",
        "Access-Control-Expose-Headers": _CORS_EXPOSED,
        "Access-Control-Max-Age": "86400",
        "Vary": "Origin",
    }
    try:
        response = resolve(hub, req, **params)
    except HubHTTPError as err:
        err.headers.update(cors)
        raise
    response.headers.update(cors)
    return response


# ---------------------------------------------------------------- route table and dispatch


@dataclass(frozen=True)
class Route:
    """A route: the methods it answers, the regex on the still-quoted path, and its handler."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler


def _route(methods: str, pattern: str, handler: Handler) -> Route:
    return Route(frozenset(methods.split()), re.compile(pattern + r"\Z"), handler)


_KIND = r"(?P<kind>models|datasets|spaces)"
_REPO = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"
_PREFIX = r"(?:(?P<kind>datasets|spaces)/)?"  # Git-side URLs: no prefix for models.
_API = rf"/api/{_KIND}/{_REPO}"

ROUTES: tuple[Route, ...] = (
    _route("POST", r"/api/repos/create", create_repo),
    _route("POST", r"/api/validate-yaml", validate_yaml),
    _route("GET", _API, repo_info),
    _route("GET", rf"{_API}/revision/(?P<rev>[^/]+)", repo_info),
    _route("GET", rf"{_API}/tree/(?P<rev>[^/]+)", tree),
    _route("GET", rf"{_API}/refs", refs),
    _route("POST", rf"{_API}/preupload/(?P<rev>[^/]+)", lfs.preupload),
    _route("POST", rf"{_API}/commit/(?P<rev>[^/]+)", commits.commit),
    _route("PUT", rf"{_API}/settings", settings),
    _route("POST", rf"{_API}/branch/(?P<branch>[^/]+)", create_branch),
    _route("POST", rf"{_API}/tag/(?P<rev>[^/]+)", create_tag),
    _route("POST", rf"/{_PREFIX}{_REPO}\.git/info/lfs/objects/batch", lfs.batch),
    _route("POST", rf"/{_PREFIX}{_REPO}\.git/info/lfs/objects/verify", lfs.verify),
    _route("PUT", r"/_lfs/upload/(?P<oid>[0-9a-f]{64})", lfs.put),
    _route("PUT", r"/_lfs/upload/(?P<oid>[0-9a-f]{64})/part/(?P<part>[0-9]+)", lfs.put_part),
    _route("POST", r"/_lfs/upload/(?P<oid>[0-9a-f]{64})", lfs.complete),
    _route("GET HEAD", rf"/{_PREFIX}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", resolve_with_cors),
    _route("GET", r"/api/(?P<kind>spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)/runtime", spaces.runtime),
    _route("POST", r"/api/(?P<kind>spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)/hardware", spaces.request_hardware),
)


def dispatch(hub: HubServer, req: Request) -> Response:
    """Answers a request with the first route matching its path and method.

    Args:
        hub: The server.
        req: The request.

    Returns:
        The route's response.

    Raises:
        HubHTTPError: From the route, or 405 (with ``Allow``) if only other methods match, or 404.
    """
    allowed: set[str] = set()
    for route in ROUTES:
        match = route.pattern.match(req.path)
        if match is None:
            continue
        if req.method not in route.methods:
            allowed |= route.methods
            continue
        params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
        if "ns" in params:
            params["repo_type"] = PLURAL_TO_TYPE[params.pop("kind", "models")]
            params["repo_id"] = f"{params.pop('ns')}/{params.pop('name')}"
        return route.handler(hub, req, **params)
    if allowed:
        raise HubHTTPError(405, f"Method {req.method} not allowed", headers={"Allow": ", ".join(sorted(allowed))})
    raise HubHTTPError(404, f"Not found: {unquote(req.path)}")
