"""Finding and reading PETS input: the extracted layout or the two official archives, local or ``gs://``.

:func:`find_input` decides the layout and reads the (small) split lists at pipeline construction;
:class:`ReadPetsFiles` pairs every listed name with its image and trimap files and classifies every
file it sees: tarballs are streamed member by member inside the pipeline, without extracting them to
disk; the extracted layout's folders are listed at construction and its files read in the pipeline. Which data the
input is (:mod:`beam_seg.data.provenance`: the sample data's marker, or the official data) is settled with the split
lists, in the same read.
"""

from __future__ import annotations

import dataclasses
import gzip
import logging
import os
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_seg import fs
from beam_seg.data import examples, lists, provenance

__all__ = [
    "ARCHIVES",
    "InputError",
    "PetsInput",
    "ReadPetsFiles",
    "classify_path",
    "find_input",
    "group_extracted_files",
]

logger = logging.getLogger(__name__)

ARCHIVES: tuple[str, str] = ("images.tar.gz", "annotations.tar.gz")
_SPLIT_LISTS: dict[str, str] = {"trainval": "annotations/trainval.txt", "test": "annotations/test.txt"}
_IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})

# File kinds in the (kind, payload) pairs of ReadPetsFiles (defined with the step that consumes them).
IMAGE, TRIMAP, IGNORED, FAILURE = examples.IMAGE, examples.TRIMAP, examples.FILE_IGNORED, examples.FILE_FAILURE


class InputError(ValueError):
    """The ``--input`` location does not hold a PETS dataset in a layout we understand, or it is damaged."""


# What tarfile and gzip raise on a truncated or corrupt .tar.gz.
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)
_GZIP_MAGIC = b"\x1f\x8b"


@dataclasses.dataclass(frozen=True)
class PetsInput:
    """A located PETS dataset.

    Attributes:
        root: The ``--input`` directory.
        layout: ``"archives"`` (the two official tarballs) or ``"extracted"`` (images/ and annotations/).
        listing: Image name -> (``"trainval"`` or ``"test"``, entry) from the split lists, or ``None``
            when the input has no split lists (then every image is trainval, labelled from its name).
        dataset: Which data this is, ``stats.json``'s ``dataset`` entry (:func:`provenance.dataset_entry`).
    """

    root: str
    layout: str
    listing: dict[str, tuple[str, lists.ListEntry]] | None
    dataset: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(provenance.OFFICIAL))


def classify_path(path: str) -> tuple[str, str]:
    """Classifies a file by the folders it sits in (works for local, ``gs://`` and tar member paths).

    Returns:
        ``(IMAGE, name)`` for ``.../images/<name>.{jpg,jpeg,png}``, ``(TRIMAP, name)`` for
        ``.../annotations/trimaps/<name>.png``, ``(IGNORED, reason)`` for other files in those two
        folders (``._*`` AppleDouble files, ``.mat`` files …), and ``("", "")`` for files elsewhere
        (list files, xmls, READMEs), which are not part of the image/trimap accounting.
    """
    parts = path.replace("\\", "/").split("/")
    base, parent, grandparent = parts[-1], (parts[-2:-1] or [""])[0], (parts[-3:-2] or [""])[0]
    if parent == "images":
        kind, allowed = IMAGE, _IMAGE_EXTENSIONS
    elif (grandparent, parent) == ("annotations", "trimaps"):
        kind, allowed = TRIMAP, frozenset({".png"})
    else:
        return "", ""
    if base.startswith("._"):
        return IGNORED, "appledouble_file"
    stem, ext = posixpath.splitext(base)
    if ext.lower() not in allowed:
        return IGNORED, f"unexpected_{kind}_extension_{ext.lower().lstrip('.') or 'none'}"
    return kind, stem


def _has_files(pattern: str) -> bool:
    return bool(FileSystems.match([pattern], limits=[1])[0].metadata_list)


