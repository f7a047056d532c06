"""The report combiner: merging partial accumulators equals one sequential pass, and matches numpy."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from beam_seg.data.report import DatasetReportFn
from beam_seg.data.stats import ERROR, IGNORED, STATS, example_stats


def _contributions(n: int):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        h, w = int(rng.integers(5, 20)), int(rng.integers(5, 20))
        px = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, (h, w), dtype=np.uint8)
        stats = example_stats(
            Image.fromarray(px),
            Image.fromarray(mask),
            source_height=h * 2,
            source_width=w,
            record_bytes=100 + i,
            conversion="JPEG/L" if i % 3 == 0 else "",
        )
        items.append((px, mask, stats))
    return items


def test_merge_equals_sequential_and_matches_numpy():
    items = _contributions(30)
    reported = [(STATS, "train", s) for *_, s in items]
    reported += [(ERROR, {"name": f"img_{i}", "reason": "missing_trimap"}) for i in (3, 1, 2)]
    reported += [(IGNORED, "appledouble_file"), (IGNORED, "unlisted_image"), (IGNORED, "appledouble_file")]
    reported = reported[::2] + reported[1::2]  # interleave the kinds
    fn = DatasetReportFn()
    sequential = fn.create_accumulator()
    for item in reported:
        fn.add_input(sequential, item)
    parts = []
    for chunk in (reported[:7], reported[7:20], reported[20:]):
        acc = fn.create_accumulator()
        for item in chunk:
            fn.add_input(acc, item)
        parts.append(acc)
    merged = fn.merge_accumulators(parts)
    assert fn.extract_output(merged) == fn.extract_output(sequential)

    report = fn.extract_output(sequential)
    assert [e["name"] for e in report["errors"]] == ["img_1", "img_2", "img_3"]
    assert report["ignored"] == {"appledouble_file": 2, "unlisted_image": 1}
    out = report["splits"]["train"]
    all_px = np.concatenate([p.reshape(-1, 3) for p, _, _ in items]).astype(np.float64)
    np.testing.assert_allclose(out["channel_mean"], all_px.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(out["channel_std"], all_px.std(axis=0), atol=1e-3)
    masks = np.concatenate([m.ravel() for _, m, _ in items])
    assert out["class_pixel_fractions"]["pet"] == round(float((masks == 0).mean()), 6)
    assert out["num_examples"] == 30 and out["conversions"] == {"JPEG/L": 10}
    heights = [p.shape[0] for p, _, _ in items]
    assert out["height"] == {"min": min(heights), "max": max(heights), "mean": round(sum(heights) / 30, 3)}
    assert out["source_height"]["max"] == 2 * max(heights)


def test_unknown_report_item_is_an_error():
    fn = DatasetReportFn()
    with pytest.raises(ValueError, match="'bogus'"):
        fn.add_input(fn.create_accumulator(), ("bogus", 1))
