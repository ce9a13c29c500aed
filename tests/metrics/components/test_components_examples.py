"""Hand-worked component examples (values computed by hand in the comments) and input validation."""

import numpy as np
import pytest

from maskbench.errors import InputError
from maskbench.metrics.component_frame import TAUS, TRACKS, frame_component_stats
from maskbench.metrics.components import ComponentAccumulator

HI = np.float16(0.9)


def _frame(shape):
    return np.zeros(shape, dtype=np.float16), np.zeros(shape, dtype=np.uint8)


def _stats(scores, gt, threshold=0.5, **kw):
    kw.setdefault("min_pred_size", 0)
    kw.setdefault("min_gt_size", 0)
    return frame_component_stats(scores, gt, threshold, **kw)


def test_taus_are_the_official_float64_linspace():
    assert TAUS.dtype == np.float64 and TAUS.size == 11
    assert TAUS[7] == 0.6000000000000001 and TAUS[7] != 0.6
    assert TRACKS == {"anomaly": (500, 100), "obstacle": (50, 10)}
    with pytest.raises(ValueError):
        TAUS[0] = 0.1


def test_one_prediction_over_two_gt_components_uses_the_adjustment():
    # GT k1 = rows 1-2 x cols 1-2 (4 px), k2 = rows 1-2 x cols 6-7 (4 px); one prediction rows 1-2 x cols 1-7 (14 px).
    # sIoU(k1) = |k1 ∩ P| / |(k1 ∪ P) \ k2| = 4 / (14 - 4) = 0.4, same for k2 (a plain IoU would give 4/14).
    # PPV(P) = 8 / 14 = 4/7; sIoU_pred(P) = 8 / |P ∪ k1 ∪ k2| = 8 / 14.
    scores, gt = _frame((4, 10))
    gt[1:3, 1:3] = 1
    gt[1:3, 6:8] = 1
    scores[1:3, 1:8] = HI
    s = _stats(scores, gt)
    assert s.siou_gt.tolist() == [0.4, 0.4]
    assert s.ppv.tolist() == [4 / 7] and s.siou_pred.tolist() == [8 / 14]
    # TP: 0.4 >= τ for τ in 0.25..0.4; FP: 4/7 = 0.571 < τ for τ in 0.6..0.75
    assert s.tp.tolist() == [2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0]
    assert s.fn.tolist() == [0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2]
    assert s.fp.tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_two_predictions_in_one_gt_component_and_a_background_fp():
    # GT k = rows 0-3 x cols 0-5 (24 px). P1 = rows 0-1 x cols 0-2 (6 px on k), P2 = rows 2-3 x cols 3-7
    # (10 px: 6 on k, 4 on background), 8-connected to nothing else: P1 ends at (1,2), P2 starts at (2,3) -> they
    # touch diagonally, so P1 ∪ P2 is ONE component P (16 px, 12 on k).  sIoU(k) = 12 / (24 + 4) = 3/7.
    # P3 = row 6, cols 0-2 (3 px) on background: PPV 0.  PPV(P) = 12/16 = 0.75.
    scores, gt = _frame((8, 9))
    gt[0:4, 0:6] = 1
    scores[0:2, 0:3] = HI
    scores[2:4, 3:8] = HI
    scores[6, 0:3] = HI
    s = _stats(scores, gt)
    assert s.siou_gt.tolist() == [12 / 28]
    assert s.pred_ids.tolist() == [1, 2] and s.ppv.tolist() == [0.75, 0.0]
    assert s.fp.tolist() == [1] * 11  # P3 always; P never (0.75 < 0.75 is False)
    # with 4-connectivity P1 and P2 would be separate; a 4-px size filter drops P3 (3 px) only
    s = _stats(scores, gt, min_pred_size=4)
    assert s.pred_ids.tolist() == [1] and s.fp.tolist() == [0] * 11


