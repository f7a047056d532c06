"""What the Hub reads inside files: git blob ids, LFS pointers, ``.gitattributes`` LFS patterns, README metadata.

Pure functions of bytes and text, with no server state.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

_YAML_BLOCK = re.compile(r"^(\s*---(?:\r\n|\r|\n))([\S\s]*?)((?:\r\n|\r|\n)---[ \t]*(\r\n|\n|$))")
_LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"

# The .gitattributes the Hub commits in every new repo ("initial commit").
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
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
        "saved_model/**/*",
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
)


def git_blob_sha1(data: bytes) -> str:
    """Returns the git blob id of ``data``.

    Args:
        data: File content.

    Returns:
        The hex sha1 of ``blob <len>\\0<data>``.
    """
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """Returns the git-lfs pointer file committed in git in place of an LFS object.

    Args:
        oid: sha256 of the LFS object.
        size: Size of the LFS object in bytes.

    Returns:
        The pointer file's content.
    """
    return _LFS_POINTER.format(oid=oid, size=size).encode()


def parse_front_matter(text: str) -> dict[str, Any] | None:
    """Parses the YAML front matter of a README.

    Args:
        text: The README content.

    Returns:
        The metadata mapping, or ``None`` if there is no front matter.

    Raises:
        ValueError: If the front matter is not valid YAML or not a mapping.
    """
    match = _YAML_BLOCK.search(text)
    if match is None:
        return None
    try:
        data = yaml.safe_load(match.group(2))
    except yaml.YAMLError as exc:
        raise ValueError(f"Invalid YAML in README.md metadata: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("README.md metadata must be a YAML mapping (dictionary).")
    return data


def lfs_patterns(gitattributes: str) -> list[re.Pattern[str]]:
    """Compiles the ``filter=lfs`` patterns of a ``.gitattributes`` file into regexes matching repo paths.

    Args:
        gitattributes: Content of the ``.gitattributes`` file.

    Returns:
        One regex per LFS pattern, to be used with ``match`` on a full repo path.
    """
    patterns: list[re.Pattern[str]] = []
    for line in gitattributes.splitlines():
        parts = line.strip().split()
        if not parts or parts[0].startswith("#") or "filter=lfs" not in parts[1:]:
            continue
        patterns.append(_glob_to_regex(parts[0]))
    return patterns


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translates a gitattributes glob into a regex on the full repo path.

    Patterns without a slash match the basename at any depth; patterns with a slash are anchored at the
    repo root, ``**`` spans directories and ``*`` / ``?`` stay within one path component.
    """
    anchored = "/" in pattern.strip("/")
    pattern = pattern.strip("/")
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    body = "".join(out)
    return re.compile(body + r"\Z" if anchored else r"(?:.*/)?" + body + r"\Z")


def looks_binary(sample: bytes) -> bool:
    """Tells whether a content sample is binary, as the Hub does to route files to LFS.

    Args:
        sample: The first bytes of a file (may end in the middle of a UTF-8 character).

    Returns:
        ``True`` on a NUL byte or invalid UTF-8 (a character cut at the end of the sample is not invalid).
    """
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not (exc.reason == "unexpected end of data" and exc.start >= len(sample) - 3)
    return False
