"""Numba kernels of the pixel metrics: exact score histograms and run-length records.

Scores are ordered through *monotone keys*: the IEEE bit pattern mapped to an unsigned integer whose
order is the numeric order (sign bit set -> all bits flipped, else sign bit set). ``-0.0`` is mapped to
the key of ``+0.0`` so that equal scores share one key, as in a sort by value (scikit-learn).
Labels: 0 inlier, 1 anomaly, any other value void (skipped).
"""

import numpy as np
from numba import njit

KEY16_POS_ZERO = 0x8000  # monotone key of +0.0 (float16)
KEY32_POS_ZERO = 0x80000000  # monotone key of +0.0 (float32)


def key16_values():
    """float16 value of each of the 65,536 monotone keys (NaN patterns included, never counted)."""
    keys = np.arange(65536, dtype=np.uint32)
    bits = np.where(keys >= 0x8000, keys ^ 0x8000, ~keys & 0xFFFF).astype(np.uint16)
    return bits.view(np.float16)


VALUES16 = key16_values()


def keys32_to_values(keys):
    """float32 values of monotone uint32 keys."""
    keys = keys.astype(np.uint32, copy=False)
    bits = np.where(keys >= np.uint32(KEY32_POS_ZERO), keys ^ np.uint32(KEY32_POS_ZERO), ~keys)
    return bits.astype(np.uint32).view(np.float32)


@njit(cache=True, nogil=True)
def hist16(bits, labels, pos, neg):
    """Add each non-void pixel to ``pos``/``neg`` (int64[65536]) at the monotone key of its float16 bits."""
    for i in range(bits.shape[0]):
        lab = labels[i]
        if lab > 1:
            continue
        b = np.uint32(bits[i])
        if b == 0x8000:  # -0.0 -> +0.0
            b = 0
        if b & 0x8000:
            k = ~b & 0xFFFF
        else:
            k = b | 0x8000
        if lab == 1:
            pos[k] += 1
        else:
            neg[k] += 1


@njit(cache=True, nogil=True)
def _radix_sort_u32(a, tmp):
    """LSD radix sort of ``a`` in place (3 passes of 11/11/10 bits); ``tmp`` is scratch of equal size."""
    n = a.shape[0]
    count = np.empty(2048, np.int64)
    src = a
    dst = tmp
    for shift in (0, 11, 22):
        count[:] = 0
        for i in range(n):
            count[(src[i] >> shift) & 0x7FF] += 1
        total = 0
        for d in range(2048):
            c = count[d]
            count[d] = total
            total += c
        for i in range(n):
            d = (src[i] >> shift) & 0x7FF
            dst[count[d]] = src[i]
            count[d] += 1
        src, dst = dst, src
    # three passes: the sorted data ended in ``tmp``
    for i in range(n):
        a[i] = src[i]


@njit(cache=True, nogil=True)
def frame_runs32(bits, labels):
    """One frame -> (keys ascending, positives, negatives) per distinct float32 score (uint32 each).

    Pixels are split by label into monotone keys, radix-sorted and run-length encoded.
    """
    n = bits.shape[0]
    kp = np.empty(n, np.uint32)
    kn = np.empty(n, np.uint32)
    npos = 0
    nneg = 0
    for i in range(n):
        lab = labels[i]
        if lab > 1:
            continue
        b = bits[i]
        if b == 0x80000000:  # -0.0 -> +0.0
            b = np.uint32(0)
        if b & 0x80000000:
            k = ~b
        else:
            k = b | np.uint32(0x80000000)
        if lab == 1:
            kp[npos] = k
            npos += 1
        else:
            kn[nneg] = k
            nneg += 1
    tmp = np.empty(max(npos, nneg), np.uint32)
    _radix_sort_u32(kp[:npos], tmp[:npos])
    _radix_sort_u32(kn[:nneg], tmp[:nneg])
    keys = np.empty(npos + nneg, np.uint32)
    cpos = np.zeros(npos + nneg, np.uint32)
    cneg = np.zeros(npos + nneg, np.uint32)
    i = 0
    j = 0
    m = -1
    while i < npos or j < nneg:
        if j >= nneg or (i < npos and kp[i] <= kn[j]):
            k = kp[i]
            i += 1
            if m < 0 or keys[m] != k:
                m += 1
                keys[m] = k
            cpos[m] += 1
        else:
            k = kn[j]
            j += 1
            if m < 0 or keys[m] != k:
                m += 1
                keys[m] = k
            cneg[m] += 1
    m += 1
    return keys[:m].copy(), cpos[:m].copy(), cneg[:m].copy()


@njit(cache=True, nogil=True)
def merge_runs(k1, p1, n1, k2, p2, n2, keys, pos, neg):
    """Merge two key-sorted run lists into ``keys/pos/neg`` (preallocated, len(k1)+len(k2)), adding the
    counts of equal keys. Returns the number of records written."""
    i = 0
    j = 0
    m = 0
    a = k1.shape[0]
    b = k2.shape[0]
    while i < a or j < b:
        if j >= b or (i < a and k1[i] < k2[j]):
            keys[m] = k1[i]
            pos[m] = p1[i]
            neg[m] = n1[i]
            i += 1
        elif i >= a or k2[j] < k1[i]:
            keys[m] = k2[j]
            pos[m] = p2[j]
            neg[m] = n2[j]
            j += 1
        else:
            keys[m] = k1[i]
            pos[m] = p1[i] + p2[j]
            neg[m] = n1[i] + n2[j]
            i += 1
            j += 1
        m += 1
    return m
