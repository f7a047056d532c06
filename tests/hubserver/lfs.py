"""Routes of the upload flow before the commit: ``preupload``, the LFS ``batch`` API, signed uploads and ``verify``.

The client asks ``preupload`` which files go to LFS, posts their oids to ``batch``, ``PUT`` s each object to the
signed URL it gets back (one URL per part for multipart transfers, then a completion ``POST``), and calls
``verify``, which is where the server recomputes the sha256 and size of what it received. Only verified objects
can then be committed (see :mod:`.commits`). Signed URLs carry no ``Authorization`` header: an HMAC and an
expiry in the query string stand for it, as with S3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from .accounts import writable_repo
from .content import looks_binary
from .messages import HubHTTPError, Request, Response, truthy
from .storage import SHA256, PendingUpload, Repo, iso

if TYPE_CHECKING:
    from .server import HubServer


class UrlSigner:
    """Signs upload URLs with a per-server secret and checks the signatures."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def sign(self, path: str, params: dict[str, str]) -> str:
        """Returns the HMAC of a URL-decoded path and its query parameters (without ``sig``)."""
        canonical = path + "?" + urlencode(sorted(params.items()))
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).hexdigest()

    def url(self, base_url: str, path: str, repo: Repo, size: int, expires: int, **extra: str) -> str:
        """Returns a signed upload URL.

        Args:
            base_url: The server's URL.
            path: Path of the upload route.
            repo: Repository the upload is for.
            size: Size of the object.
            expires: POSIX time after which the URL is refused.
            **extra: Additional signed query parameters (``part``).

        Returns:
            The URL, with the signature in ``sig``.
        """
        params = {"repo_type": repo.repo_type, "repo_id": repo.repo_id, "size": str(size), "expires": str(expires)}
        params.update(extra)
        return f"{base_url}{path}?{urlencode({**params, 'sig': self.sign(path, params)})}"

    def check(self, req: Request) -> dict[str, str]:
        """Validates the signature and expiry of a request to a signed URL.

        Args:
            req: The request.

        Returns:
            The signed query parameters.

        Raises:
            HubHTTPError: 403 for a bad signature or an expired URL.
        """
        params = {k: v[0] for k, v in req.query.items() if k != "sig"}
        given = req.param("sig") or ""
        if not hmac.compare_digest(given, self.sign(unquote(req.path), params)):
            raise HubHTTPError(403, "SignatureDoesNotMatch: the upload URL signature is invalid")
        if float(params.get("expires", "0")) < time.time():
            raise HubHTTPError(403, "Request has expired: the signed upload URL is no longer valid")
        return params


# ---------------------------------------------------------------- POST /api/{type}/{repo}/preupload/{rev}


def preupload(hub: HubServer, req: Request, repo_type: str, repo_id: str, rev: str) -> Response:
    """Tells, for each file, whether it must be uploaded with LFS and the oid of the file already at that path."""
    payload = req.json()
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        if truthy(req.param("create_pr")):
            raise HubHTTPError(400, "create_pr is not supported by the HubServer test double")
        commit = repo.resolve(rev)
        patterns = hub.storage.lfs_patterns(commit)
        files = []
        for item in payload.get("files") or []:
            path = item.get("path")
            try:
                sample = base64.b64decode(item.get("sample") or "", validate=True)
                size = int(item["size"])
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise HubHTTPError(400, f"Invalid preupload entry for {path!r}: {exc}") from exc
            existing = commit.tree.get(path)
            files.append(
                {
                    "path": path,
                    "uploadMode": _upload_mode(path, size, sample, patterns, hub.lfs_threshold_bytes),
                    "shouldIgnore": False,
                    "oid": None if existing is None else (existing.sha256 if existing.lfs else existing.git_oid),
                }
            )
    return Response.json({"files": files, "commitOid": commit.sha})


def _upload_mode(path: str, size: int, sample: bytes, patterns: list[re.Pattern[str]], threshold: int) -> str:
    """Decides ``lfs`` vs ``regular`` like the Hub: .gitattributes, size threshold, binary sample."""
    if any(p.match(path) for p in patterns) or size >= threshold or looks_binary(sample):
        return "lfs"
    return "regular"


