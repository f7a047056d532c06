"""The PETS split lists (``trainval.txt``, ``test.txt``, ``list.txt``): parsing and labels from image names.

Rows read ``<name> <class id 1..37> <species 1=cat 2=dog> <breed id>``; ``#`` lines are comments. Pure Python,
tested without Beam.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Iterable, Mapping

from beam_seg.pets import BREEDS, CAT_BREEDS

__all__ = [
    "ListEntry",
    "ListFileError",
    "breed_of",
    "entry_from_name",
    "image_stem",
    "merge_split_lists",
    "parse_list_file",
]

_BREED_INDEX: Mapping[str, int] = {b: i for i, b in enumerate(BREEDS)}


class ListFileError(ValueError):
    """A PETS list file (``list.txt``, ``trainval.txt``, ``test.txt``) is malformed."""


@dataclasses.dataclass(frozen=True)
class ListEntry:
    """One image as named by the dataset: its file stem, breed label (0..36) and species (0=cat, 1=dog)."""

    name: str
    label: int
    species: int


def breed_of(name: str) -> str:
    """Returns the breed part of an image stem, e.g. ``great_pyrenees`` for ``great_pyrenees_12``."""
    breed, sep, number = name.rpartition("_")
    if not sep or not number.isdigit():
        raise ValueError(f"image name {name!r} is not of the form <Breed>_<number>")
    return breed


def entry_from_name(name: str) -> ListEntry:
    """Derives label and species from an image stem alone (for inputs without list files).

    Raises:
        ValueError: if the name's breed is not one of the 37 PETS breeds.
    """
    breed = breed_of(name)
    if breed not in _BREED_INDEX:
        raise ValueError(f"image name {name!r} has unknown breed {breed!r}; expected one of the 37 PETS breeds")
    return ListEntry(name=name, label=_BREED_INDEX[breed], species=0 if breed in CAT_BREEDS else 1)


def parse_list_file(text: str, source: str = "<list>") -> list[ListEntry]:
    """Parses a PETS list file; ``#`` lines and blank lines are skipped, a UTF-8 byte-order mark is ignored.

    Args:
        text: The file's contents.
        source: The file's path, quoted in errors.

    Returns:
        One entry per row, in file order.

    Raises:
        ListFileError: on a row that is not ``name class_id species breed_id`` with ids written as plain decimal
            digits (``int()`` would also take ``3_3`` or ``+3``), in range, and a species that matches the class.
    """
    entries = []
    for lineno, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or not all(f.isascii() and f.isdigit() for f in fields[1:]):
            raise ListFileError(f"{source}:{lineno}: expected 'name class_id species breed_id', got {line!r}")
        name, class_id, species, breed_id = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
        if not 1 <= class_id <= len(BREEDS) or species not in (1, 2) or breed_id < 1:
            raise ListFileError(
                f"{source}:{lineno}: class id {class_id}, species {species} or breed id {breed_id} out of range "
                f"(class 1..{len(BREEDS)}, species 1..2, breed id >= 1) in {line!r}"
            )
        expected_species = 1 if BREEDS[class_id - 1] in CAT_BREEDS else 2
        if species != expected_species:
            raise ListFileError(
                f"{source}:{lineno}: species {species} contradicts class {class_id} ({BREEDS[class_id - 1]}, species "
                f"{expected_species}) in {line!r}"
            )
        entries.append(ListEntry(name=name, label=class_id - 1, species=species - 1))
    return entries


def image_stem(path: str) -> str:
    """Returns a file's name without directory and extension (``a/b/Bombay_3.jpg`` → ``Bombay_3``)."""
    return posixpath.splitext(posixpath.basename(path))[0]


def merge_split_lists(splits: Iterable[tuple[str, list[ListEntry]]]) -> dict[str, tuple[str, ListEntry]]:
    """Maps each listed image name to ``(split, entry)``; a name in two lists is an error.

    Raises:
        ListFileError: if a name appears twice, which would make its split ambiguous.
    """
    merged: dict[str, tuple[str, ListEntry]] = {}
    for split, entries in splits:
        for entry in entries:
            if entry.name in merged:
                raise ListFileError(
                    f"image {entry.name!r} is listed twice (in {merged[entry.name][0]!r} and {split!r}); "
                    "fix the split lists so every image has one split"
                )
            merged[entry.name] = (split, entry)
    return merged
