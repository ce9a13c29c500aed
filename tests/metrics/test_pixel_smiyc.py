"""smiyc / smiyc-legacy against the literal transcription of the official code (conftest.smiyc_reference).

Equality is exact: the fast path builds each frame's bins from an exact float16 histogram instead of
np.quantile/np.histogram on the pixels, but the aggregated arrays and the numpy reductions over them are the
same, so every float comes out bit-identical.
"""

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskbench.metrics.pixel import PixelAccumulator, pixel_metrics
from maskbench.metrics.pixel_result import PixelResult

PROTOCOLS = ("smiyc", "smiyc-legacy")

frames_args = st.fixed_dictionaries(dict(
    seed=st.integers(0, 2**31),
    n_frames=st.integers(1, 4),
    max_side=st.sampled_from([6, 30, 60]),  # 60x60 frames exceed 384 pixels per class: real quantiles
    kind=st.sampled_from(["prob", "logit", "energy"]),
    n_distinct=st.sampled_from([0, 0, 1, 2, 5]),
    dtype=st.sampled_from([np.float32, np.float16]),
    p_pos=st.sampled_from([0.02, 0.3, 0.97]),
    all_void=st.booleans(),
    no_pos_frame=st.booleans(),
))


def _check(res, ref):
    if ref is None or res.n_positive == 0:
        assert res.ap is None and res.threshold is None
        return
    assert res.ap == ref["ap"]
    assert res.threshold == ref["threshold"]
    np.testing.assert_array_equal(res._curve["thresholds"], ref["thresholds"])
    if res.n_pixels > res.n_positive:
        assert res.auroc == ref["auroc"]
        assert res.fpr95 == ref["fpr95"]
    else:
        assert res.auroc is None and res.fpr95 is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(args=frames_args, order_seed=st.integers(0, 1000))
def test_matches_official_transcription(pixref, protocol, args, order_seed):
    scores, labels = pixref.make_frames(**args)
    legacy = protocol == "smiyc-legacy"
    ref = pixref.smiyc_reference(scores, labels, legacy=legacy)
    # frames in a shuffled order over two shards, merged: the result may not depend on the order
    perm = np.random.default_rng(order_seed).permutation(len(scores))
    a, b = PixelAccumulator(protocol), PixelAccumulator(protocol)
    for k, i in enumerate(perm):
        (a if k % 2 else b).update(scores[i], labels[i])
    res = a.merge(b).compute()
    _check(res, ref)
    assert res.n_images == len(scores)
    if args["all_void"] and not legacy:
        assert "skipped" in res.notes["frames"]
    # MDM comes from the exact float16 histogram, the same as exact16
    r16 = pixel_metrics(scores, labels, "exact16")
    assert (res.mdm_f1_60, res.mdm_f1_70) == (r16.mdm_f1_60, r16.mdm_f1_70)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_large_frames(pixref, protocol):
    # frames of 1e4..6e4 pixels (384 quantiles per class, many float16 ties), mixed dtypes
    scores, labels = pixref.make_frames(7, n_frames=4, max_side=250, kind="prob", p_pos=0.05)
    scores[1] = scores[1].astype(np.float16)
    ref = pixref.smiyc_reference(scores, labels, legacy=protocol == "smiyc-legacy")
    _check(pixel_metrics(scores, labels, protocol), ref)


def test_official_argsort_agrees_without_top_ties(pixref):
    # with distinct top edges the official quicksort order gives the same collapsed curve
    scores, labels = pixref.make_frames(3, n_frames=3, max_side=80)
    ref = pixref.smiyc_reference(scores, labels, sort="official")
    _check(pixel_metrics(scores, labels, "smiyc"), ref)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_tied_top_edges_are_order_independent(pixref, protocol):
    # saturated maps: every frame's top lower edge is the same; the official result depends on the tie order
    # (notes §9.1), ours is fixed by the documented rule (threshold, positives, negatives) descending
    r = np.random.default_rng(0)
    scores, labels = [], []
    for k in range(4):
        s = r.random((20, 30)).astype(np.float32)
        s[: 3 + k, :] = 1.0
        g = (r.random((20, 30)) < 0.2 + 0.1 * k).astype(np.uint8)
        scores.append(s)
        labels.append(g)
    ref = pixref.smiyc_reference(scores, labels, legacy=protocol == "smiyc-legacy")
    results = set()
    for seed in range(6):
        perm = np.random.default_rng(seed).permutation(4)
        res = pixel_metrics([scores[i] for i in perm], [labels[i] for i in perm], protocol)
        _check(res, ref)
        results.add((res.ap, res.auroc, res.fpr95, res.threshold))
    assert len(results) == 1


