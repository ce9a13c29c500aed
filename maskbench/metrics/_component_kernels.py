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
    uint32 for float32) and the threshold key; returns (pred, pred box, box of gt == 1, any non-void pixel)."""
    h, w = gt.shape
    sign = bits.dtype.type(1) << bits.dtype.type(8 * bits.itemsize - 1)
    pred = np.empty((h, w), dtype=np.bool_)
    pr0, pr1, pc0, pc1 = h, 0, w, 0
    gr0, gr1, gc0, gc1 = h, 0, w, 0
    any_valid = False
    for r in range(h):
        for c in range(w):
            label = gt[r, c]
            hit = False
            if label <= 1:
                any_valid = True
                if label == 1:
                    gr0 = min(gr0, r)
                    gr1 = r + 1
                    gc0 = min(gc0, c)
                    gc1 = max(gc1, c + 1)
                b = bits[r, c]
                key = ~b if b & sign else b | sign
                hit = key > tkey
                if hit:
                    pr0 = min(pr0, r)
                    pr1 = r + 1
                    pc0 = min(pc0, c)
                    pc1 = max(pc1, c + 1)
            pred[r, c] = hit
    return pred, (pr0, pr1, pc0, pc1), (gr0, gr1, gc0, gc1), any_valid


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
    for r in range(pbox[0], pbox[1]):          # every pixel with q > 0
        for c in range(pbox[2], pbox[3]):
            q = pred_dense[pred_ids[r - pbox[0], c - pbox[2]]]
            if q > 0:
                g = 0
                if gbox[0] <= r < gbox[1] and gbox[2] <= c < gbox[3]:
                    g = gt_ids[r - gbox[0], c - gbox[2]]
                gd = gt_dense[g]
                if gd >= 0:
                    table[gd, q] += 1
    for r in range(gbox[0], gbox[1]):          # pixels with g > 0 and q == 0
        for c in range(gbox[2], gbox[3]):
            g = gt_ids[r - gbox[0], c - gbox[2]]
            if g > 0:
                gd = gt_dense[g]
                if gd > 0:
                    q = 0
                    if pbox[0] <= r < pbox[1] and pbox[2] <= c < pbox[3]:
                        q = pred_dense[pred_ids[r - pbox[0], c - pbox[2]]]
                    if q == 0:
                        table[gd, 0] += 1
    return table
