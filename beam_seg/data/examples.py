"""Stage 1's heavy step as one pure function: an image name's files → a record, a dead letter or ignored files.

No Beam here: :class:`beam_seg.data.pipeline.BuildTFRecords` runs :func:`prepare_group` in its own worker, or
locally in a pool of processes (:func:`make_pool`), which import this module and nothing heavier.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from PIL import Image

from beam_seg import fs
from beam_seg.data import codec, imaging, lists, splits
from beam_seg.data.stats import ERROR, FAILURE, IGNORED, STATS, example_stats

__all__ = [
    "FILE_FAILURE",
    "FILE_IGNORED",
    "IMAGE",
    "TRIMAP",
    "PrepareSettings",
    "Prepared",
    "allow_pixels",
    "chunk_size",
    "make_pool",
    "prepare_group",
    "read_payload",
]

# File kinds in the (kind, payload) pairs of a name's group; a FILE_FAILURE payload says why an archive could not be
# read, a FILE_IGNORED payload why a file is junk.
IMAGE, TRIMAP, FILE_IGNORED, FILE_FAILURE = "image", "trimap", "ignored", "failure"

# The type of a record on its way to the shard writer: (split, (shard key, name, serialized example)).
Record = tuple[str, tuple[int, str, bytes]]


@dataclasses.dataclass(frozen=True)
class PrepareSettings:
    """What :func:`prepare_group` needs to know about the job.

    Attributes:
        has_lists: The input has split lists (an unlisted image is then ignored, not labelled from its name).
        resize: Square side of stored images and masks, or ``None`` to keep the source size and bytes.
        max_pixels: Largest image or trimap accepted, in pixels.
        val_fraction: Share of trainval carved out as val.
        seed: Seed of the stable hashes (val membership, shard and order).
    """

    has_lists: bool
    resize: int | None
    max_pixels: int
    val_fraction: float
    seed: int


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What one name's group became.

    Attributes:
        images_read: Image files in the group.
        record: The record, or ``None`` (a dead letter, or only ignored files).
        report: Items for :class:`~beam_seg.data.report.DatasetReportFn`: ``(STATS, split, ExampleStats)`` for the
            record, ``(ERROR, entry)``, ``(IGNORED, reason)``, ``(FAILURE, message)``.
    """

    images_read: int
    record: Record | None
    report: tuple[tuple, ...]


def read_payload(payload: bytes | str) -> bytes:
    """A file's bytes: ``payload`` itself (streamed from an archive), or the contents of the path it names."""
    return payload if isinstance(payload, bytes) else fs.read_bytes(payload)


def _read(payload: bytes | str) -> bytes:
    try:
        return read_payload(payload)
    except OSError as e:
        raise imaging.BadInputError("unreadable_file", f"{payload}: {type(e).__name__}: {e}") from None


def _dead_letter(name: str, split: str, stage: str, reason: str, detail: str) -> Prepared:
    entry = {"name": name, "split": split, "stage": stage, "reason": reason, "detail": detail}
    return Prepared(images_read=0, record=None, report=((ERROR, entry),))