def test_legacy_differs_from_new(pixref):
    scores, labels = pixref.make_frames(21, n_frames=3, max_side=60, kind="prob")
    new, old = pixel_metrics(scores, labels, "smiyc"), pixel_metrics(scores, labels, "smiyc-legacy")
    assert new.ap != old.ap  # step sum vs trapezoid


def test_all_void_only(pixref):
    g = np.full((4, 5), 255, np.uint8)
    s = np.zeros((4, 5), np.float32)
    res = pixel_metrics([s, s], [g, g], "smiyc")
    assert res.ap is None and res.n_images == 2 and "2 all-void" in res.notes["frames"]
    res = pixel_metrics([s], [g], "smiyc-legacy")
    assert res.ap is None and res.n_pixels == 0


def test_pickle_and_state_roundtrip(pixref):
    scores, labels = pixref.make_frames(2, n_frames=3, max_side=40)
    for protocol in ("exact", "exact16", "smiyc", "smiyc-legacy"):
        acc = PixelAccumulator(protocol)
        for s, g in zip(scores, labels):
            acc.update(s, g)
        want = acc.compute()
        for copy in (pickle.loads(pickle.dumps(acc)), PixelAccumulator.from_state(acc.state())):
            got = copy.compute()
            assert got.to_dict() == want.to_dict()


def test_binarize_compares_in_float16():
    # numpy-1 semantics of `p_float16 > thr`: thr is rounded to float16 first. 0.2997 rounds to
    # float16 1228/4096 = 0.2998046875, so a score of exactly that value is NOT above (float64 would say it is).
    res = PixelResult("smiyc", "first_geq", 0.5, 0.5, 0.5, 0.2997, np.dtype(np.float16), None, None, 1, 1, 1)
    s = np.array([[0.2998046875, 0.30029296875, 0.1]], np.float16)
    assert res.binarize(s).tolist() == [[False, True, False]]
    assert np.float64(s[0, 0]) > 0.2997
    res.threshold = 1e6  # outside float16's range: compared in float32 (numpy-1 min_scalar_type), never inf
    assert not res.binarize(np.array([[60000.0]], np.float16)).any()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_quantile_lerp_in_float16(pixref, protocol):
    # > 384 pixels per class with widely spaced values: numpy's quantile subtracts b - a in float16 before
    # interpolating in float64, which moves interior edges (and so the bin counts) off the float64 result
    r = np.random.default_rng(4)
    levels = np.array([0.001, 0.37, 3.3, 700.7, 1033.0])
    scores = [levels[r.integers(0, 5, (30, 40))].astype(np.float32) + r.random((30, 40)).astype(np.float32) * 40
              for _ in range(2)]
    labels = [(r.random((30, 40)) < 0.5).astype(np.uint8) for _ in range(2)]
    ref = pixref.smiyc_reference(scores, labels, legacy=protocol == "smiyc-legacy")
    _check(pixel_metrics(scores, labels, protocol), ref)


def test_eps_is_float64_of_a_float16_range(pixref):
    # the lowest curve threshold is vmin - eps with eps = max(float64(float16(vmax - vmin)) * 0.01, 0.01)
    # (numpy 1.23); 5.1 - (-2.9) is inexact in float16
    s = np.array([[-2.9, -1.3, 0.7, 2.2, 5.1, 4.4]], np.float32)
    g = np.array([[1, 1, 1, 1, 0, 1]], np.uint8)
    ref = pixref.smiyc_reference([s], [g])
    res = pixel_metrics([s], [g], "smiyc")
    vmin, vmax = np.float16(-2.9), np.float16(5.1)
    want = float(vmin) - max(float(vmax - vmin) * 1e-2, 1e-2)
    _check(res, ref)
    assert res._curve["thresholds"][-1] == want
    assert want != float(vmin) - max((float(vmax) - float(vmin)) * 1e-2, 1e-2)
