"""Small file operations on local paths and ``gs://`` URIs, with atomic writes.

Local paths use the standard library; remote URIs go through Beam's ``FileSystems`` (imported on first use, so a
stage that only touches local files does not pay for importing Beam). Files a framework writes itself (TFRecords
read by tf.data, SavedModels, checkpoints) stay with that framework; everything else the stages read and write
(JSON reports, pictures, manifests) goes through here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterable
from typing import Any

__all__ = [
    "delete",
    "exists",
    "glob",
    "is_remote",
    "is_temporary",
    "join",
    "read_bytes",
    "read_json",
    "read_text",
    "write_bytes",
    "write_json",
]


def is_remote(path: str) -> bool:
    """Whether ``path`` is a URI (``gs://...``) rather than a local path."""
    return "://" in path


def _beam():  # noqa: ANN202 - returns Beam's FileSystems class.
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def join(base: str, *names: str) -> str:
    """``base/name/...`` for local paths and URIs alike."""
    return "/".join([base.rstrip("/"), *names]) if is_remote(base) else os.path.join(base, *names)


def exists(path: str) -> bool:
    """Whether a file or directory exists at ``path``."""
    return _beam().exists(path) if is_remote(path) else os.path.exists(path)


def glob(pattern: str) -> list[str]:
    """Sorted paths matching ``pattern`` (``*`` within a name; ``**`` across folders for URIs)."""
    if is_remote(pattern):
        return sorted(m.path for m in _beam().match([pattern])[0].metadata_list)
    import glob as _glob

    return sorted(_glob.glob(pattern))


def read_bytes(path: str) -> bytes:
    """The whole content of ``path``.

    Raises:
        FileNotFoundError: naming ``path``.
    """
    if is_remote(path):
        from apache_beam.io.filesystem import CompressionTypes

        if not _beam().exists(path):
            raise FileNotFoundError(f"{path} does not exist")
        with _beam().open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    """The content of ``path`` decoded as UTF-8."""
    return read_bytes(path).decode("utf-8")


def read_json(path: str) -> Any:
    """The JSON value stored at ``path``.

    Raises:
        FileNotFoundError: naming ``path``.
        ValueError: naming ``path`` when it is not valid JSON.
    """
    try:
        return json.loads(read_bytes(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e})") from None


_TEMP = re.compile(r"\.tmp-[0-9a-f]{12}$")


def is_temporary(path: str) -> bool:
    """Whether ``path`` is a temporary file of :func:`write_bytes` (left behind only by a killed process)."""
    return bool(_TEMP.search(path))


def write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` under a temporary name and renames it into place.

    A reader never sees a partial file: it finds the previous content or the new one. Local parent folders are
    created.
    """
    temp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    if is_remote(path):
        filesystems = _beam()
        with filesystems.create(temp) as f:
            f.write(data)
        if filesystems.exists(path):
            filesystems.delete([path])
        filesystems.rename([temp], [path])
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def write_json(path: str, value: Any) -> None:
    """Writes ``value`` as indented, key-sorted JSON (see :func:`write_bytes`)."""
    write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def delete(paths: Iterable[str]) -> None:
    """Deletes files and folders (recursively); missing ones are skipped."""
    paths = list(paths)
    remote = [p for p in paths if is_remote(p) and _beam().exists(p)]
    if remote:
        _beam().delete(remote)
    for path in paths:
        if is_remote(path):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