# ---------------------------------------------------------------- POST /{prefix}{repo}.git/info/lfs/objects/batch


def batch(hub: HubServer, req: Request, repo_type: str, repo_id: str) -> Response:
    """Answers an LFS ``upload`` batch: signed upload and verify actions for each object not stored yet."""
    payload = req.json()
    if payload.get("operation") != "upload":
        raise HubHTTPError(400, "Only the LFS 'upload' operation is supported by the HubServer test double")
    chunk = hub.multipart_chunk_size
    multipart = bool(chunk) and "multipart" in (payload.get("transfers") or ["basic"])
    expires = int(time.time() + hub.upload_url_ttl_s)
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        stored = dict(repo.lfs_oids)
    verify_href = f"{hub.url}/{repo.url_path}.git/info/lfs/objects/verify"
    objects = []
    for obj in payload.get("objects") or []:
        oid, size = obj.get("oid"), obj.get("size")
        if not isinstance(oid, str) or not SHA256.fullmatch(oid) or not isinstance(size, int) or size < 0:
            error = {"code": 422, "message": "Invalid oid or size"}
            objects.append({"oid": str(oid), "size": size if isinstance(size, int) else -1, "error": error})
            continue
        if oid in stored:
            objects.append({"oid": oid, "size": size})  # already uploaded: no actions, client skips
            continue
        path = f"/_lfs/upload/{oid}"
        upload: dict[str, Any] = {
            "href": hub.signer.url(hub.url, path, repo, size, expires),
            "expires_at": iso(expires),
        }
        if multipart and chunk and size > chunk:
            nb_parts = -(-size // chunk)
            upload["header"] = {"chunk_size": str(chunk)} | {
                str(n): hub.signer.url(hub.url, f"{path}/part/{n}", repo, size, expires, part=str(n))
                for n in range(1, nb_parts + 1)
            }
        objects.append(
            {
                "oid": oid,
                "size": size,
                "authenticated": True,
                "actions": {"upload": upload, "verify": {"href": verify_href, "header": {}}},
            }
        )
    return Response.json(
        {"transfer": "multipart" if multipart else "basic", "objects": objects, "hash_algo": "sha256"},
        headers={"Content-Type": "application/vnd.git-lfs+json"},
    )


# ---------------------------------------------------------------- signed uploads: /_lfs/upload/{oid}[/part/{n}]


def put(hub: HubServer, req: Request, oid: str) -> Response:
    """Receives a whole object (``PUT``); it waits for ``verify`` whatever its content (S3 accepts anything)."""
    repo = _signed_repo(hub, req)
    target = hub.storage.incoming_path(f"{oid}.{uuid.uuid4().hex}.upload")
    try:
        digest, size = _receive(hub, req, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    _set_pending(hub, repo, oid, target, digest, size)
    return Response(status=200, headers={"ETag": f'"{_etag(digest)}"'})


def put_part(hub: HubServer, req: Request, oid: str, part: str) -> Response:
    """Receives one part of a multipart upload (``PUT``) and answers its content-derived ``ETag``."""
    repo = _signed_repo(hub, req)
    if req.param("part") != part:
        raise HubHTTPError(403, "SignatureDoesNotMatch: part number mismatch")
    target = _part_path(hub, repo, oid, int(part))
    etag = _etag(_receive(hub, req, target)[0])
    target.with_suffix(target.suffix + ".etag").write_text(etag)
    return Response(status=200, headers={"ETag": f'"{etag}"'})


def complete(hub: HubServer, req: Request, oid: str) -> Response:
    """Completes a multipart upload (``POST``): joins the parts, each checked against the ETag the client sent."""
    repo = _signed_repo(hub, req)
    payload = req.json()
    parts = payload.get("parts") or []
    if payload.get("oid") != oid or [p.get("partNumber") for p in parts] != list(range(1, len(parts) + 1)):
        raise HubHTTPError(400, "Invalid multipart completion payload")
    target = hub.storage.incoming_path(f"{oid}.{uuid.uuid4().hex}.upload")
    sha, size = hashlib.sha256(), 0
    with open(target, "wb") as out:
        for part in parts:
            path = _part_path(hub, repo, oid, part["partNumber"])
            etag_file = path.with_suffix(path.suffix + ".etag")
            if not path.exists() or etag_file.read_text() != str(part.get("etag", "")).strip('"'):
                target.unlink(missing_ok=True)
                raise HubHTTPError(400, f"Part {part['partNumber']} is missing or its ETag does not match")
            data = path.read_bytes()
            out.write(data)
            sha.update(data)
            size += len(data)
    for part in parts:
        path = _part_path(hub, repo, oid, part["partNumber"])
        path.unlink(missing_ok=True)
        path.with_suffix(path.suffix + ".etag").unlink(missing_ok=True)
    _set_pending(hub, repo, oid, target, sha.hexdigest(), size)
    return Response.json({})


def _signed_repo(hub: HubServer, req: Request) -> Repo:
    """Checks the signed URL of an upload and returns the repo it was issued for."""
    params = hub.signer.check(req)
    with hub.lock:
        return hub.storage.repo(params["repo_type"], params["repo_id"])


def _receive(hub: HubServer, req: Request, target: Path) -> tuple[str, int]:
    """Streams the request body to ``target``, counted in the upload stats; returns (sha256, size)."""
    sha, size = hashlib.sha256(), 0
    with hub.stats.upload(), open(target, "wb") as fh:
        for chunk in req.body.iter_chunks():
            fh.write(chunk)
            sha.update(chunk)
            size += len(chunk)
            hub.stats.add_uploaded(len(chunk))
    return sha.hexdigest(), size


def _etag(sha256: str) -> str:
    """Returns the storage ETag of an uploaded body.

    It is content-derived like S3's MD5, but taken from the sha256 the double computes anyway (a second digest
    would double the double's CPU per byte, which the real Hub does not spend on the client's host).
    """
    return sha256[:32]


def _part_path(hub: HubServer, repo: Repo, oid: str, part: int) -> Path:
    key = hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}/{oid}".encode()).hexdigest()[:16]
    return hub.storage.incoming_path(f"{oid}.{key}.part{part}")


def _set_pending(hub: HubServer, repo: Repo, oid: str, path: Path, sha256: str, size: int) -> None:
    """Makes ``path`` the upload of ``oid`` waiting for ``verify`` (replacing an earlier attempt)."""
    with hub.lock:
        previous = repo.pending.pop(oid, None)
        repo.pending[oid] = PendingUpload(path, sha256, size)
    if previous is not None and previous.path != path:
        previous.path.unlink(missing_ok=True)


# ---------------------------------------------------------------- POST /{prefix}{repo}.git/info/lfs/objects/verify


def verify(hub: HubServer, req: Request, repo_type: str, repo_id: str) -> Response:
    """Stores an uploaded object if its recomputed sha256 and size match the oid and size claimed (else 422)."""
    payload = req.json()
    oid, size = payload.get("oid"), payload.get("size")
    with hub.lock:
        repo = writable_repo(hub.storage, req.user, repo_type, repo_id)
        if oid in repo.lfs_oids and oid not in repo.pending:
            if repo.lfs_oids[oid] != size:
                raise HubHTTPError(422, f"Size mismatch for object {oid}")
            return Response.json({})
        pending = repo.pending.pop(oid, None) if isinstance(oid, str) else None
    if pending is None:
        raise HubHTTPError(422, f"Object {oid} was not uploaded (nothing to verify)")
    if pending.sha256 != oid or pending.size != size:
        pending.path.unlink(missing_ok=True)
        raise HubHTTPError(
            422,
            f"Verification failed for object {oid}: received sha256={pending.sha256} size={pending.size}, "
            f"expected sha256={oid} size={size}",
        )
    target = hub.storage.object_path(oid)
    if target.exists():
        pending.path.unlink(missing_ok=True)
    else:
        os.replace(pending.path, target)
    with hub.lock:
        repo.lfs_oids[oid] = pending.size
    return Response.json({})