def test_tau_06_edge_sIoU_exactly_three_fifths_is_a_false_negative():
    # GT 5 px (row 0, cols 0-4), prediction 3 px inside it: sIoU = 3/5 = 0.6 (float 0.59999999999999998).
    # τ_7 = 0.6000000000000001 > 0.6, so it is an FN at τ = 0.6 and a TP at τ = 0.55; PPV = 1.
    scores, gt = _frame((3, 8))
    gt[0, 0:5] = 1
    scores[0, 1:4] = HI
    s = _stats(scores, gt)
    assert s.siou_gt.tolist() == [3 / 5] and s.ppv.tolist() == [1.0]
    assert s.tp[6] == 1 and s.tp[7] == 0 and s.fn[7] == 1
    assert s.fp.tolist() == [0] * 11


def test_tau_06_edge_ppv_exactly_three_fifths_is_a_false_positive():
    # GT 3 px (row 0, cols 1-3), prediction 5 px (cols 0-4) covering it: sIoU = 3/5, PPV = 3/5.
    scores, gt = _frame((3, 8))
    gt[0, 1:4] = 1
    scores[0, 0:5] = HI
    acc = ComponentAccumulator(0.5, min_pred_size=0, min_gt_size=0)
    acc.update(scores, gt)
    res = acc.compute()
    assert res.siou == 0.6 and res.ppv == 0.6
    assert res.tp == [1] * 7 + [0] * 4 and res.fn == [0] * 7 + [1] * 4 and res.fp == [0] * 7 + [1] * 4
    # F1_τ = 1 for the 7 lowest τ, 0 for the 4 highest: F1* = 7/11 (sequential sum in τ order)
    assert res.f1_per_tau == [1.0] * 7 + [0.0] * 4
    assert res.f1 == 7.0 / 11


def test_strict_threshold_and_float16_rounding_of_the_threshold():
    # t = 0.10002 rounds UP in float16, to 0.10003662109375. A 6x6 blob holding exactly that float16 value:
    # * float16 protocol (numpy 1.x, the official numbers): 0.10003662 > 0.10003662 is False -> no prediction;
    # * numpy 2 comparing the float16 map with np.float64(t) would select all 36 px (0.10003662 > 0.10002).
    t = 0.10002
    assert float(np.float16(t)) == 0.10003662109375
    scores, gt = _frame((10, 10))
    gt[2:8, 2:8] = 1
    scores[2:8, 2:8] = np.float16(t)
    assert np.count_nonzero(scores > np.float64(t)) == 36  # the numpy-2 trap this module must avoid
    s = _stats(scores, gt, threshold=t)
    assert s.ppv.size == 0 and s.siou_gt.tolist() == [0.0]
    # the float32 ("exact") protocol compares 0.10003662 > float32(0.10002): one component with sIoU 1
    s32 = _stats(scores.astype(np.float32), gt, threshold=t, score_dtype=np.float32)
    assert s32.siou_gt.tolist() == [1.0] and s32.ppv.tolist() == [1.0]
    # float32 input with the default float16 protocol is cast to float16 first: same as the float16 frame
    s16 = _stats(scores.astype(np.float32), gt, threshold=t)
    assert s16.ppv.size == 0


def test_prediction_is_cut_by_void_before_labelling_and_8_connected():
    # A 4x9 block of high scores with a void column (label 255) at col 4: two components of 4x4 = 16 px.
    # A diagonal pair (7,0)-(8,1) is one 2-px component under 8-connectivity.
    scores, gt = _frame((9, 9))
    scores[0:4, 0:9] = HI
    gt[:, 4] = 255
    scores[7, 0] = scores[8, 1] = HI
    s = _stats(scores, gt)
    assert s.pred_ids.tolist() == [1, 2, 3] and s.ppv.tolist() == [0.0, 0.0, 0.0]
    assert s.siou_gt.size == 0


