"""The statistics combiner: merging partial accumulators equals one sequential pass, and matches numpy."""

from __future__ import annotations

import numpy as np

from beam_seg.stats import SplitStatsFn, example_stats


def _contributions(n: int):
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        h, w = int(rng.integers(5, 20)), int(rng.integers(5, 20))
        px = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, (h, w), dtype=np.uint8)
        items.append((px, mask, example_stats(px, mask, source_height=h * 2, source_width=w, record_bytes=100 + i,
                                              conversion="JPEG/L" if i % 3 == 0 else "")))
    return items


def test_merge_equals_sequential_and_matches_numpy():
    items = _contributions(30)
    fn = SplitStatsFn()
    sequential = fn.create_accumulator()
    for *_, s in items:
        fn.add_input(sequential, s)
    parts = []
    for chunk in (items[:7], items[7:20], items[20:]):
        acc = fn.create_accumulator()
        for *_, s in chunk:
            fn.add_input(acc, s)
        parts.append(acc)
    merged = fn.merge_accumulators(parts)
    assert fn.extract_output(merged) == fn.extract_output(sequential)

    out = fn.extract_output(sequential)
    all_px = np.concatenate([p.reshape(-1, 3) for p, _, _ in items]).astype(np.float64)
    np.testing.assert_allclose(out["channel_mean"], all_px.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(out["channel_std"], all_px.std(axis=0), atol=1e-3)
    masks = np.concatenate([m.ravel() for _, m, _ in items])
    assert out["class_pixel_fractions"]["pet"] == round(float((masks == 0).mean()), 6)
    assert out["num_examples"] == 30 and out["conversions"] == {"JPEG/L": 10}
    heights = [p.shape[0] for p, _, _ in items]
    assert out["height"] == {"min": min(heights), "max": max(heights), "mean": round(sum(heights) / 30, 3)}
    assert out["source_height"]["max"] == 2 * max(heights)
