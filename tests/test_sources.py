"""Input discovery: file classification and clear errors for inputs we cannot read."""

from __future__ import annotations

import os

import pytest

from beam_seg.data import provenance, sources


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
        ("./annotations/beam_seg_sample.json", ("", "")),  # The sample data's marker: not junk.
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
    for name in ("trainval.txt", "test.txt"):
        os.remove(os.path.join(pets_copy, "annotations", name))
    assert sources.find_input(pets_copy).listing is None


def test_group_extracted_files_pairs_every_listed_name_and_keys_junk_by_path(pets_dir):
    source = sources.find_input(pets_dir.root, "extracted")
    groups = dict(sources.group_extracted_files(source))
    assert list(groups) == sorted(groups)
    for name in source.listing:  # every listed name appears, with its listing entry
        assert groups[name]["listing"] == [sources.listed_item(source.listing[name])]
    paired = [g for g in groups.values() if {k for k, _ in g["files"]} == {sources.IMAGE, sources.TRIMAP}]
    assert paired and all(path.endswith(".png") for g in paired for k, path in g["files"] if k == sources.TRIMAP)
    junk = {key: g for key, g in groups.items() if any(k == sources.IGNORED for k, _ in g["files"])}
    assert junk and all("/" in key and not g["listing"] for key, g in junk.items())  # keyed by path, never listed


def test_find_input_tells_the_sample_data_from_the_official_data(pets_dir, pets_copy):
    """The sample data's marker is found in both layouts; without it the input is the official data."""
    for layout in ("extracted", "archives"):
        dataset = sources.find_input(pets_dir.root, layout).dataset
        assert dataset["synthetic"] is True and dataset["num_images"] == 60 and dataset["seed"] == 1, layout
        assert dataset["source"] == provenance.SAMPLE_MARKER and "/" + pets_dir.root not in str(dataset)
    os.remove(os.path.join(pets_copy, provenance.SAMPLE_MARKER))
    assert sources.find_input(pets_copy).dataset == provenance.OFFICIAL


def test_an_unreadable_marker_is_refused_naming_it(pets_copy):
    marker = os.path.join(pets_copy, provenance.SAMPLE_MARKER)
    with open(marker, "w") as f:
        f.write("[1, 2]")
    with pytest.raises(
        provenance.ProvenanceError,
        match=rf"^{marker} is not the JSON object .* \(it holds list '\[1, 2\]'\); make the sample data again",
    ):
        sources.find_input(pets_copy)