def test_prediction_size_counts_on_the_full_grid_before_small_gt_is_voided():
    # metrics.md §9.5, anomaly track (500 / 100 px): a 20x26 = 520 px prediction over a 5x6 = 30 px GT object.
    # The GT object (< 100 px) becomes void AFTER the size filter, so the prediction (520 >= 500) is kept with
    # 490 px in the ROI and PPV 0; there is no GT component left (sIoU null).
    scores, gt = _frame((40, 40))
    gt[10:15, 10:16] = 1
    scores[5:25, 5:31] = HI
    s = frame_component_stats(scores, gt, 0.5, track="anomaly")
    assert s.siou_gt.size == 0 and s.ppv.tolist() == [0.0]
    acc = ComponentAccumulator(0.5, track="anomaly")
    acc.update(scores, gt)
    res = acc.compute()
    assert res.siou is None and "siou" in res.notes and res.ppv == 0.0
    assert res.fp == [1] * 11 and res.f1 == 0.0
    # a 19x26 = 494 px prediction is dropped: nothing at all
    scores[24] = 0
    acc = ComponentAccumulator(0.5, track="anomaly")
    acc.update(scores, gt)
    res = acc.compute()
    assert res.ppv is None and res.siou is None and res.f1 is None
    assert set(res.notes) == {"siou", "ppv", "f1"} and res.f1_per_tau == [None] * 11


def test_gt_without_prediction_gives_null_ppv_and_zero_f1():
    scores, gt = _frame((10, 10))
    gt[1:4, 1:4] = 1
    acc = ComponentAccumulator(0.5, track="obstacle", min_gt_size=9)  # the 9-px object survives (9 >= 9)
    acc.update(scores, gt)
    res = acc.compute()
    assert res.siou == 0.0 and res.ppv is None and "ppv" in res.notes
    assert res.fn == [1] * 11 and res.f1 == 0.0 and res.n_gt_components == 1
    acc = ComponentAccumulator(0.5, track="obstacle", min_gt_size=10)  # now it is void: no component
    acc.update(scores, gt)
    assert acc.compute().n_gt_components == 0


def test_entirely_void_frame_is_skipped_with_a_note():
    scores, gt = _frame((6, 6))
    gt[2:4, 2:4] = 1
    scores[2:4, 2:4] = HI
    acc = ComponentAccumulator(0.5, min_pred_size=0, min_gt_size=0)
    acc.update(scores, gt)
    expected = acc.compute()
    void = np.full((6, 6), 255, dtype=np.uint8)
    void[0, 0] = 3  # any non-0/1 value is void
    assert frame_component_stats(scores, void, 0.5).skipped
    acc.update(scores, void)
    res = acc.compute()
    assert res.n_skipped == 1 and res.n_images == 1 and "skipped" in res.notes
    assert (res.siou, res.ppv, res.f1, res.tp) == (expected.siou, expected.ppv, expected.f1, expected.tp) == (1.0, 1.0, 1.0, [1] * 11)


def test_protocol_states_the_settings():
    acc = ComponentAccumulator(0.25, track="obstacle", min_pred_size=7)
    text = acc.compute().protocol
    assert "obstacle" in text and "< 7 px" in text and "< 10 px" in text and "float16" in text


