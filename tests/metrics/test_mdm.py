"""MDM (Maskomaly Eq. 3): hand-worked cases and a dense-grid brute force."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maskbench.errors import InputError
from maskbench.metrics.mdm import mdm_from_counts
from maskbench.metrics.pixel import pixel_metrics


def test_two_levels_by_hand():
    # 2 positives at 0.75, 2 negatives at 0.25, P = 2. F1(s > z) = 2TP / (P + #predicted):
    # [0, .25): all predicted, 4/6; [.25, .75): {s >= .75}, 4/4 = 1; [.75, 1]: nothing, 0.
    # T = 0.6: [0, .75) -> 0.75; T = 0.7: [.25, .75) -> 0.5
    v, p, n = [0.25, 0.75], [0, 2], [2, 0]
    assert mdm_from_counts(v, p, n, 0.6) == 0.75
    assert mdm_from_counts(v, p, n, 0.7) == 0.5


def test_separated_zero_one_scores():
    # negatives at exactly 0, positives at exactly 1: I_0 = [0, 0) is empty; [0, 1) has F1 = 1 -> MDM = 1
    assert mdm_from_counts([0.0, 1.0], [0, 5], [7, 0], 0.7) == 1.0


def test_strict_f1_threshold():
    # 3 positives + 1 negative at 0.5: on [0, .5) everything is predicted, F1 = 6 / (3 + 4) = 6/7, and F1 = T
    # exactly is not enough. 1 positive + 1 negative at 0.5, 1 positive at 1: F1 = 4 / (2 + 3) = 0.8 on
    # [0, .5), 2 / (2 + 1) = 2/3 on [.5, 1), 0 at 1
    assert mdm_from_counts([0.5], [3], [1], 6 / 7) == 0.0
    assert mdm_from_counts([0.5], [3], [1], 0.85) == 0.5
    assert mdm_from_counts([0.5, 1.0], [1, 1], [1, 0], 0.6) == 1.0
    assert mdm_from_counts([0.5, 1.0], [1, 1], [1, 0], 0.7) == 0.5
    assert mdm_from_counts([0.5, 1.0], [1, 1], [1, 0], 0.8) == 0.0


def test_gap_in_the_middle():
    # P = 3 of 5 pixels. F1 by interval: [0,.1): 6/(3+5) = .75; [.1,.2): {>=.2} 6/(3+4) = .857;
    # [.2,.6): {>=.6} 4/(3+3) = .667; [.6,.9): {>=.9} 4/(3+2) = .8; [.9,1]: 0.
    # T = 0.7 -> runs [0,.2) and [.6,.9): longest 0.3; T = 0.6 -> [0, .9)
    v = [0.1, 0.2, 0.6, 0.9]
    pos, neg = [0, 1, 0, 2], [1, 0, 1, 0]
    assert mdm_from_counts(v, pos, neg, 0.7) == pytest.approx(0.3, abs=1e-15)
    assert mdm_from_counts(v, pos, neg, 0.6) == 0.9


def test_bad_inputs():
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        mdm_from_counts([-0.1, 0.5], [1, 0], [0, 1], 0.6)
    with pytest.raises(InputError, match="no positive"):
        mdm_from_counts([0.1, 0.5], [0, 0], [1, 1], 0.6)
    with pytest.raises(InputError, match="ascending"):
        mdm_from_counts([0.5, 0.1], [1, 0], [0, 1], 0.6)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), n_levels=st.sampled_from([3, 12, 50, 400]), sep=st.floats(0.0, 1.0))
def test_matches_dense_grid(pixref, seed, n_levels, sep):
    # scores on a lattice of n_levels + 1 values: every F1 interval is wider than the grid step, so the
    # grid sees every interval and the two agree to within its resolution
    r = np.random.default_rng(seed)
    n = 3000
    g = (r.random(n) < 0.2).astype(np.uint8)
    s = np.clip(r.random(n) * (1 - sep) + sep * g * r.random(n) ** 0.3, 0, 1)
    s = np.round(s * n_levels) / n_levels
    s = s.astype(np.float32).reshape(50, 60)
    g = g.reshape(50, 60)
    res = pixel_metrics([s], [g], "exact")
    y = s.reshape(-1).astype(np.float64)
    n_grid = 20001
    for t, got in ((0.6, res.mdm_f1_60), (0.7, res.mdm_f1_70)):
        approx, points = pixref.mdm_grid(y, g.reshape(-1), t, n_grid)
        # a run of k grid points spans (k-1)/(G-1); the exact union of intervals is at most 2 steps longer
        assert approx - 1e-12 <= got <= approx + 2 / (n_grid - 1) + 1e-12
        assert (points == 0) == (got == 0.0) or got <= 1 / (n_grid - 1)


def test_several_thresholds_in_one_scan():
    v, p, n = [0.25, 0.75], [0, 2], [2, 0]
    assert mdm_from_counts(v, p, n, (0.6, 0.7, 0.99, 1.0)) == (0.75, 0.5, 0.5, 0.0)
