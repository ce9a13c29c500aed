"""The fast contingency-table path against the literal official transcription (benchmarks/_official_components.py)."""

import pickle
from fractions import Fraction

import numpy as np
import pytest

from maskbench.metrics.component_frame import TAUS, frame_component_stats
from maskbench.metrics.components import ComponentAccumulator

SIZES = [(0, 0), (1, 1), (3, 2), (6, 4), (12, 6), (20, 10)]


def _same_floats(a, b):
    """Same length, same order, bit-identical float64 values."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def _check_frame(helpers, scores, gt, threshold, min_pred, min_gt, **kwargs):
    ref = helpers.official.official_frame(scores, helpers.official_labels(gt), threshold, min_pred, min_gt)
    ours = frame_component_stats(scores, gt, threshold, min_pred_size=min_pred, min_gt_size=min_gt,
                                 score_dtype=scores.dtype, **kwargs)
    assert _same_floats(ours.siou_gt, ref["sIoU_gt"])
    assert _same_floats(ours.siou_pred, ref["sIoU_pred"])
    assert _same_floats(ours.ppv, ref["prec_pred"])
    for name, arr in (("tp", ours.tp), ("fn", ours.fn), ("fp", ours.fp)):
        assert arr.tolist() == [ref[f"{name}_{int(t * 100)}"] for t in TAUS]
    gt_ids, pred_ids = helpers.official.official_instancer(scores, helpers.official_labels(gt), threshold, min_pred, min_gt)
    assert ours.gt_ids.tolist() == np.unique(gt_ids[gt_ids > 0]).tolist()
    assert ours.pred_ids.tolist() == np.unique(pred_ids[pred_ids > 0]).tolist()
    return ref, ours


@pytest.mark.parametrize("seed", range(120))
def test_random_frames_match_official(seed, helpers):
    rng = np.random.default_rng(seed)
    dtype = np.float16 if seed % 3 else np.float32
    scores, gt, threshold = helpers.random_frame(rng, dtype=dtype)
    min_pred, min_gt = SIZES[seed % len(SIZES)]
    _check_frame(helpers, scores, gt, threshold, min_pred, min_gt)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("track", ["anomaly", "obstacle"])
def test_track_sizes_match_official(seed, track, helpers):
    """Track defaults (anomaly 500/100 px, obstacle 50/10 px) on larger frames with scaled-up blobs."""
    rng = np.random.default_rng(1000 + seed)
    scale = 5 if track == "anomaly" else 2
    scores, gt, threshold = helpers.random_frame(rng, height=60 * scale, width=80 * scale, scale=scale)
    min_pred, min_gt = {"anomaly": (500, 100), "obstacle": (50, 10)}[track]
    ref = helpers.official.official_frame(scores, helpers.official_labels(gt), threshold, min_pred, min_gt)
    ours = frame_component_stats(scores, gt, threshold, track=track)
    assert _same_floats(ours.siou_gt, ref["sIoU_gt"])
    assert _same_floats(ours.ppv, ref["prec_pred"])
    assert _same_floats(ours.siou_pred, ref["sIoU_pred"])


def test_background_smaller_than_min_gt_is_voided_like_official(helpers):
    """The official ``range(nG + 1)`` loop also voids the background (label 0) when it has < min_gt px."""
    rng = np.random.default_rng(7)
    gt = np.ones((12, 12), dtype=np.uint8)
    gt[0, :5] = 0          # background = 5 px of label 0 + 1 void px = 6 px < min_gt = 7: it becomes void
    gt[11, 11] = 255
    scores = rng.uniform(0, 1, size=gt.shape).astype(np.float16)
    scores[0, :5] = 0.99   # a prediction on the background (vanishes with the voided background)
    ref, ours = _check_frame(helpers, scores, gt, 0.5, 1, 7)
    assert ours.ppv.size == 1 and ours.ppv[0] == 1.0  # the 5 background px of the prediction left the ROI
    _, kept = _check_frame(helpers, scores, gt, 0.5, 1, 6)  # 6 px is not < 6: background stays
    assert kept.ppv[0] < 1.0


def _exact_pooled_mean(arrays):
    values = [Fraction(float(v)) for a in arrays for v in a]
    return float(sum(values, Fraction(0)) / len(values))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_dataset_aggregate_matches_official(dtype, helpers):
    rng = np.random.default_rng(42 if dtype == np.float16 else 43)
    frames = [helpers.random_frame(rng, height=48, width=64, dtype=dtype) for _ in range(25)]
    threshold = frames[0][2]  # one threshold for the split
    refs = [helpers.official.official_frame(s, helpers.official_labels(g), threshold, 6, 4) for s, g, _ in frames]
    expected = helpers.official.official_aggregate(refs)

    acc = ComponentAccumulator(threshold, min_pred_size=6, min_gt_size=4, score_dtype=dtype)
    for scores, gt, _ in frames:
        acc.update(scores, gt)
    res = acc.compute()
    assert res.tp == expected["tp"] and res.fn == expected["fn"] and res.fp == expected["fp"]
    assert res.f1_per_tau == expected["f1"]
    assert res.f1 == expected["f1_mean"]  # bit-identical: integer counts, same τ-ordered sum
    assert res.n_gt_components == sum(len(r["sIoU_gt"]) for r in refs)
    assert res.n_pred_components == sum(len(r["prec_pred"]) for r in refs)
    assert res.n_images == 25 and res.n_skipped == 0 and res.notes == {}
    # pooled means: the exactly rounded mean of the official per-component values; the official sequential
    # float sum agrees to the last few bits
    assert res.siou == _exact_pooled_mean(r["sIoU_gt"] for r in refs)
    assert res.ppv == _exact_pooled_mean(r["prec_pred"] for r in refs)
    assert res.siou_pred == _exact_pooled_mean(r["sIoU_pred"] for r in refs)
    assert res.siou == pytest.approx(expected["sIoU_gt"], rel=1e-14, abs=0)
    assert res.ppv == pytest.approx(expected["prec_pred"], rel=1e-14, abs=0)


def test_merge_is_exact_and_order_independent(helpers):
    rng = np.random.default_rng(5)
    frames = [helpers.random_frame(rng, height=40, width=56) for _ in range(12)]
    threshold = 0.5
    whole = ComponentAccumulator(threshold, track="obstacle", min_pred_size=4, min_gt_size=3)
    for s, g, _ in frames:
        whole.update(s, g)
    parts = []
    for chunk in (frames[:5], frames[5:6], frames[6:]):
        acc = ComponentAccumulator(threshold, track="obstacle", min_pred_size=4, min_gt_size=3)
        for s, g, _ in chunk:
            acc.update(s, g)
        parts.append(pickle.loads(pickle.dumps(acc)))  # as from a worker process
    forward = ComponentAccumulator(threshold, track="obstacle", min_pred_size=4, min_gt_size=3)
    for p in parts:
        forward.merge(pickle.loads(pickle.dumps(p)))
    backward = ComponentAccumulator(threshold, track="obstacle", min_pred_size=4, min_gt_size=3)
    for p in reversed(parts):
        backward.merge(p)
    a, b, c = whole.compute(), forward.compute(), backward.compute()
    assert a == b == c
    assert a.n_images == 12
    assert len(pickle.dumps(whole)) < 4000


def test_accumulator_add_of_worker_stats_equals_update(helpers):
    rng = np.random.default_rng(9)
    frames = [helpers.random_frame(rng, height=40, width=40) for _ in range(6)]
    direct = ComponentAccumulator(0.45, min_pred_size=5, min_gt_size=3)
    via_stats = ComponentAccumulator(0.45, min_pred_size=5, min_gt_size=3)
    for s, g, _ in frames:
        direct.update(s, g)
        via_stats.add(pickle.loads(pickle.dumps(
            frame_component_stats(s, g, 0.45, min_pred_size=5, min_gt_size=3))))
    assert direct.compute() == via_stats.compute()


def test_strided_and_fortran_inputs_give_the_same_result(helpers):
    rng = np.random.default_rng(11)
    scores, gt, threshold = helpers.random_frame(rng, height=40, width=50)
    ref = frame_component_stats(scores, gt, threshold, min_pred_size=3, min_gt_size=2)
    big_s = np.zeros((80, 100), dtype=scores.dtype)
    big_g = np.full((80, 100), 255, dtype=np.uint8)
    big_s[::2, ::2], big_g[::2, ::2] = scores, gt
    for s, g in ((np.asfortranarray(scores), np.asfortranarray(gt)), (big_s[::2, ::2], big_g[::2, ::2])):
        out = frame_component_stats(s, g, threshold, min_pred_size=3, min_gt_size=2)
        assert _same_floats(out.siou_gt, ref.siou_gt) and _same_floats(out.ppv, ref.ppv)
        assert out.pred_ids.tolist() == ref.pred_ids.tolist()


def test_empty_frame_is_skipped():
    stats = frame_component_stats(np.zeros((0, 5), np.float16), np.zeros((0, 5), np.uint8), 0.5)
    assert stats.skipped
