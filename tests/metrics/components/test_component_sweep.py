"""component_sweep (one union-find pass, all thresholds) against frame_component_stats at each threshold."""

import numpy as np
import pytest
from scipy.ndimage import zoom

from maskbench.metrics.component_sweep import component_sweep
from maskbench.metrics.component_frame import frame_component_stats
from maskbench.metrics.components import ComponentAccumulator, ComponentTotals


def frame(rng, h, w):
    gt = np.zeros((h, w), np.uint8)
    gt[rng.random((h, w)) < 0.05] = 255
    gt[: h // 5] = 255
    for _ in range(rng.integers(0, 6)):
        r, c, s = rng.integers(0, h), rng.integers(0, w), rng.integers(1, 8)
        gt[max(r - s, 0):r + s, max(c - s, 0):c + s] = 1
    base = zoom(rng.normal(size=(h // 4 + 1, w // 4 + 1)), 4, order=1)[:h, :w]
    return 1 / (1 + np.exp(-2 * base)) + 0.3 * (gt == 1) + rng.normal(scale=0.05, size=(h, w)), gt


def assert_same(got, ref):
    for field in ("n_images", "n_skipped", "n_gt", "n_pred", "siou_gt_sum", "siou_pred_sum", "ppv_sum"):
        assert getattr(got, field) == getattr(ref, field), field
    for field in ("tp", "fn", "fp"):
        np.testing.assert_array_equal(getattr(got, field), getattr(ref, field))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_matches_frame_stats_at_every_threshold(seed, dtype):
    rng = np.random.default_rng(seed)
    n_pred = n_touch = 0
    for it in range(25):
        scores, gt = frame(rng, int(rng.integers(5, 60)), int(rng.integers(5, 80)))
        scores = scores.astype(rng.choice([np.float16, np.float32]))
        track = ("anomaly", "obstacle")[it % 2]
        sizes = dict(min_pred_size=int(rng.integers(0, 30)), min_gt_size=int(rng.integers(0, 20))) if it % 3 else {}
        flat = scores.reshape(-1).astype(dtype)
        thresholds = list(np.unique(np.round(rng.uniform(0.2, 1.3, size=5), 3)))
        thresholds += [float(rng.choice(flat)), float(np.float16(thresholds[0])) if dtype == np.float16 else 0.5]
        sweep = component_sweep(scores, gt, thresholds, track=track, score_dtype=dtype, **sizes)
        for t in thresholds:
            stats = frame_component_stats(scores, gt, t, track=track, score_dtype=dtype, **sizes)
            assert_same(sweep[t], ComponentTotals.from_stats(stats))
            n_pred += stats.ppv.size
            n_touch += int((stats.ppv > 0).sum())
    assert n_pred > 50 and n_touch > 20  # the cases exercise predictions, touching or not


def test_edge_cases():
    rng = np.random.default_rng(3)
    scores, gt = frame(rng, 40, 50)
    scores = (scores - 0.5).astype(np.float32)  # negative scores too
    cases = [
        (np.full_like(gt, 255), [0.5]),                                   # entirely void: skipped
        (np.where(gt == 1, 0, gt).astype(np.uint8), [0.3, 0.6]),         # no GT component
        (gt, [-1.0, 1e5, 7e4, -7e4, 0.0, -0.0]),                          # below all, beyond float16, signed zero
    ]
    for labels, thresholds in cases:
        for dtype in (np.float16, np.float32):
            sweep = component_sweep(scores, labels, thresholds, score_dtype=dtype, min_pred_size=3)
            for t in thresholds:
                ref = ComponentTotals.from_stats(frame_component_stats(scores, labels, t, score_dtype=dtype,
                                                                       min_pred_size=3))
                assert_same(sweep[t], ref)


def test_background_voided_and_stored_form():
    """A tiny frame whose background is smaller than min_gt_size (the official loop voids it); 1-D scores of the
    labelled pixels give the same totals as the full map."""
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.95, 0.2], [0.1, 0.3, 0.9]], np.float32)
    gt = np.array([[1, 1, 0], [1, 1, 255], [0, 0, 1]], np.uint8)
    for t in (0.05, 0.5, 0.85):
        ref = ComponentTotals.from_stats(frame_component_stats(scores, gt, t, min_pred_size=1, min_gt_size=5))
        assert_same(component_sweep(scores, gt, [t], min_pred_size=1, min_gt_size=5)[t], ref)
        stored = scores[gt <= 1]
        assert_same(component_sweep(stored, gt, [t], min_pred_size=1, min_gt_size=5)[t], ref)


def test_totals_added_twice_equal_a_frame_counted_twice():
    rng = np.random.default_rng(5)
    scores, gt = frame(rng, 30, 30)
    scores = scores.astype(np.float32)
    once = ComponentAccumulator(0.6)
    once.add_totals(component_sweep(scores, gt, [0.6])[0.6], times=2)
    twice = ComponentAccumulator(0.6)
    twice.update(scores, gt)
    twice.update(scores, gt)
    assert once.compute() == twice.compute()