def _check_gzip(archive: str) -> None:
    """Refuses an archive that is empty or not gzip-compressed, from its first bytes.

    Raises:
        InputError: naming the archive and what it starts with.
    """
    with FileSystems.open(archive, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        head = f.read(len(_GZIP_MAGIC))
    if head != _GZIP_MAGIC:
        what = "is empty (0 bytes)" if not head else f"is not a gzip file (it starts with {head!r})"
        raise InputError(f"{archive} {what}; download it again")


def _members_from_archive(archive: str, wanted: frozenset[str]) -> dict[str, bytes]:
    """Streams a tarball once and returns the bytes of the ``wanted`` member files it holds, by member path.

    Raises:
        InputError: if the archive is truncated or corrupt.
    """
    found: dict[str, bytes] = {}
    try:
        with (
            FileSystems.open(archive, compression_type=CompressionTypes.UNCOMPRESSED) as raw,
            tarfile.open(fileobj=raw, mode="r|gz") as tar,
        ):
            for member in tar:
                name = member.name[2:] if member.name.startswith("./") else member.name
                if member.isfile() and name in wanted:
                    found[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except _ARCHIVE_ERRORS as e:
        raise InputError(f"{archive} is truncated or corrupt ({type(e).__name__}: {e}); download it again") from None
    except OSError as e:
        raise InputError(f"cannot read {archive} ({type(e).__name__}: {e})") from None
    return found


def _list_text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise lists.ListFileError(f"{source} is not UTF-8 text ({e})") from None


def normalize_root(root: str) -> str:
    """``--input`` in one spelling: an absolute, normalised local path, or a URI without trailing slashes."""
    return root.rstrip("/") if fs.is_remote(root) else os.path.abspath(root)


def find_input(root: str, layout: str = "auto", *, allow_missing_split_list: bool = False) -> PetsInput:
    """Locates the dataset under ``root`` and reads its split lists.

    Args:
        root: Directory (local or ``gs://``) with ``images.tar.gz`` + ``annotations.tar.gz`` or
            with ``images/`` and ``annotations/trimaps/``.
        layout: ``"auto"`` (archives when both are present, else the extracted folders),
            ``"archives"`` or ``"extracted"``.
        allow_missing_split_list: Accept one of ``trainval.txt``/``test.txt`` without the other.

    Raises:
        InputError: if the layout is not found, an archive is empty, truncated or corrupt, or only one split
            list is present (and not allowed), naming the path and what was expected.
        lists.ListFileError: if a split list is malformed or names an image twice.
        provenance.ProvenanceError: if the sample data's marker is there but unreadable.
    """
    root = normalize_root(root)
    archives = [FileSystems.join(root, name) for name in ARCHIVES]
    if layout == "auto":
        layout = "archives" if all(fs.exists(a) for a in archives) else "extracted"
    if layout == "archives":
        missing = [a for a in archives if not fs.exists(a)]
        if missing:
            raise InputError(f"--input {root!r} lacks {missing}; expected both {list(ARCHIVES)}")
        for archive in archives:
            _check_gzip(archive)
        # The split lists and the sample data's marker, in one pass over annotations.tar.gz.
        members = _members_from_archive(archives[1], frozenset([*_SPLIT_LISTS.values(), provenance.SAMPLE_MARKER]))
        texts = {
            split: _list_text(members[rel], f"{archives[1]}:{rel}")
            for split, rel in _SPLIT_LISTS.items()
            if rel in members
        }
        dataset = provenance.dataset_entry(
            members.get(provenance.SAMPLE_MARKER), where=f"{archives[1]}:{provenance.SAMPLE_MARKER}"
        )
    elif layout == "extracted":
        if not _has_files(FileSystems.join(root, "images", "*")):
            raise InputError(
                f"--input {root!r} has neither {' + '.join(ARCHIVES)} nor an images/ folder with files; "
                "point it at the directory holding the PETS archives or their extracted images/ and annotations/"
            )
        texts = {}
        for split, rel in _SPLIT_LISTS.items():
            path = FileSystems.join(root, rel)
            if fs.exists(path):
                texts[split] = _list_text(fs.read_bytes(path), path)
        marker = FileSystems.join(root, provenance.SAMPLE_MARKER)
        dataset = provenance.dataset_entry(fs.read_bytes(marker) if fs.exists(marker) else None, where=marker)
    else:
        raise InputError(f"unknown input layout {layout!r}; expected 'auto', 'archives' or 'extracted'")
    if len(texts) == 1 and not allow_missing_split_list:
        (present,) = texts
        (absent,) = set(_SPLIT_LISTS) - set(texts)
        raise InputError(
            f"--input {root!r} has {_SPLIT_LISTS[present]} but no {_SPLIT_LISTS[absent]}, so every {absent} image "
            "would be ignored as unlisted; restore the list, or pass --allow_missing_split_list if that is intended"
        )
    listing = None
    if texts:
        listing = lists.merge_split_lists(
            (split, lists.parse_list_file(text, source=FileSystems.join(root, _SPLIT_LISTS[split])))
            for split, text in sorted(texts.items())
        )
    logger.info(
        "input %s: %s layout, %s, %s",
        root,
        layout,
        f"{len(listing)} images in split lists" if listing is not None else "no split lists",
        dataset["name"],
    )
    return PetsInput(root=root, layout=layout, listing=listing, dataset=dataset)


def _keyed(path: str, payload_fn: Callable[[], object]) -> Iterator[tuple[str, tuple[str, object]]]:
    """Keys an image or trimap by its name, and junk by its own path (so it never pairs with anything)."""
    kind, value = classify_path(path)
    if kind == IGNORED:
        yield path, (IGNORED, value)
    elif kind:
        yield value, (kind, payload_fn())


class _ReadArchiveFn(beam.DoFn):
    """Streams one tarball and emits its image/trimap folder members, keyed as :class:`ReadPetsFiles` says.

    A truncated or unreadable archive is a whole-input failure: it is emitted as a ``FAILURE`` item (which fails
    the job at its end, in one line) rather than raised, since a retry cannot mend the file.
    """

    def process(self, archive: str) -> Iterator[tuple[str, tuple[str, object]]]:
        """Yields ``(key, (kind, payload))`` for every member file of ``archive``."""
        logger.info("streaming %s", archive)
        members = 0
        try:
            with (
                FileSystems.open(archive, compression_type=CompressionTypes.UNCOMPRESSED) as raw,
                tarfile.open(fileobj=raw, mode="r|gz") as tar,
            ):
                for member in tar:
                    if member.isfile():
                        members += 1
                        yield from _keyed(member.name, lambda m=member: tar.extractfile(m).read())
        except _ARCHIVE_ERRORS as e:
            problem = f"{archive} is truncated or corrupt ({type(e).__name__}: {e}, after {members} files)"
            yield archive, (FAILURE, f"{problem}; download it again")
        except OSError as e:
            yield archive, (FAILURE, f"cannot read {archive} ({type(e).__name__}: {e}, after {members} files)")


def listed_item(listed: tuple[str, lists.ListEntry]) -> tuple[str, int, int]:
    """A listing's ``(split, entry)`` as the plain ``(split, label, species)`` tuple the job passes on.

    Plain tuples of primitives, because Beam's fast coder pickles any other type, element by element, at every
    stage boundary.
    """
    split, entry = listed
    return split, entry.label, entry.species


def group_extracted_files(source: PetsInput) -> list[tuple[str, dict[str, list]]]:
    """Lists the extracted layout's images/ and trimaps/ folders and groups every file with its listing.

    One ``match`` per folder (a directory listing, cheap even on ``gs://``) pairs every image with
    its trimap by name, so the job needs no shuffle of one element per file to pair them. Files are
    read later, by the step that decodes them, from the paths.

    Returns:
        ``(key, {"listing": [(split, label, species)] or [], "files": [(kind, path or reason), ...]})`` sorted
        by key: the same shape :class:`ReadPetsFiles` emits for the archives.
    """
    root = source.root
    patterns = [FileSystems.join(root, "images", "*"), FileSystems.join(root, "annotations", "trimaps", "*")]
    groups: dict[str, dict[str, list]] = {}
    for result in FileSystems.match(patterns):
        for meta in result.metadata_list:
            for key, file in _keyed(meta.path, lambda p=meta.path: p):
                groups.setdefault(key, {"listing": [], "files": []})["files"].append(file)
    for name, listed in (source.listing or {}).items():
        groups.setdefault(name, {"listing": [], "files": []})["listing"].append(listed_item(listed))
    for group in groups.values():
        group["files"].sort()
    logger.info("paired %d image names and junk files in %s", len(groups), root)
    return sorted(groups.items())


class ReadPetsFiles(beam.PTransform):
    """Emits every image name with its split-list entry and its files, ``(key, {"listing", "files"})``.

    ``listing`` holds the name's ``(split, label, species)`` from the split lists (empty when unlisted);
    ``files`` holds ``(kind, payload)`` pairs with ``kind`` ``"image"`` or ``"trimap"``, whose payload
    is the file's bytes when streamed from an archive (paired by name with a ``CoGroupByKey``), or its
    path in the extracted layout (paired from two folder listings by :func:`group_extracted_files`,
    read later by :func:`~beam_seg.data.examples.read_payload`). Junk such as ``._*`` and ``.mat`` files
    is keyed by its own path, with kind ``"ignored"`` and the reason as payload, so it never pairs with
    anything; so is an archive that cannot be read to its end, with kind ``"failure"`` and the problem.
    """

    def __init__(self, source: PetsInput, *, redistribute: bool = True) -> None:
        """Reads ``source``.

        Args:
            source: The located input.
            redistribute: Spread the extracted layout's file groups over workers before the heavy
                step (a ``Reshuffle``). Needed wherever more than one worker runs (on Dataflow all the
                groups would otherwise stay on the worker that listed them); pure overhead for one.
        """
        super().__init__()
        self._source = source
        self._redistribute = redistribute

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        """PBegin → ``(key, {"listing", "files"})`` per image name (and per junk file)."""
        # One impulse, then the located input as a FlatMap argument: a Create of thousands of file
        # groups would infer a type per element and embed them all in the job graph.
        impulse = pbegin | "Start" >> beam.Impulse()
        if self._source.layout == "extracted":
            groups = impulse | "PairFiles" >> beam.FlatMap(
                lambda _, s: group_extracted_files(s), self._source
            ).with_output_types(tuple[str, dict[str, list]])  # Declared: spares Beam inferring it from bytecode.
            return groups | "Redistribute" >> beam.Reshuffle() if self._redistribute else groups
        return {
            "listing": impulse
            | "ListedImages"
            >> beam.FlatMap(
                lambda _, s: [(name, listed_item(v)) for name, v in sorted((s.listing or {}).items())], self._source
            ).with_output_types(tuple[str, tuple[str, int, int]]),
            "files": (
                impulse
                | "ListArchives"
                >> beam.FlatMap(
                    lambda _, s: [FileSystems.join(s.root, name) for name in ARCHIVES], self._source
                ).with_output_types(str)
                | "StreamArchives" >> beam.ParDo(_ReadArchiveFn())
            ),
        } | "PairByName" >> beam.CoGroupByKey()
