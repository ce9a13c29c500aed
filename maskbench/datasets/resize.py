"""Resolution policies a reader may apply to a frame before it is scored (off unless an option asks).

``720x1280``: RbA's policy for SMIYC RoadAnomaly21 (NazirNayal8/RbA ``support.py``, ``transform_ra_21`` =
``albumentations.Resize(height=720, width=1280)``): the image with OpenCV ``INTER_LINEAR`` (albumentations'
default), the label with ``INTER_NEAREST`` (albumentations' mask interpolation), so the metrics run at 720x1280.

The OpenCV arithmetic, written out (``imgproc/src/resize.cpp``, 8-bit images):

- nearest: destination column ``x`` reads source column ``min(floor(x * (1 / (W_dst / W_src))), W_src - 1)``
  (``resizeNN``), rows alike;
- linear: ``fx = float32((x + 0.5) * W_src / W_dst - 0.5)``, ``sx = floor(fx)``, ``fx -= sx``, clamped at the
  borders (``sx < 0``: 0, 0; ``sx >= W_src - 1``: W_src - 1, 0); coefficients ``rint((1 - fx) * 2048)`` and
  ``rint(fx * 2048)`` as int16; horizontal sums in int, then ``(b0 * S0 + b1 * S1 + 2^21) >> 22`` (``FixedPtCast``);
  an exact halving in both directions is ``INTER_AREA`` instead (``(a + b + c + d + 2) >> 2``).

The vertical pass rounds as OpenCV's vectorised one does, in two steps (``(b * (S >> 4)) >> 16`` per term, then
``+ 2 >> 2``). Checked equal to ``cv2.resize`` when shrinking or halving (tests/datasets/test_resize.py; RbA's case:
SMIYC frames are larger than 1280x720); when enlarging, OpenCV rounds some pixels differently by one grey level.
Labels equal ``cv2.resize`` in every case.
"""

import numpy as np

RESIZE_POLICIES = {"720x1280": "NazirNayal8/RbA support.py transform_ra_21 (albumentations Resize(720, 1280))"}
COEF_BITS = 11
COEF_SCALE = 1 << COEF_BITS


def _nearest_index(dst, src):
    scale = 1.0 / (dst / src)
    return np.minimum(np.floor(np.arange(dst) * scale).astype(np.int64), src - 1)


def resize_label(label, height, width):
    """``label`` (H, W) resized to (height, width) as ``cv2.resize(..., interpolation=cv2.INTER_NEAREST)``."""
    rows = _nearest_index(height, label.shape[0])
    cols = _nearest_index(width, label.shape[1])
    return label[rows[:, None], cols[None, :]]


def _linear_coefficients(dst, src):
    """Source index and int16 weights (``cv::resize`` ``INTER_LINEAR`` coefficient table) per destination index."""
    scale = src / dst
    fx = ((np.arange(dst) + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx).astype(np.int64)
    fx = (fx - sx.astype(np.float32)).astype(np.float32)
    low = sx < 0
    fx[low], sx[low] = 0, 0
    high = sx >= src - 1
    fx[high], sx[high] = 0, src - 1
    w1 = np.rint(fx * np.float32(COEF_SCALE)).astype(np.int64)
    w0 = np.rint((np.float32(1) - fx) * np.float32(COEF_SCALE)).astype(np.int64)
    return sx, np.minimum(sx + 1, src - 1), w0, w1


def resize_image(image, height, width):
    """uint8 ``image`` (H, W, C) resized to (height, width) as ``cv2.resize`` with ``INTER_LINEAR``."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image.copy()
    src = image.astype(np.int64)
    if h == 2 * height and w == 2 * width:  # cv::resize turns an exact halving into INTER_AREA
        total = src[0::2, 0::2] + src[0::2, 1::2] + src[1::2, 0::2] + src[1::2, 1::2]
        return ((total + 2) >> 2).astype(np.uint8)
    x0, x1, a0, a1 = _linear_coefficients(width, w)
    y0, y1, b0, b1 = _linear_coefficients(height, h)
    shape = (1, -1) + (1,) * (image.ndim - 2)
    rows = src[:, x0] * a0.reshape(shape) + src[:, x1] * a1.reshape(shape)  # (h, width, C), scaled by 2048
    col = (-1,) + (1,) * (image.ndim - 1)
    top = (rows[y0] >> 4) * b0.reshape(col) >> 16
    bottom = (rows[y1] >> 4) * b1.reshape(col) >> 16
    return np.clip((top + bottom + 2) >> 2, 0, 255).astype(np.uint8)
