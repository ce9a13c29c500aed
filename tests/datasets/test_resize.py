"""RbA's 720x1280 policy for RoadAnomaly21: labels nearest, images bilinear, as OpenCV (albumentations) does."""

import numpy as np
import pytest

from maskbench.datasets import load_dataset
from maskbench.datasets.resize import resize_image, resize_label


def test_nearest_worked_example():
    # 4 -> 6 columns: source column floor(x * (1 / (6 / 4))) = floor(x * 0.666..) = 0 0 1 2 2 3
    label = np.array([[10, 11, 12, 13]], np.uint8)
    assert resize_label(label, 1, 6).tolist() == [[10, 10, 11, 12, 12, 13]]
    # 6 -> 4 columns: floor(x * 1.5) = 0 1 3 4
    assert resize_label(np.arange(6, dtype=np.uint8)[None], 1, 4).tolist() == [[0, 1, 3, 4]]


def test_linear_worked_example():
    # 4 -> 2 columns and rows: an exact halving is OpenCV's area average, (a + b + c + d + 2) >> 2
    image = np.array([[0, 10, 100, 101], [1, 10, 100, 100], [5, 5, 7, 7], [5, 6, 7, 7]], np.uint8)[..., None]
    assert resize_image(image, 2, 2)[..., 0].tolist() == [[5, 100], [5, 7]]
    # 3 -> 2 columns (one row): fx = (x + 0.5) * 1.5 - 0.5 = 0.25, 1.75; weights rint(2048 * (1 - f)), rint(2048 * f)
    row = np.array([[[0], [100], [200]]], np.uint8)
    s0, s1 = 0 * 1536 + 100 * 512, 100 * 512 + 200 * 1536
    expected = [(((s >> 4) * 2048 >> 16) + 2) >> 2 for s in (s0, s1)]
    assert resize_image(row, 1, 2)[0, :, 0].tolist() == expected == [25, 175]


@pytest.mark.parametrize("shape", [(1080, 1920), (1024, 2048), (1440, 2560), (800, 1200), (720, 1280), (97, 131)])
def test_equals_opencv_when_shrinking(shape):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    label = rng.choice(np.array([0, 1, 255], np.uint8), size=shape)
    h, w = (720, 1280) if shape[0] >= 720 else (33, 47)
    assert np.array_equal(resize_image(image, h, w), cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR))
    assert np.array_equal(resize_label(label, h, w), cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST))


def test_labels_equal_opencv_when_enlarging():
    cv2 = pytest.importorskip("cv2")
    label = np.random.default_rng(1).integers(0, 3, (37, 53), dtype=np.uint8)
    assert np.array_equal(resize_label(label, 720, 1280), cv2.resize(label, (1280, 720), interpolation=cv2.INTER_NEAREST))


def test_ra21_resize_option(replica):
    rep = replica("smiyc-ra21", frames=2)
    ds = load_dataset("smiyc-ra21", rep.root, resize="720x1280", frames="all")
    assert ds.info["resize"] == "720x1280" and "transform_ra_21" in ds.info["resize_source"]
    for sample, original in zip((s for s in ds if s.ood is not None), rep.samples):
        assert sample.image.shape == (720, 1280, 3)
        assert np.array_equal(sample.ood, resize_label(original.ood, 720, 1280))
    assert load_dataset("smiyc-ra21", rep.root).info["resize"] is None
