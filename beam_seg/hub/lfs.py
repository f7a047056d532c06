"""LFS transfers over ``huggingface_hub`` internals: the one module that leans on them.

What it does that the client's public API does not, each kept because ``bench/publish.py`` shows it pays (see
bench/README.md): parallel transfers of many files and of a file's multipart parts on one shared pool, request
bodies sent in 1 MiB blocks, and commit operations that reuse the sha256 already computed.

Internals used (huggingface_hub 2.4.0, pinned in constraints.txt): ``huggingface_hub.lfs.UploadInfo`` (and the
``upload_info.sha256`` of a ``CommitOperationAdd``), ``huggingface_hub.lfs.post_lfs_batch_info``,
``huggingface_hub.lfs.LFS_HEADERS`` and the LFS batch response's ``actions`` layout (``upload.header.chunk_size`` and
numbered part URLs for multipart transfers). Check them when the pin moves. Everything else goes through public
helpers (``http_backoff``, ``hf_raise_for_status``, ``build_hf_headers``, ``fix_hf_endpoint_in_url``).

With ``hf_xet`` installed (the default), the client uploads through Xet and none of this runs
(:func:`xet_enabled`); it serves Hubs and setups without Xet (``HF_HUB_DISABLE_XET=1``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from beam_seg.hub.errors import HubError, hub_call
from beam_seg.hub.files import LocalFile

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = ["hashed_addition", "upload_lfs_files", "xet_enabled"]

_SEND_BLOCK = 1024 * 1024
# Objects per LFS batch call (the client's own batches in ``_commit_api``: UPLOAD_BATCH_MAX_NUM_FILES).
_LFS_BATCH_OBJECTS = 256


class _FilePart(io.IOBase):
    """Bytes ``[start, start + length)`` of a local file as a request body, read when sent.

    Iterable in 1 MiB blocks, where the HTTP client reads a file-like object 64 KiB at a time: fewer trips through its
    Python send path (bench/publish.py, ``send_block``). Seekable, so that ``http_backoff`` rewinds it before a
    retry.
    """

    def __init__(self, path: str, start: int, length: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), which the caller's `with` calls.
        self._start, self._length, self._position = start, length, 0

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._length}[whence]
        self._position = max(0, min(self._length, base + offset))
        return self._position

    def __iter__(self) -> Iterator[bytes]:  # type: ignore[override]
        self._file.seek(self._start + self._position)
        while self._position < self._length:
            block = self._file.read(min(_SEND_BLOCK, self._length - self._position))
            if not block:
                raise OSError(f"{self._file.name} ended {self._length - self._position} bytes early")
            self._position += len(block)
            yield block

    def close(self) -> None:
        self._file.close()
        super().close()


def _request_body(body: str | bytes, start: int, length: int) -> AbstractContextManager[Any]:
    """The bytes ``[start, start + length)`` of a file (path) or of in-memory content, as a request body."""
    return nullcontext(body[start : start + length]) if isinstance(body, bytes) else _FilePart(body, start, length)


@dataclasses.dataclass(frozen=True)
class _LfsAction:
    """What the LFS batch call asked for one object: where to send it (one PUT, or parts) and how to verify it."""

    file: LocalFile
    upload_url: str
    verify_url: str | None
    chunk_size: int | None
    part_urls: tuple[str, ...]

    @classmethod
    def from_batch(cls, file: LocalFile, action: dict[str, Any], endpoint: str) -> _LfsAction:
        from huggingface_hub.utils import fix_hf_endpoint_in_url

        upload, verify = action["actions"]["upload"], action["actions"].get("verify")
        header = upload.get("header") or {}
        chunk_size = int(header["chunk_size"]) if header.get("chunk_size") is not None else None
        parts: tuple[str, ...] = ()
        if chunk_size is not None:
            numbered = sorted((int(k), url) for k, url in header.items() if k.isdigit())
            parts = tuple(fix_hf_endpoint_in_url(url, endpoint) for _, url in numbered)
            if chunk_size <= 0 or len(parts) != -(-file.size // chunk_size):
                raise ValueError(
                    f"malformed multipart instructions for {file.path_in_repo}: {len(parts)} part URLs "
                    f"for {file.size} bytes in chunks of {chunk_size}"
                )
        return cls(
            file,
            fix_hf_endpoint_in_url(upload["href"], endpoint),
            fix_hf_endpoint_in_url(verify["href"], endpoint) if verify else None,
            chunk_size,
            parts,
        )


def hashed_addition(f: LocalFile, body: str | bytes) -> Any:
    """A ``CommitOperationAdd`` for ``f`` that knows its sha256 already, so the client does not read the file again.

    Sets ``upload_info.sha256`` of the operation, which the client otherwise computes lazily from the file.
    """
    from huggingface_hub import CommitOperationAdd

    addition = CommitOperationAdd(f.path_in_repo, body)
    if isinstance(body, str):
        addition.upload_info.sha256 = bytes.fromhex(f.sha256)
    return addition


def xet_enabled() -> bool:
    """Whether the client uploads through Xet, bypassing the LFS protocol that :func:`upload_lfs_files` speaks.

    As the client decides it: ``hf_xet`` installed and ``HF_HUB_DISABLE_XET`` unset (read now).
    """
    import importlib.util

    from huggingface_hub import constants

    return not constants.HF_HUB_DISABLE_XET and importlib.util.find_spec("hf_xet") is not None


def upload_lfs_files(
    api: HfApi,
    *,
    repo_id: str,
    files: Sequence[LocalFile],
    content: Callable[[LocalFile], str | bytes],
    executor: concurrent.futures.Executor,
    repo_type: str = "model",
    revision: str = "main",
) -> tuple[str, ...]:
    """Sends the LFS content of ``files`` that the Hub does not hold yet; returns the paths actually sent.

    The protocol of ``HfApi.preupload_lfs_files`` through the client's public helpers: one LFS batch call
    (``huggingface_hub.lfs.post_lfs_batch_info``) says which objects are missing and how to send each, then a single
    ``PUT`` or, when the Hub asks for a multipart transfer (``chunk_size`` + one URL per part), every part ``PUT``
    concurrently on ``executor`` (the client sends the parts of a file one after another, and the Hub's storage caps
    each connection) and the completion call; then the verify call. Every request goes through ``http_backoff``
    (429/5xx honouring ``Retry-After``, dropped connections). Objects already on the Hub are skipped, so a retried
    or resumed upload re-sends only what never arrived. Nothing asks the Hub which files it wants in LFS: pass the
    ones predicted so; a file it would store inline just becomes an unused LFS object, and :func:`commit_tree`
    uploads any file it wants in LFS that was not sent here.

    Args:
        api: Client (endpoint and token).
        repo_id: Repository.
        files: Files to send (hashed: ``sha256`` is the LFS oid).
        content: Gives the local path or bytes of a file.
        executor: Runs the transfers (files and parts); the caller sizes it.
        repo_type: ``model`` or ``space``.
        revision: Branch the objects are meant for.

    Raises:
        HubError: On a final failure (one line, names the repo).
    """
    from urllib.parse import quote

    from huggingface_hub.lfs import UploadInfo, post_lfs_batch_info
    from huggingface_hub.utils import build_hf_headers

    unique = {f.sha256: f for f in files}  # Identical content is one object.
    if not unique:
        return ()
    headers = build_hf_headers(token=api.token, library_name=api.library_name, library_version=api.library_version)
    with hub_call("uploading files to", repo_id=repo_id, repo_type=repo_type, endpoint=api.endpoint):
        oids = list(unique)
        actions: list[_LfsAction] = []
        for start in range(0, len(oids), _LFS_BATCH_OBJECTS):
            infos = [
                UploadInfo(size=unique[oid].size, sample=b"", sha256=bytes.fromhex(oid))
                for oid in oids[start : start + _LFS_BATCH_OBJECTS]
            ]
            found, errors, _ = post_lfs_batch_info(
                upload_infos=infos,
                token=api.token,
                repo_type=repo_type,
                repo_id=repo_id,
                revision=quote(revision, safe=""),
                endpoint=api.endpoint,
                headers=headers,
            )
            if errors:
                error = errors[0]
                raise HubError(
                    f"the Hub refused to store {unique[error['oid']].path_in_repo} of {repo_type} repo "
                    f"{repo_id} (LFS error {error['error']['code']}: {error['error']['message']})",
                    repo_id=repo_id,
                )
            actions += [_LfsAction.from_batch(unique[a["oid"]], a, api.endpoint) for a in found if a.get("actions")]
        bodies = {a.file.sha256: content(a.file) for a in actions}
        singles = [executor.submit(_put_object, a, bodies[a.file.sha256], headers) for a in actions if not a.part_urls]
        parts = {
            a.file.sha256: [executor.submit(_put_part, bodies[a.file.sha256], a, n) for n in range(len(a.part_urls))]
            for a in actions
            if a.part_urls
        }
        concurrent.futures.wait([*singles, *(f for fs in parts.values() for f in fs)])  # No transfer outlives us.
        for future in singles:
            future.result()
        for action in (a for a in actions if a.part_urls):
            _complete_multipart(action, [f.result() for f in parts[action.file.sha256]], headers)
    return tuple(sorted(a.file.path_in_repo for a in actions))


def _put_object(action: _LfsAction, body: str | bytes, headers: Mapping[str, str]) -> None:
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    with _request_body(body, 0, action.file.size) as data:
        hf_raise_for_status(http_backoff("PUT", action.upload_url, data=data))
    _verify(action, headers)


def _put_part(body: str | bytes, action: _LfsAction, index: int) -> str:
    """Sends part ``index`` (0-based) of a multipart object; returns its ETag."""
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    assert action.chunk_size is not None
    start = index * action.chunk_size
    with _request_body(body, start, min(action.chunk_size, action.file.size - start)) as data:
        response = http_backoff("PUT", action.part_urls[index], data=data)
    hf_raise_for_status(response)
    etag = response.headers.get("etag")
    if not etag:
        raise ValueError(f"no ETag for part {index + 1} of {action.file.path_in_repo}")
    return etag


def _complete_multipart(action: _LfsAction, etags: Sequence[str], headers: Mapping[str, str]) -> None:
    from huggingface_hub.lfs import LFS_HEADERS
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    payload = {"oid": action.file.sha256, "parts": [{"partNumber": n, "etag": e} for n, e in enumerate(etags, 1)]}
    hf_raise_for_status(http_backoff("POST", action.upload_url, json=payload, headers=LFS_HEADERS))
    _verify(action, headers)


def _verify(action: _LfsAction, headers: Mapping[str, str]) -> None:
    from huggingface_hub.utils import hf_raise_for_status, http_backoff

    if action.verify_url is not None:
        payload = {"oid": action.file.sha256, "size": action.file.size}
        hf_raise_for_status(http_backoff("POST", action.verify_url, headers=dict(headers), json=payload))
