"""The numba binarisation against numpy's own float comparison, on every float16 value and on float32 bit patterns."""

import numpy as np
import pytest
from scipy.ndimage import label

from maskbench.metrics import _component_kernels as kernels
from maskbench.metrics.component_frame import _label_box

F16_THRESHOLDS = [0.0, -0.0, 0.5, -3.0, 6e-8, -6e-8, 65504.0, -65504.0, np.inf, -np.inf, 0.10003662109375]


@pytest.mark.parametrize("t", F16_THRESHOLDS)
def test_binarise_equals_numpy_float16_comparison_on_all_65536_values(t):
    bits = np.arange(65536, dtype=np.uint16)
    values = bits.view(np.float16)
    bits = bits[~np.isnan(values)].reshape(2, -1)  # 63490 non-NaN patterns
    values = bits.view(np.float16)
    gt = np.zeros(bits.shape, dtype=np.uint8)
    t16 = np.float16(t)
    pred, *_ = kernels.binarise(bits, gt, kernels.threshold_key(t16))
    assert np.array_equal(pred, values > t16)


def test_binarise_equals_numpy_float32_comparison():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2 ** 32, size=100_000, dtype=np.uint64).astype(np.uint32)
    specials = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 1, 0x80000001, 0x3F000000], dtype=np.uint32)
    bits = np.concatenate([specials, bits])
    bits = bits[~np.isnan(bits.view(np.float32))]
    bits = bits[: bits.size // 4 * 4].reshape(4, -1)
    values = bits.view(np.float32)
    gt = np.zeros(bits.shape, dtype=np.uint8)
    for t in [0.0, -0.0, 0.5, -1e30, 1e-45, -1e-45, float(values[0, 100]), np.inf, -np.inf]:
        t32 = np.float32(t)
        pred, *_ = kernels.binarise(bits, gt, kernels.threshold_key(t32))
        assert np.array_equal(pred, values > t32), t


def test_binarise_zeroes_void_and_returns_bounding_boxes():
    rng = np.random.default_rng(1)
    scores = rng.random((30, 40)).astype(np.float16)
    gt = rng.choice(np.array([0, 1, 2, 255], dtype=np.uint8), size=(30, 40), p=[0.6, 0.1, 0.1, 0.2])
    gt[:5] = 0
    gt[:, -3:] = 0
    thr = np.float16(0.9)
    pred, pbox, gbox, any_valid, _ = kernels.binarise(scores.view(np.uint16), gt, kernels.threshold_key(thr))
    expected = (scores > thr) & (gt <= 1)
    assert np.array_equal(pred, expected) and any_valid

    def box(mask):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        return (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1)

    assert pbox == box(expected) and gbox == box(gt == 1)
    _, pbox, gbox, any_valid, _ = kernels.binarise(scores.view(np.uint16), np.full_like(gt, 7), kernels.threshold_key(thr))
    assert not any_valid and pbox[1] == 0 and gbox[1] == 0


def test_labels_on_the_bounding_box_equal_full_frame_labels():
    rng = np.random.default_rng(2)
    mask = np.zeros((50, 60), dtype=bool)
    mask[10:40, 5:55] = rng.random((30, 50)) < 0.3
    ids, n = _label_box(mask, (10, 40, 5, 55))
    full, n_full = label(mask, np.ones((3, 3)))
    assert n == n_full and n > 10
    assert np.array_equal(full[10:40, 5:55], ids) and not full[~np.pad(np.ones((30, 50), bool), ((10, 10), (5, 5)))].any()
