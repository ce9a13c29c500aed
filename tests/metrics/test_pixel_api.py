"""PixelAccumulator API: validation at the door, merge rules, degenerate splits, count overflow."""

import numpy as np
import pytest

from maskbench.errors import InputError
from maskbench.metrics.exact_runs import Runs, merge_runs
from maskbench.metrics.pixel import PROTOCOLS, PixelAccumulator, pixel_metrics

S = np.array([[0.1, 0.9], [0.4, 0.6]], np.float32)
G = np.array([[0, 1], [255, 0]], np.uint8)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("scores, gt, match", [
    (np.array([[0.1, np.nan]], np.float32), np.zeros((1, 2), np.uint8), "NaN"),
    (np.array([[0.1, np.inf]], np.float32), np.zeros((1, 2), np.uint8), "infinite"),
    (np.array([[0.1, 0.2]], np.float64), np.zeros((1, 2), np.uint8), "float16 or float32"),
    (np.zeros((2, 2, 1), np.float32), np.zeros((2, 2, 1), np.uint8), "2-D"),
    (np.zeros((2, 2), np.float32), np.zeros((2, 3), np.uint8), "differs from score shape"),
    (np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int64), "uint8"),
])
def test_bad_input(protocol, scores, gt, match):
    acc = PixelAccumulator(protocol)
    with pytest.raises(InputError, match=match):
        acc.update(scores, gt)
    assert acc.n_images == 0


def test_bad_options():
    with pytest.raises(InputError, match="protocol"):
        PixelAccumulator("sklearn")
    with pytest.raises(InputError, match="fpr95_rule"):
        PixelAccumulator("exact", fpr95_rule="first")
    with pytest.raises(InputError, match="only 'first_geq'"):
        PixelAccumulator("smiyc", fpr95_rule="closest")
    with pytest.raises(InputError, match="protocol/rule differ"):
        PixelAccumulator("exact").merge(PixelAccumulator("exact16"))
    with pytest.raises(InputError, match="protocol/rule differ"):
        PixelAccumulator("exact").merge(PixelAccumulator("exact", fpr95_rule="closest"))
    with pytest.raises(InputError, match="image 1"):
        pixel_metrics([S, S[:1]], [G, G])
    with pytest.raises(InputError, match="2 score maps but 1"):
        pixel_metrics([S, S], [G])


@pytest.mark.parametrize("protocol", ["exact16", "smiyc", "smiyc-legacy"])
def test_float16_overflow_is_an_error(protocol):
    with pytest.raises(InputError, match="overflows float16"):
        PixelAccumulator(protocol).update(np.array([[1.0, 70000.0]], np.float32), np.zeros((1, 2), np.uint8))
    res = pixel_metrics([np.array([[1.0, 70000.0]], np.float32)], [np.array([[0, 1]], np.uint8)], "exact")
    assert res.ap == 1.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_degenerate_splits(protocol):
    empty = PixelAccumulator(protocol).compute()
    assert empty.ap is None and empty.n_images == 0 and empty.n_pixels == 0 and "no anomaly" in empty.notes["ap"]
    only_pos = pixel_metrics([S], [np.ones((2, 2), np.uint8)], protocol)
    # legacy SMIYC integrates trapz(precision, recall) from the first point (recall 1/2 here), not from 0
    assert only_pos.ap == (0.75 if protocol == "smiyc-legacy" else 1.0)
    assert only_pos.auroc is None and only_pos.fpr95 is None
    assert "no inlier" in only_pos.notes["auroc"]
    void = np.full((2, 2), 255, np.uint8)
    res = pixel_metrics([S, S], [G, void], protocol)
    # (legacy SMIYC: one positive -> its curve starts at recall 1 and trapz gives AP 0)
    assert res.n_images == 2 and res.n_pixels == 3 and res.auroc == 1.0
    assert res.ap == (0.0 if protocol == "smiyc-legacy" else 1.0)
    assert res.fpr95 == 0.0 and res.mdm_f1_60 is not None
    assert ("frames" in res.notes) == (protocol == "smiyc")


def test_labels_other_than_0_1_are_void():
    g = np.array([[0, 1], [7, 2]], np.uint8)
    res = pixel_metrics([S], [g], "exact")
    assert res.n_pixels == 2 and res.n_positive == 1


def test_merge_count_overflow_widens():
    big = 2**32 - 10
    u32 = lambda *v: np.array(v, np.uint32)  # noqa: E731
    a = Runs(u32(5, 9), u32(big, 1), u32(0, 3), 0, big)
    b = Runs(u32(5, 7), u32(20, 2), u32(big, 4), 0, big)
    keys, pos, neg, _, _ = merge_runs(a, b)
    assert keys.tolist() == [5, 7, 9]
    assert pos.dtype == np.uint64 and pos.tolist() == [2**32 + 10, 2, 1] and neg.tolist() == [2**32 - 10, 4, 3]
    # a loose bound (e.g. frame sizes) alone does not widen: the true maxima fit uint32
    half = Runs(u32(5, 9), u32(2**31, 1), u32(0, 3), 0, 2**32)
    keys, pos, neg, _, bound = merge_runs(half, Runs(u32(5, 7), u32(20, 2), u32(2**31 - 30, 4), 0, 2**32))
    assert pos.dtype == np.uint32 and pos.tolist() == [2**31 + 20, 2, 1] and neg.tolist() == [2**31 - 30, 4, 3]
    assert bound == 2**32 - 30
    # once wide, merges stay wide
    keys, pos, neg, _, _ = merge_runs(merge_runs(a, b), Runs(u32(1), u32(1), u32(0), 0, 1))
    assert pos.dtype == np.uint64 and keys.tolist() == [1, 5, 7, 9]


def test_exact16_state_does_not_grow():
    acc = PixelAccumulator("exact16")
    r = np.random.default_rng(0)
    sizes = set()
    for _ in range(5):
        acc.update(r.random((64, 64), dtype=np.float32), (r.random((64, 64)) < 0.1).astype(np.uint8))
        sizes.add(sum(v.nbytes for v in acc.state().values() if isinstance(v, np.ndarray)))
    assert sizes == {2 * 65536 * 8}


def test_result_states_protocol():
    d = pixel_metrics([S], [G], "exact16").to_dict()
    assert d["protocol"] == "exact16" and d["fpr95_rule"] == "first_geq" and d["score_dtype"] == "float16"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_compute_midway_then_continue(pixref, protocol):
    scores, labels = pixref.make_frames(8, n_frames=4, max_side=30)
    acc = PixelAccumulator(protocol)
    for s, g in zip(scores[:2], labels[:2]):
        acc.update(s, g)
    first = acc.compute()
    assert acc.compute().to_dict() == first.to_dict()
    for s, g in zip(scores[2:], labels[2:]):
        acc.update(s, g)
    assert acc.compute().to_dict() == pixel_metrics(scores, labels, protocol).to_dict()


def test_merge_into_itself_is_refused():
    acc = PixelAccumulator("exact")
    with pytest.raises(InputError, match="itself"):
        acc.merge(acc)
