"""The sample-data maker writes the official PETS layout, deterministically."""

from __future__ import annotations

import filecmp
import json
import os
import tarfile

from beam_seg.data import lists, provenance
from beam_seg.data import sample as sample_data


def test_layout_lists_and_faults(pets_dir):
    root = pets_dir.root
    ann = os.path.join(root, "annotations")
    listed = lists.parse_list_file(open(os.path.join(ann, "list.txt")).read())
    assert open(os.path.join(ann, "list.txt")).read().startswith("#Image CLASS-ID SPECIES BREED ID")
    assert len(listed) == 60 == len(pets_dir.trainval) + len(pets_dir.test)
    for entry in listed:
        assert lists.entry_from_name(entry.name) == entry  # ids agree with the breed naming convention
        assert os.path.exists(os.path.join(root, "images", entry.name + ".jpg"))
        assert os.path.exists(os.path.join(ann, "trimaps", entry.name + ".png"))
    assert set(pets_dir.faults.values()) == set(sample_data.FAULT_KINDS)
    assert any(j.endswith(".mat") for j in pets_dir.junk) and any("/._" in j for j in pets_dir.junk)
    assert all(os.path.exists(a) for a in pets_dir.archives)


def test_same_seed_same_files(tmp_path):
    a = sample_data.make_sample_data(str(tmp_path / "a"), num_images=12, min_size=32, max_size=48, seed=5)
    b = sample_data.make_sample_data(str(tmp_path / "b"), num_images=12, min_size=32, max_size=48, seed=5)
    for sub in ("images", "annotations/trimaps"):
        cmp = filecmp.dircmp(os.path.join(a.root, sub), os.path.join(b.root, sub))
        assert not cmp.diff_files and not cmp.left_only and not cmp.right_only
    marker = provenance.SAMPLE_MARKER
    assert filecmp.cmp(os.path.join(a.root, marker), os.path.join(b.root, marker), shallow=False)


def test_cli_rejects_too_few_images(tmp_path):
    assert sample_data.run(["--output_dir", str(tmp_path), "--num_images", "3"]) == 2


def test_the_marker_says_synthetic_in_the_folders_and_in_the_annotations_archive(pets_dir):
    """The marker lives in annotations/, which the extracted layout and annotations.tar.gz both carry."""
    with open(os.path.join(pets_dir.root, provenance.SAMPLE_MARKER), "rb") as f:
        marker = f.read()
    assert json.loads(marker) == {
        "dataset": "beam_seg synthetic sample",
        "generator": "python -m beam_seg.sample_data",
        "seed": 1,
        "num_images": 60,
        "min_size": 64,
        "max_size": 160,
        "test_fraction": 0.5,
        "faults": True,
    }
    images, annotations = pets_dir.archives
    with tarfile.open(annotations) as tar:
        assert tar.extractfile(provenance.SAMPLE_MARKER).read() == marker
    with tarfile.open(images) as tar:
        assert not [m for m in tar.getnames() if "beam_seg" in m]
    entry = provenance.dataset_entry(marker)
    assert entry["synthetic"] is True and entry["name"] == "synthetic sample data (python -m beam_seg.sample_data)"
    assert provenance.dataset_entry(None) == {
        "name": "Oxford-IIIT Pet",
        "synthetic": False,
        "source": "official layout",
    }
