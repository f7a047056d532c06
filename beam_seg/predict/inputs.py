"""What ``--input`` names: image files or TFRecord shards, found on the driver; names, and who owns a name.

``--input`` is a directory (its files, not recursive), a glob or one file, local or ``gs://``. The driver lists it
once (:func:`find_inputs`) to know the kind and to refuse an input with nothing to predict; the job then reads the
same files. Pure functions and small records, no Beam.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
from collections.abc import Iterable
from typing import NamedTuple

from beam_seg import cli, fs

__all__ = [
    "IMAGES",
    "IMAGE_EXTENSIONS",
    "RECORDS",
    "DeadLetter",
    "Inputs",
    "NamedImage",
    "check_name",
    "find_inputs",
    "first_of_name",
    "image_name",
    "is_image_file",
    "is_record_file",
]

IMAGES, RECORDS = "images", "records"
# What the model's decoder reads (tf.io.decode_image), by file extension.
IMAGE_EXTENSIONS: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
_GLOB_CHARS = frozenset("*?[")


class DeadLetter(NamedTuple):
    """An input that got no mask, and why (a line of ``dead_letters.jsonl``).

    Attributes:
        name: The image's name (empty for a record that does not parse).
        source: Where it came from: a file path, or a TFRecord shard.
        reason: A short code: ``unreadable_file``, ``empty_image``, ``unknown_format``, ``image_too_large``,
            ``undecodable_image``, ``bad_record``, ``bad_name``, ``duplicate_name``.
        detail: One line of explanation.
    """

    name: str
    source: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """The JSON object of its ``dead_letters.jsonl`` line."""
        return self._asdict()


class NamedImage(NamedTuple):
    """One input image, read: its name, where it came from and its encoded bytes."""

    name: str
    source: str
    data: bytes


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What ``--input`` holds, as the driver found it.

    Attributes:
        kind: :data:`IMAGES` or :data:`RECORDS`.
        patterns: What the job reads: file patterns of images (filtered again with :func:`is_image_file`), or the
            TFRecord shards themselves.
        count: Files found of that kind.
        ignored: Files found that are neither images nor shards (hidden files, ``.mat``, ...).
    """

    kind: str
    patterns: tuple[str, ...]
    count: int
    ignored: int


def is_image_file(path: str) -> bool:
    """Whether ``path`` names an image the job reads: an image extension, and not a hidden file (``._x.jpg``)."""
    base = posixpath.basename(path.replace("\\", "/"))
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


def is_record_file(path: str) -> bool:
    """Whether ``path`` names a TFRecord shard (``*.tfrecord``, ``*.tfrecord.gz``, ...), not a hidden file."""
    base = posixpath.basename(path.replace("\\", "/"))
    return not base.startswith(".") and ".tfrecord" in base


def image_name(path: str) -> str:
    """An image file's name: its base name without the extension (``dir/Bombay_12.jpg`` → ``Bombay_12``)."""
    return os.path.splitext(posixpath.basename(path.replace("\\", "/")))[0]


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name an output file (``masks/<name>.png``), or ``None`` if it can."""
    if not name or name in (".", ".."):
        return f"name {name!r} cannot name an output file"
    if "/" in name or "\\" in name or "\x00" in name:
        return f"name {name!r} has a path separator; it cannot name a file in masks/"
    return None


def _resolve(pattern: str) -> tuple[str, list[str]]:
    """``(what to read, the files it names)`` for a glob, one file, or a directory (its files, not recursive)."""
    if any(c in pattern for c in _GLOB_CHARS):
        return pattern, fs.glob(pattern)
    if os.path.isfile(pattern) if not fs.is_remote(pattern) else fs.exists(pattern):
        return pattern, [pattern]
    if not fs.is_remote(pattern) and not os.path.isdir(pattern):
        return pattern, []
    inside = fs.join(pattern, "*")  # An object store has no folders: a prefix is listed like one.
    return inside, [p for p in fs.glob(inside) if fs.is_remote(p) or os.path.isfile(p)]


def find_inputs(pattern: str) -> Inputs:
    """Lists ``--input`` and decides its kind.

    Raises:
        cli.UsageError: one line, when it holds no image and no shard, or both kinds.
    """
    read, files = _resolve(pattern)
    images = [p for p in files if is_image_file(p)]
    records = [p for p in files if is_record_file(p)]
    if images and records:
        raise cli.UsageError(
            f"--input {pattern} holds both image files ({posixpath.basename(images[0])}, …) and TFRecord shards "
            f"({posixpath.basename(records[0])}, …); point it at one kind, e.g. a glob such as DIR/*.jpg or "
            "DIR/test-*.tfrecord"
        )
    if not images and not records:
        what = f"{len(files)} files, none of them" if files else "nothing, not even"
        raise cli.UsageError(
            f"--input {pattern} matches {what} an image ({', '.join(sorted(IMAGE_EXTENSIONS))}) or a TFRecord shard "
            "(*.tfrecord*); give a directory of images, a glob or stage 1's output directory"
        )
    if records:
        return Inputs(RECORDS, tuple(records), len(records), len(files) - len(records))
    return Inputs(IMAGES, (read,), len(images), len(files) - len(images))


def _digest(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def first_of_name(name: str, images: Iterable[NamedImage]) -> tuple[NamedImage, list[DeadLetter]]:
    """The image that keeps ``name``, and dead letters for the others of that name.

    The first by source path keeps it (ties, such as two records of one shard, by content), so the choice is the
    same on every runner and every rerun.
    """
    ranked = sorted(images, key=lambda image: (image.source, _digest(image.data)))
    winner = ranked[0]
    return winner, [
        DeadLetter(
            name,
            image.source,
            "duplicate_name",
            f"{winner.source} has the same name {name!r} and got it (the first by source path); rename one of them",
        )
        for image in ranked[1:]
    ]
