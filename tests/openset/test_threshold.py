"""DenseHybrid threshold calibration (metrics.md §3) against literal transcriptions and hand-made cases."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve

from maskbench.errors import InputError
from maskbench.metrics.pixel import PixelAccumulator, tpr95_threshold
from maskbench.openset import half_resolution


def densehybrid_threshold(scores, labels):
    """OODCalibration.calculate_stats, transcribed: roc_curve (drop_intermediate) and the first tpr > 0.95."""
    keep = labels != 255
    fpr, tpr, thr = roc_curve(labels[keep], scores[keep])
    for i, j, k in zip(tpr, fpr, thr):
        if i > 0.95:
            return k, i, j
    return 0, None, None


def acc_of(scores, labels, protocol="exact"):
    return PixelAccumulator(protocol).update(np.asarray(scores, np.float32), np.asarray(labels, np.uint8))


def test_hand_made_strict_rule():
    # 20 positives: scores 0.9 (x18), 0.5 (x1), 0.1 (x1); negatives at 0.7 and 0.05.
    scores = np.array([[0.9] * 18 + [0.5, 0.1, 0.7, 0.05]], np.float32)
    labels = np.array([[1] * 20 + [0, 0]], np.uint8)
    # TPR: 0.9 (18/20), then 0.7 -> 0.9 (fp), 0.5 -> 0.95 (not > 0.95), 0.1 -> 1.0
    thr, tpr, fpr = tpr95_threshold(acc_of(scores, labels))
    assert thr == np.float32(0.1) and tpr == 1.0 and fpr == 0.5
    thr, tpr, _ = tpr95_threshold(acc_of(scores, labels), "first_geq")
    assert thr == np.float32(0.5) and tpr == 0.95


def test_hand_made_dropped_intermediate_point():
    # positives only between 0.6 and 0.4: the points at 0.6, 0.5 are collinear (only TPR grows by 1/40 each),
    # so roc_curve drops the interior one and the strict rule lands on the next kept corner.
    pos = [0.9] * 37 + [0.6, 0.5, 0.4]
    neg = [0.95, 0.3]
    scores = np.array([pos + neg], np.float32)
    labels = np.array([[1] * 40 + [0, 0]], np.uint8)
    expected = densehybrid_threshold(scores.ravel(), labels.ravel())
    thr, tpr, fpr = tpr95_threshold(acc_of(scores, labels))
    assert (thr, tpr, fpr) == (pytest.approx(expected[0], abs=0), expected[1], expected[2])
    # the full (undropped) curve would reach TPR 39/40 > 0.95 already at 0.5
    assert thr == np.float32(0.4)


@pytest.mark.parametrize("seed", range(6))
def test_random_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random((30, 40)), 2).astype(np.float32)  # many ties
    labels = (rng.random((30, 40)) < 0.2).astype(np.uint8)
    labels[rng.random((30, 40)) < 0.1] = 255
    thr, tpr, fpr = tpr95_threshold(acc_of(scores, labels))
    ref = densehybrid_threshold(scores.ravel(), labels.ravel())
    assert thr == ref[0] and tpr == ref[1] and fpr == ref[2]


def test_no_positives_and_bad_protocol():
    assert tpr95_threshold(acc_of([[0.1, 0.2]], [[0, 0]])) is None
    with pytest.raises(InputError):
        tpr95_threshold(PixelAccumulator("smiyc"))
    with pytest.raises(InputError):
        tpr95_threshold(acc_of([[0.1]], [[1]]), "closest")


def test_half_resolution_is_block_mean_and_even_subsample():
    rng = np.random.default_rng(0)
    a = rng.random((6, 8)).astype(np.float32)
    lab = rng.integers(0, 3, (6, 8)).astype(np.uint8)
    small, small_lab = half_resolution(torch.from_numpy(a), torch.from_numpy(lab))
    block = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4  # bilinear, scale 0.5
    np.testing.assert_allclose(small.numpy(), block, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(small_lab.numpy(), lab[::2, ::2])