@pytest.mark.parametrize("call, match", [
    (lambda: frame_component_stats(np.zeros((4, 4)), np.zeros((4, 4), np.uint8), 0.5), "scores.*float64"),
    (lambda: frame_component_stats(np.zeros((2, 4, 4), np.float16), np.zeros((2, 4, 4), np.uint8), 0.5), "2-D"),
    (lambda: frame_component_stats(np.full((4, 4), np.nan, np.float32), np.zeros((4, 4), np.uint8), 0.5), "NaN"),
    (lambda: frame_component_stats(np.zeros((4, 4), np.float16), np.zeros((4, 4), np.int32), 0.5), "gt.*uint8"),
    (lambda: frame_component_stats(np.zeros((4, 4), np.float16), np.zeros((4, 5), np.uint8), 0.5), "gt.*shape"),
    (lambda: frame_component_stats(np.zeros((4, 4), np.float16), np.zeros((4, 4), np.uint8), float("nan")), "threshold"),
    (lambda: ComponentAccumulator("0.5"), "threshold"),
    (lambda: ComponentAccumulator(None), "threshold"),
    (lambda: ComponentAccumulator(True), "threshold"),
    (lambda: ComponentAccumulator(0.5, track="lostandfound"), "track"),
    (lambda: ComponentAccumulator(0.5, min_pred_size=-1), "min_pred_size"),
    (lambda: ComponentAccumulator(0.5, min_gt_size=2.5), "min_gt_size"),
    (lambda: ComponentAccumulator(0.5, score_dtype=np.float64), "score_dtype"),
    (lambda: ComponentAccumulator(0.5, score_dtype="banana"), "score_dtype"),
    (lambda: ComponentAccumulator(0.5).merge(ComponentAccumulator(0.6)), "merge"),
    (lambda: ComponentAccumulator(0.5).merge(ComponentAccumulator(0.5, track="obstacle")), "merge"),
    (lambda: ComponentAccumulator(0.5).merge({}), "merge"),
])
def test_bad_input_raises_input_error(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_accumulator_update_rejects_bad_frames():
    acc = ComponentAccumulator(0.5)
    with pytest.raises(InputError, match="gt"):
        acc.update(np.zeros((4, 4), np.float16), np.zeros((3, 4), np.uint8))
    assert acc.compute().n_images == 0


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_scores_raise_input_error(dtype, bad):
    scores, gt = _frame((5, 7))
    scores = scores.astype(dtype)
    scores[4, 6] = bad
    gt[4, 6] = 255  # even in void
    for score_dtype in (np.float16, np.float32):  # the protocol's dtype equal to or different from the input's
        with pytest.raises(InputError, match="NaN or infinite"):
            frame_component_stats(scores, gt, 0.5, score_dtype=score_dtype)
        with pytest.raises(InputError, match="NaN or infinite"):
            ComponentAccumulator(0.5, score_dtype=score_dtype).update(scores, gt)


def test_float32_beyond_float16_range_is_cast_to_inf_like_the_official_storage():
    # 1e6 does not fit float16: the float16 protocol stores +inf (as the official astype(np.float16)), which is
    # above any threshold; the 2x2 GT object is then found exactly.
    scores = np.zeros((6, 6), dtype=np.float32)
    gt = np.zeros((6, 6), dtype=np.uint8)
    gt[1:3, 1:3] = 1
    scores[1:3, 1:3] = 1e6
    for t in (60000.0, 70000.0, 1e300):  # numpy 1.x compares these in float16 / float32 / float64: inf > t
        s = _stats(scores, gt, threshold=t)
        assert s.siou_gt.tolist() == [1.0] and s.ppv.tolist() == [1.0]
    s = _stats(scores, gt, threshold=np.inf)  # inf > inf is False
    assert s.ppv.size == 0 and s.siou_gt.tolist() == [0.0]


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_extreme_thresholds_follow_numpy1_value_based_casting(dtype, helpers):
    # Isolated pixels (void around them) holding values near the float16 / float32 limits; float32 values beyond
    # the float16 range become +-inf in the float16 protocol. Each predicted pixel is one component, so the
    # predicted ids say exactly which pixels are above the threshold.
    raw = np.array([0, -0.0, 1, 64992, 65000, 65024, 65504, 65519, 1e6, -1e6, -65504, 3.4e38, -3.4e38,
                    3.4028234e38, 1e-45, -1e-45], dtype=np.float32)
    scores = np.zeros((3, 2 * raw.size), dtype=np.float32)
    scores[1, ::2] = raw
    gt = np.full(scores.shape, 255, dtype=np.uint8)
    gt[1, ::2] = 0
    with np.errstate(over="ignore"):
        stored = scores.astype(dtype)  # what the official code reads
    for t in [0.0, -0.0, 64990.0, 64999.0, 65000.0, 65010.0, 65504.0, 65519.0, 65520.0, 70000.0, -70000.0,
              3.39e38, 3.4e38, 3.4028234e38, 3.5e38, -3.5e38, 1e300, np.inf, -np.inf, 1e-46, -1e-46,
              np.float32(65010.5), np.float16(65504), np.float32(3.4028235e38)]:
        _, labels = helpers.official.official_instancer(stored, gt, t, 0, 0)
        ours = frame_component_stats(scores, gt, t, score_dtype=dtype, min_pred_size=0, min_gt_size=0)
        assert ours.pred_ids.tolist() == np.unique(labels[labels > 0]).tolist(), t
