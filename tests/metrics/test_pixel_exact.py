"""exact / exact16 against scikit-learn on pooled pixels (bit-identical AP and AUROC)."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskbench.metrics import pixel
from maskbench.metrics.exact_curve import FPR95_RULES
from maskbench.metrics.pixel import PixelAccumulator, pixel_metrics

RULES = tuple(FPR95_RULES)


def _accumulate(protocol, rule, scores, labels, n_shards, order_seed):
    """Frames dealt to shards in a shuffled order, shards merged in another shuffled order."""
    r = np.random.default_rng(order_seed)
    shards = [PixelAccumulator(protocol, fpr95_rule=rule) for _ in range(n_shards)]
    for i in r.permutation(len(scores)):
        shards[int(r.integers(n_shards))].update(scores[i], labels[i])
    perm = r.permutation(n_shards)
    acc = shards[perm[0]]
    for j in perm[1:]:
        acc.merge(shards[j])
    return acc.compute()


frames_args = st.fixed_dictionaries(dict(
    seed=st.integers(0, 2**31),
    n_frames=st.integers(1, 4),
    kind=st.sampled_from(["prob", "logit", "energy"]),
    n_distinct=st.sampled_from([0, 0, 1, 2, 3, 7]),
    dtype=st.sampled_from([np.float32, np.float16]),
    p_pos=st.sampled_from([0.02, 0.1, 0.5, 0.97]),
    all_void=st.booleans(),
    no_pos_frame=st.booleans(),
))


@pytest.mark.parametrize("protocol", ["exact", "exact16"])
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(args=frames_args, n_shards=st.integers(1, 3), order_seed=st.integers(0, 1000),
       key_batch=st.sampled_from([1, 300, 1 << 23]))
def test_matches_sklearn(pixref, protocol, args, n_shards, order_seed, key_batch):
    make_frames, pooled, sklearn_reference = pixref.make_frames, pixref.pooled, pixref.sklearn_reference
    scores, labels = make_frames(**args)
    y_score, y_true = pooled(scores, labels, np.float32 if protocol == "exact" else np.float16)
    # exact: a small sort batch makes every frame its own run list, exercising the run merges
    with mock.patch.object(pixel, "_KEY_BATCH", key_batch):
        results = {rule: _accumulate(protocol, rule, scores, labels, n_shards, order_seed) for rule in RULES}
    res = results["first_geq"]
    assert res.n_pixels == y_true.size and res.n_positive == int(y_true.sum())
    assert res.n_images == len(scores)
    assert res.score_dtype == (np.float32 if protocol == "exact" else np.float16)
    if y_true.sum() == 0:
        assert res.ap is res.auroc is res.fpr95 is res.threshold is None
        assert "no anomaly" in res.notes["ap"] and res.mdm_f1_60 is None
        return
    ref = sklearn_reference(y_score, y_true)
    assert res.ap == ref["ap"]
    assert res.threshold == ref["threshold"]
    if (y_true == 0).any():
        assert res.auroc == ref["auroc"]
        for rule in RULES:
            assert results[rule].fpr95 == ref[rule], rule
    else:
        assert res.auroc is None and res.fpr95 is None and "no inlier" in res.notes["auroc"]
    in_range = y_score.min() >= 0 and y_score.max() <= 1
    assert (res.mdm_f1_60 is not None) == in_range
    if not in_range:
        assert "leave [0, 1]" in res.notes["mdm_f1_60"]


def test_worked_example():
    # scores 0.875(+) 0.75(-) 0.625(+) 0.125(-): thresholds descending give (tp, fp) = (1,0) (1,1) (2,1) (2,2)
    # AP = 1/2 * 1 + 1/2 * 2/3 = 5/6; ROC corners (0,.5) (.5,.5)->(.5,1) (1,1): AUROC = 0.5*0.5 + 0.5*1 = 0.75
    # FPR95: TPR >= 0.95 first at threshold 0.625 with FPR 1/2; best F1: at 0.625 F1 = 4/5 (at 0.875: 2/3)
    s = np.array([[0.875, 0.75, 0.625, 0.125]], np.float32)
    g = np.array([[1, 0, 1, 0]], np.uint8)
    for protocol in ("exact", "exact16"):
        res = pixel_metrics([s], [g], protocol)
        assert res.ap == pytest.approx(5 / 6, abs=1e-15)
        assert res.auroc == 0.75 and res.fpr95 == 0.5 and res.threshold == 0.625
        # MDM, F1(s > z) = 2TP / (P + #predicted): 4/6 on [0, .125), 4/5 on [.125, .625), 2/4 on [.625, .75),
        # 2/3 on [.75, .875), 0 on [.875, 1]; > 0.6 longest on [0, .625); > 0.7 only on [.125, .625)
        assert res.mdm_f1_60 == 0.625 and res.mdm_f1_70 == 0.5


def test_signed_zero_is_one_score(pixref):
    pooled, sklearn_reference = pixref.pooled, pixref.sklearn_reference
    # -0.0 and +0.0 are the same value for sklearn's sort; they must share one curve point
    s = np.array([[-0.0, 0.0, 0.0, -0.0, 0.5, 0.5]], np.float32)
    g = np.array([[1, 0, 0, 1, 1, 0]], np.uint8)
    y_score, y_true = pooled([s], [g], np.float32)
    ref = sklearn_reference(y_score, y_true)
    for protocol in ("exact", "exact16"):
        res = pixel_metrics([s], [g], protocol)
        assert res.ap == ref["ap"] and res.auroc == ref["auroc"]


def test_exact_differs_from_exact16_only_by_the_cast(pixref):
    make_frames, pooled, sklearn_reference = pixref.make_frames, pixref.pooled, pixref.sklearn_reference
    scores, labels = make_frames(5, n_frames=2, max_side=64)
    r32 = pixel_metrics(scores, labels, "exact")
    r16 = pixel_metrics(scores, labels, "exact16")
    y32, t32 = pooled(scores, labels, np.float32)
    y16, t16 = pooled(scores, labels, np.float16)
    assert (r32.ap, r16.ap) == (sklearn_reference(y32, t32)["ap"], sklearn_reference(y16, t16)["ap"])
    assert r32.ap != r16.ap  # float16 quantisation is visible (and stated by the protocol)


def test_curves_match_sklearn(pixref):
    from sklearn.metrics import precision_recall_curve, roc_curve
    pooled = pixref.pooled
    scores, labels = pixref.make_frames(11, n_frames=3, n_distinct=5)
    y_score, y_true = pooled(scores, labels, np.float32)
    res = pixel_metrics(scores, labels, "exact")
    p, r, _ = precision_recall_curve(y_true, y_score)
    fpr, tpr, _ = roc_curve(y_true, y_score)
    np.testing.assert_array_equal(res.pr_curve()[0], p)
    np.testing.assert_array_equal(res.pr_curve()[1], r)
    np.testing.assert_array_equal(res.roc_curve()[0], fpr)
    np.testing.assert_array_equal(res.roc_curve()[1], tpr)
