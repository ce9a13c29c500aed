"""open-IoU / closed mIoU (DenseHybrid): a hand-worked 3-class example and a literal per-pixel loop."""

import numpy as np
import pytest

from maskbench.errors import InputError
from maskbench.metrics.open_iou import ClosedIoU, OpenIoU, image_weighted_miou

# K = 3 known classes (0, 1, 2), anomaly 3, ignore 4.
GT = np.array([[0, 0, 0, 1, 1, 2, 3, 3, 4, 4, 0]])
OPEN_PRED = np.array([[0, 0, 1, 1, 3, 2, 3, 0, 0, 2, 3]])
CLOSED_PRED = np.array([[0, 0, 1, 1, 1, 2, 0, 0, 0, 2, 2]])


def test_open_iou_hand_worked():
    metric = OpenIoU(3)
    metric.update(GT, OPEN_PRED)
    result = metric.compute()
    # class 0: TP 2, FP 1 (anomaly pixel predicted 0 = FP^OOD), FN 2 (one to class 1, one to anomaly = FN^OOD)
    # class 1: TP 1, FP 1, FN 1 (predicted anomaly); class 2: TP 1, the ignore pixel predicted 2 is dropped
    # anomaly: TP 1, FP 2, FN 1
    assert result["iou"] == pytest.approx([2 / 5, 1 / 3, 1.0], abs=1e-15)
    assert result["open_miou"] == pytest.approx((2 / 5 + 1 / 3 + 1.0) / 3, abs=1e-15)
    assert result["anomaly_iou"] == pytest.approx(1 / 4, abs=1e-15)
    assert result["classes_counted"] == 3 and "DenseHybrid" in result["protocol"]
    # rows = GT, columns = prediction (ignore row kept in the raw matrix, zeroed only when computing)
    assert metric.confusion[3, 0] == 1 and metric.confusion[0, 3] == 1 and metric.confusion[1, 3] == 1
    assert metric.confusion[4, 2] == 1 and metric.confusion.sum() == GT.size


def test_closed_iou_hand_worked():
    metric = ClosedIoU(3)
    metric.update(GT, CLOSED_PRED)
    result = metric.compute()
    # GT 3 (anomaly) and 4 (ignore) are folded into the ignored id 3
    # class 0: TP 2, FN 2; class 1: TP 2, FP 1; class 2: TP 1, FP 1
    assert result["iou"] == pytest.approx([2 / 4, 2 / 3, 1 / 2], abs=1e-15)
    assert result["miou"] == pytest.approx((0.5 + 2 / 3 + 0.5) / 3, abs=1e-15)


def test_absent_class_is_null_and_left_out_of_the_mean():
    metric = OpenIoU(3)
    metric.update(np.array([0, 0, 1, 4]), np.array([0, 1, 1, 2]))  # class 2 only predicted on an ignore pixel
    result = metric.compute()
    assert result["iou"] == pytest.approx([1 / 2, 1 / 2, None])
    assert result["open_miou"] == pytest.approx(0.5) and result["classes_counted"] == 2
    assert result["anomaly_iou"] is None
    empty = OpenIoU(2)
    empty.update(np.full((2, 2), 3), np.full((2, 2), 2))
    assert empty.compute()["open_miou"] is None


@pytest.mark.parametrize("seed", range(3))
def test_open_and_closed_match_literal_pixel_loop(seed, helpers):
    rng = np.random.default_rng(seed)
    k = 5
    open_metric, closed_metric = OpenIoU(k), ClosedIoU(k)
    halves = []
    for _ in range(3):
        gt = rng.integers(0, k + 2, size=(17, 23))
        pred = rng.integers(0, k + 1, size=gt.shape)
        closed = rng.integers(0, k, size=gt.shape)
        open_metric.update(gt.astype(np.uint8), pred.astype(np.int32))
        closed_metric.update(gt, closed)
        halves.append((gt, pred, closed))
    gts = np.concatenate([h[0].ravel() for h in halves])
    open_ref = helpers.literal_iou(helpers.literal_confusion(gts, np.concatenate([h[1].ravel() for h in halves]), k + 2), k + 1)
    closed_ref = helpers.literal_iou(
        helpers.literal_confusion(np.minimum(gts, k), np.concatenate([h[2].ravel() for h in halves]), k + 1), k)
    open_result, closed_result = open_metric.compute(), closed_metric.compute()
    assert open_result["iou"] == pytest.approx(open_ref[:k], abs=1e-15)
    assert open_result["anomaly_iou"] == pytest.approx(open_ref[k], abs=1e-15)
    assert open_result["open_miou"] == pytest.approx(sum(open_ref[:k]) / k, abs=1e-15)
    assert closed_result["iou"] == pytest.approx(closed_ref[:k], abs=1e-15)
    assert closed_result["miou"] == pytest.approx(sum(closed_ref[:k]) / k, abs=1e-15)


def test_merge_equals_single_pass():
    rng = np.random.default_rng(3)
    gt, pred = rng.integers(0, 6, size=(2, 30, 30)), rng.integers(0, 5, size=(2, 30, 30))
    whole, first, second = OpenIoU(4), OpenIoU(4), OpenIoU(4)
    whole.update(gt, pred)
    first.update(gt[0], pred[0])
    second.update(gt[1], pred[1])
    assert np.array_equal(first.merge(second).confusion, whole.confusion)
    with pytest.raises(InputError, match="merge"):
        first.merge(ClosedIoU(4))


def test_validation():
    metric = OpenIoU(3)
    with pytest.raises(InputError, match=r"gt: values must lie in 0\.\.4"):
        metric.update(np.array([5]), np.array([0]))
    with pytest.raises(InputError, match=r"pred: values must lie in 0\.\.3"):
        metric.update(np.array([0]), np.array([4]))
    with pytest.raises(InputError, match="shape"):
        metric.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(InputError, match="integer"):
        metric.update(np.zeros(2), np.zeros(2, int))
    with pytest.raises(InputError, match=r"pred: values must lie in 0\.\.2"):
        ClosedIoU(3).update(np.array([0]), np.array([3]))
    with pytest.raises(InputError, match="num_known"):
        OpenIoU(0)


def test_image_weighted_combination():
    # DenseHybrid: (n_t5 * m_t5 + n_t6 * m_t6) / (n_t5 + n_t6)
    assert image_weighted_miou([(0.5, 3), (0.9, 1)]) == pytest.approx((3 * 0.5 + 0.9) / 4, abs=1e-15)
    assert image_weighted_miou([(0.5, 3), (None, 1)]) is None
    with pytest.raises(InputError, match="image count"):
        image_weighted_miou([(0.5, 0)])
