"""numba kernels of the component metrics: one pass to binarise a frame, one to fill the contingency table.

A bounding box is ``(r0, r1, c0, c1)`` (half-open); ``r1 == 0`` means empty.
"""

import numpy as np
from numba import njit


def threshold_key(thr):
    """Monotone integer key of a float16/float32 threshold (``-0`` counts as ``+0``, so ``0 > -0`` stays False)."""
    thr = thr + thr.dtype.type(0)  # -0 + 0 = +0
    bits_type = np.uint16 if thr.dtype == np.float16 else np.uint32
    return float_keys(np.asarray(thr).view(bits_type).reshape(1))[0]


def float_keys(bits):
    """Order-preserving unsigned keys of IEEE float bit patterns (NaN excluded): negative values are bit-flipped,
    non-negative ones get the sign bit set, so ``a > b`` iff ``key(a) > key(b)`` (except ``-0`` vs ``+0``)."""
    sign = bits.dtype.type(1 << (8 * bits.itemsize - 1))
    return np.where(bits & sign, ~bits, bits | sign)


@njit(cache=True, nogil=True)
def binarise(bits, gt, tkey):
    """``pred = (score > threshold) & (gt <= 1)`` from the scores' unsigned bit patterns (uint16 for float16,
    uint32 for float32) and the threshold key.

    Returns (pred, pred box, box of gt == 1, any non-void pixel, number of NaN/inf scores).
    """
    h, w = gt.shape
    sign = bits.dtype.type(1) << bits.dtype.type(8 * bits.itemsize - 1)
    exponent = bits.dtype.type(0x7C00 if bits.itemsize == 2 else 0x7F800000)
    pred = np.empty((h, w), dtype=np.bool_)
    pr0, pr1, pc0, pc1 = h, 0, w, 0
    gr0, gr1, gc0, gc1 = h, 0, w, 0
    n_valid = 0
    n_nonfinite = 0
    for r in range(h):  # branch-free inner loop; boxes are found per row afterwards
        n_pred_row = 0
        n_gt_row = 0
        for c in range(w):
            label = gt[r, c]
            b = bits[r, c]
            key = ~b if b & sign else b | sign
            hit = (key > tkey) & (label <= 1)
            pred[r, c] = hit
            n_pred_row += hit
            n_gt_row += label == 1
            n_valid += label <= 1
            n_nonfinite += (b & exponent) == exponent
        if n_pred_row:
            pr0, pr1 = min(pr0, r), r + 1
            c = 0
            while not pred[r, c]:
                c += 1
            pc0 = min(pc0, c)
            c = w - 1
            while not pred[r, c]:
                c -= 1
            pc1 = max(pc1, c + 1)
        if n_gt_row:
            gr0, gr1 = min(gr0, r), r + 1
            c = 0
            while gt[r, c] != 1:
                c += 1
            gc0 = min(gc0, c)
            c = w - 1
            while gt[r, c] != 1:
                c -= 1
            gc1 = max(gc1, c + 1)
    return pred, (pr0, pr1, pc0, pc1), (gr0, gr1, gc0, gc1), n_valid > 0, n_nonfinite


@njit(cache=True, nogil=True)
def label_sizes(ids, n):
    """Pixel count of each label 0..n of a label image."""
    sizes = np.zeros(n + 1, dtype=np.int64)
    for v in ids.ravel():
        sizes[v] += 1
    return sizes


@njit(cache=True, nogil=True)
def contingency(pred_ids, pbox, pred_dense, gt_ids, gbox, gt_dense, n_g, n_q):
    """ROI table ``C[g, q]`` for the cells with g > 0 or q > 0 (``C[0, 0]`` is never used and left 0).

    ``pred_ids`` / ``gt_ids`` are label images of their boxes; ``pred_dense`` maps a predicted label to its
    dense id (0: dropped); ``gt_dense`` maps a GT label to its dense id (0: background, -1: void).
    """
    table = np.zeros((n_g, n_q), dtype=np.int64)
    pr0, pr1, pc0, pc1 = pbox[0], pbox[1], pbox[2], pbox[3]
    gr0, gr1, gc0, gc1 = gbox[0], gbox[1], gbox[2], gbox[3]
    for r in range(pr0, pr1):                  # every pixel with q > 0
        in_gt_rows = gr0 <= r < gr1
        for c in range(pc0, pc1):
            lab = pred_ids[r - pr0, c - pc0]
            if lab == 0:
                continue
            q = pred_dense[lab]
            if q == 0:
                continue
            g = 0
            if in_gt_rows and gc0 <= c < gc1:
                g = gt_ids[r - gr0, c - gc0]
            d = gt_dense[g]
            if d >= 0:
                table[d, q] += 1
    for r in range(gr0, gr1):                  # pixels with g > 0 and q == 0
        in_pred_rows = pr0 <= r < pr1
        for c in range(gc0, gc1):
            g = gt_ids[r - gr0, c - gc0]
            if g == 0:
                continue
            d = gt_dense[g]
            if d <= 0:
                continue
            q = 0
            if in_pred_rows and pc0 <= c < pc1:
                q = pred_dense[pred_ids[r - pr0, c - pc0]]
            if q == 0:
                table[d, 0] += 1
    return table
