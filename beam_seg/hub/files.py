"""Files as the Hub sees them: content hashes, git blob ids, and whether the Hub will store a file with LFS.

Pure functions, tested without a server.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os

__all__ = ["LFS_MIN_BYTES", "SAMPLE_BYTES", "LocalFile", "git_blob_id", "is_binary", "local_file", "predict_lfs"]

# Files of at least this size are always stored with LFS by the Hub (regular files above it are rejected).
LFS_MIN_BYTES = 10 * 1024 * 1024
_READ_BLOCK = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class LocalFile:
    """One file to publish, identified by content.

    Attributes:
        path_in_repo: Destination path (POSIX).
        size: Size in bytes.
        sha256: Hex sha256 of the content (the LFS oid).
        git_sha1: Hex git blob id of the content, for files small enough to be stored as regular git blobs.
        source: Where the content is read from (a local path or a ``gs://`` URI), if not ``data``.
        data: The content itself, for generated files (model card, rendered Space files).
    """

    path_in_repo: str
    size: int
    sha256: str
    git_sha1: str | None
    source: str | None = None
    data: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def blob_ids(self) -> frozenset[str]:
        """The git blob ids this content may have on the Hub: its LFS pointer's, or its own if stored inline."""
        ids = {git_blob_id(_lfs_pointer(self.sha256, self.size))}
        if self.git_sha1:
            ids.add(self.git_sha1)
        return frozenset(ids)


# The LFS patterns of the .gitattributes the Hub puts in every new repository.
_LFS_PATTERNS: tuple[str, ...] = (
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "*.tar.*",
    "*.tar",
    "*.tflite",
    "*.tgz",
    "*.wasm",
    "*.xz",
    "*.zip",
    "*.zst",
    "*tfevents*",
)
# Bytes of a file's start that decide whether it is text.
SAMPLE_BYTES = 512


def is_binary(sample: bytes) -> bool:
    """Whether content starting with ``sample`` is binary: a NUL byte, or invalid UTF-8 (the Hub's rule).

    A multi-byte character cut at the end of a partial sample still counts as text.
    """
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        return not (e.reason == "unexpected end of data" and e.start >= len(sample) - 3)
    return False


def predict_lfs(path_in_repo: str, size: int, sample: bytes) -> bool:
    """Whether the Hub will store a file with LFS.

    True for ``saved_model/**``, an LFS extension of the Hub's default ``.gitattributes``, binary content
    (:func:`is_binary` of the first :data:`SAMPLE_BYTES`), and 10 MiB and more.
    """
    if size >= LFS_MIN_BYTES or path_in_repo.startswith("saved_model/"):
        return True
    name = path_in_repo.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in _LFS_PATTERNS) or is_binary(sample[:SAMPLE_BYTES])


def git_blob_id(data: bytes) -> str:
    """The git object id of ``data`` stored as a regular blob."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def local_file(path_in_repo: str, content: str | bytes, *, source: str | None = None) -> LocalFile:
    """Hashes a local file (path) or in-memory content (bytes) in one pass.

    Computes the sha256 (the LFS oid) and, for a file small enough to be stored inline, its git blob id.

    Args:
        path_in_repo: Destination path.
        content: A local path, or the bytes themselves (kept in the result).
        source: The original location to record when ``content`` is a staged copy (e.g. of a ``gs://`` file).
    """
    if isinstance(content, bytes):
        sha1 = git_blob_id(content) if len(content) < LFS_MIN_BYTES else None
        return LocalFile(path_in_repo, len(content), hashlib.sha256(content).hexdigest(), sha1, source, content)
    size = os.path.getsize(content)
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\x00" % size) if size < LFS_MIN_BYTES else None
    with open(content, "rb") as f:
        while block := f.read(_READ_BLOCK):
            sha256.update(block)
            if sha1 is not None:
                sha1.update(block)
    return LocalFile(path_in_repo, size, sha256.hexdigest(), sha1.hexdigest() if sha1 else None, source or content)
