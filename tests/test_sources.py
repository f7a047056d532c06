"""Input discovery: file classification and clear errors for inputs we cannot read."""

from __future__ import annotations

import pytest

from beam_seg import sources


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/d/images/Bombay_1.jpg", ("image", "Bombay_1")),
        ("gs://b/x/images/beagle_2.JPEG", ("image", "beagle_2")),
        ("images/Bombay_1.mat", ("ignored", "unexpected_image_extension_mat")),
        ("./annotations/trimaps/Bombay_1.png", ("trimap", "Bombay_1")),
        ("annotations/trimaps/._Bombay_1.png", ("ignored", "appledouble_file")),
        ("annotations/xmls/Bombay_1.xml", ("", "")),
        ("annotations/list.txt", ("", "")),
    ],
)
def test_classify_path(path, expected):
    assert sources.classify_path(path) == expected


def test_find_input_reads_split_lists(pets_dir):
    found = sources.find_input(pets_dir.root, "extracted")
    assert found.layout == "extracted"
    assert len(found.listing) == len(pets_dir.trainval) + len(pets_dir.test)
    archived = sources.find_input(pets_dir.root)  # auto: both archives present
    assert archived.layout == "archives" and archived.listing == found.listing


def test_find_input_errors_name_the_path(tmp_path):
    with pytest.raises(sources.InputError, match=str(tmp_path)):
        sources.find_input(str(tmp_path))
    with pytest.raises(sources.InputError, match="lacks"):
        sources.find_input(str(tmp_path), "archives")
    with pytest.raises(sources.InputError, match="unknown input layout 'zip'"):
        sources.find_input(str(tmp_path), "zip")


def test_input_without_split_lists_has_no_listing(pets_copy):
    import os

    for name in ("trainval.txt", "test.txt"):
        os.remove(os.path.join(pets_copy, "annotations", name))
    assert sources.find_input(pets_copy).listing is None
