"""Tests of the PETS vocabulary and the split-list parsing."""

from __future__ import annotations

import pytest

from beam_seg import pets
from beam_seg.data import lists


def test_breeds_are_the_37_official_ones_in_class_id_order():
    assert len(pets.BREEDS) == 37
    assert list(pets.BREEDS) == sorted(pets.BREEDS, key=str.lower)
    assert len(pets.CAT_BREEDS) == 12


def test_parse_list_file_skips_header_and_maps_ids_to_zero_based():
    text = "#Image CLASS-ID SPECIES BREED ID\n#comment\n\nAbyssinian_100 1 1 1\nyorkshire_terrier_9 37 2 25\n"
    entries = lists.parse_list_file(text)
    assert entries == [
        lists.ListEntry("Abyssinian_100", 0, 0),
        lists.ListEntry("yorkshire_terrier_9", 36, 1),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Abyssinian_1 x 1 1",
        "Abyssinian_1",
        "Abyssinian_1 38 1 1",
        "Abyssinian_1 1 3 1",
        "Abyssinian_1 1_0 1 1",  # int() would read 10
        "Abyssinian_1 +1 1 1",
        "Abyssinian_1 １ 1 1",  # a full-width digit, which int() accepts
        "Abyssinian_1 1 1",  # no breed id
        "Abyssinian_1 1 1 1 extra",
        "Abyssinian_1 1 2 1",  # class 1 is a cat breed: species 2 contradicts it
        "Abyssinian_1 1 1 0",
    ],
)
def test_parse_list_file_rejects_bad_rows_quoting_them(line):
    with pytest.raises(lists.ListFileError, match="trainval.txt:1") as e:
        lists.parse_list_file(line + "\n", source="trainval.txt")
    assert line in str(e.value)


def test_parse_list_file_ignores_a_byte_order_mark():
    assert lists.parse_list_file("\ufeffAbyssinian_100 1 1 1\r\n") == [lists.ListEntry("Abyssinian_100", 0, 0)]


def test_entry_from_name_uses_capitalisation_for_species():
    assert lists.entry_from_name("Bombay_3") == lists.ListEntry("Bombay_3", 7, 0)
    assert lists.entry_from_name("great_pyrenees_12") == lists.ListEntry("great_pyrenees_12", 15, 1)
    with pytest.raises(ValueError, match="unknown breed 'unicorn'"):
        lists.entry_from_name("unicorn_1")
    with pytest.raises(ValueError, match="not of the form"):
        lists.entry_from_name("nonumber")


def test_merge_split_lists_rejects_an_image_in_two_splits():
    a = [lists.ListEntry("Bombay_1", 7, 0)]
    with pytest.raises(lists.ListFileError, match="'Bombay_1' is listed twice"):
        lists.merge_split_lists([("trainval", a), ("test", a)])