def _prepare(name: str, listed: list, files: list, settings: PrepareSettings) -> Prepared:
    images = [payload for kind, payload in files if kind == IMAGE]
    trimaps = [payload for kind, payload in files if kind == TRIMAP]
    if listed:
        split, label, species = listed[0]
    elif settings.has_lists:
        ignored = [(IGNORED, "unlisted_image")] * len(images) + [(IGNORED, "unlisted_trimap")] * len(trimaps)
        return Prepared(images_read=0, record=None, report=tuple(ignored))
    elif not images:
        return Prepared(images_read=0, record=None, report=((IGNORED, "trimap_without_image"),) * len(trimaps))
    else:
        split = "trainval"
        try:
            entry = lists.entry_from_name(name)
        except ValueError as e:
            return _dead_letter(name, split, "pair", "unknown_breed", str(e))
        label, species = entry.label, entry.species
    if split == "trainval":
        split = "val" if splits.is_val(name, settings.val_fraction, settings.seed) else "train"
    if not images:
        return _dead_letter(name, split, "pair", "missing_image", "no images/<name>.{jpg,jpeg,png} file")
    if len(images) > 1:
        return _dead_letter(name, split, "pair", "duplicate_image", f"{len(images)} image files share this name")
    if not trimaps:
        return _dead_letter(name, split, "pair", "missing_trimap", "no annotations/trimaps/<name>.png file")
    try:
        image_bytes, trimap_bytes = _read(images[0]), _read(trimaps[0])
        pair = imaging.prepare_pair(image_bytes, trimap_bytes, settings.resize, max_pixels=settings.max_pixels)
    except imaging.BadInputError as e:
        return _dead_letter(name, split, "decode", e.reason, e.detail)
    serialized = codec.encode_example(
        codec.PetExample(
            image=pair.image,
            mask=pair.mask,
            height=pair.height,
            width=pair.width,
            file_name=name,
            label=label,
            species=species,
        )
    )
    stats = example_stats(
        pair.rgb_image,
        pair.mask_image,
        source_height=pair.source_height,
        source_width=pair.source_width,
        record_bytes=len(serialized),
        conversion=pair.conversion,
    )
    return Prepared(
        images_read=0,
        record=(split, (splits.shard_key(name, settings.seed), name, serialized)),
        report=((STATS, split, stats),),
    )


def prepare_group(element: tuple[str, dict[str, Iterable]], settings: PrepareSettings) -> Prepared:
    """Turns one image name's group into a record, a dead letter, or ignored files.

    Args:
        element: ``(name, {"listing": [(split, label, species)] or [], "files": [(kind, payload), ...]})`` as
            :class:`~beam_seg.data.sources.ReadPetsFiles` emits it; a payload is a file's bytes or its path.
        settings: The job's settings.

    Returns:
        The outcome; the junk and archive failures among ``files`` are reported too.
    """
    name, group = element
    listed, files = list(group["listing"]), list(group["files"])
    junk = tuple((IGNORED, payload) for kind, payload in files if kind == FILE_IGNORED)
    junk += tuple((FAILURE, payload) for kind, payload in files if kind == FILE_FAILURE)
    prepared = _prepare(name, listed, files, settings)
    return dataclasses.replace(
        prepared, images_read=sum(kind == IMAGE for kind, _ in files), report=junk + prepared.report
    )


def allow_pixels(max_pixels: int) -> None:
    """Lets PIL open images up to ``max_pixels`` in this process, without its decompression-bomb warning.

    :func:`~beam_seg.data.imaging.prepare_pair` refuses larger ones from their headers; PIL's process-wide limit
    would otherwise warn on stderr from half of it and refuse from twice its default.
    """
    Image.MAX_IMAGE_PIXELS = max(max_pixels, Image.MAX_IMAGE_PIXELS or 0)
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class _InProcess(Executor):
    """An executor that runs everything in the calling thread: the pool of one process."""

    def map(  # type: ignore[override]
        self, fn: Callable[..., Any], *iterables: Iterable[Any], timeout: float | None = None, chunksize: int = 1
    ) -> Iterator[Any]:
        return map(fn, *iterables)


def make_pool(processes: int, max_pixels: int) -> Executor:
    """Processes that run :func:`prepare_group`, or the calling process itself when ``processes`` is 1.

    The processes are forked from this one: they start in milliseconds with everything imported, and never import
    the program's ``__main__`` again (which ``spawn`` and ``forkserver`` do: a script without an
    ``if __name__ == "__main__"`` guard, or code read from stdin, would break them). They run only this module's pure
    functions, which take no lock that another thread of the parent could hold.
    """
    allow_pixels(max_pixels)
    if processes <= 1:
        return _InProcess()
    context = multiprocessing.get_context("fork")
    return ProcessPoolExecutor(processes, mp_context=context, initializer=allow_pixels, initargs=(max_pixels,))


def chunk_size(batch: Sequence[Any], processes: int) -> int:
    """Elements sent to a pool process at a time: a few chunks per process per batch, so none waits long at its end."""
    return max(1, len(batch) // (16 * max(processes, 1)))
