"""Numba kernels of the pixel metrics: exact score histograms and run-length records.

Scores are ordered through *monotone keys*: the IEEE bit pattern mapped to an unsigned integer whose
order is the numeric order (sign bit set -> all bits flipped, else sign bit set). ``-0.0`` is mapped to
the key of ``+0.0`` so that equal scores share one key, as in a sort by value (scikit-learn).
Labels: 0 inlier, 1 anomaly, any other value void (skipped).
"""

import numpy as np
from numba import njit


def _key16_values():
    """float16 value of each of the 65,536 monotone keys (NaN patterns included, never counted)."""
    keys = np.arange(65536, dtype=np.uint32)
    bits = np.where(keys >= 0x8000, keys ^ 0x8000, ~keys & 0xFFFF).astype(np.uint16)
    return bits.view(np.float16)


VALUES16 = _key16_values()  # key -> float16 score


def keys32_to_values(keys):
    """float32 values of monotone uint32 keys."""
    return _keys32_to_bits(keys).view(np.float32)


@njit(cache=True, nogil=True)
def _keys32_to_bits(keys):
    bits = np.empty(keys.shape[0], np.uint32)
    for i in range(keys.shape[0]):
        k = keys[i]
        bits[i] = k ^ np.uint32(0x80000000) if k & np.uint32(0x80000000) else ~k
    return bits


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
def _radix_sort_u32(a, n, tmp):
    """LSD radix sort of ``a[:n]`` in place (4 digits of 8 bits; a digit shared by every key is skipped);
    ``tmp`` is scratch of at least n elements. Plain loops only: slicing costs seconds of compile time."""
    src = a
    dst = tmp
    swapped = False
    count = np.empty(256, np.int64)
    for d in range(4):
        shift = 8 * d
        for b in range(256):
            count[b] = 0
        for i in range(n):
            count[(src[i] >> shift) & 0xFF] += 1
        if n == 0 or count[(src[0] >> shift) & 0xFF] == n:
            continue
        total = 0
        for b in range(256):
            c = count[b]
            count[b] = total
            total += c
        for i in range(n):
            k = src[i]
            b = (k >> shift) & 0xFF
            dst[count[b]] = k
            count[b] += 1
        src, dst = dst, src
        swapped = not swapped
    if swapped:
        for i in range(n):
            a[i] = src[i]


@njit(cache=True, nogil=True)
def frame_keys32(bits, labels):
    """One frame -> (monotone keys of the positives, of the negatives), exact-size uint32 arrays."""
    n = bits.shape[0]
    npos = 0
    nneg = 0
    for i in range(n):
        if labels[i] == 1:
            npos += 1
        elif labels[i] == 0:
            nneg += 1
    kp = np.empty(npos, np.uint32)
    kn = np.empty(nneg, np.uint32)
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
    return kp, kn


@njit(cache=True, nogil=True)
def runs_from_keys(kp, kn):
    """Keys of positives and negatives (sorted in place here) -> (keys ascending, positives, negatives, m)
    per distinct key (first m entries): radix sort, then a run-length merge of the two lists."""
    npos = kp.shape[0]
    nneg = kn.shape[0]
    tmp = np.empty(max(npos, nneg), np.uint32)
    _radix_sort_u32(kp, npos, tmp)
    _radix_sort_u32(kn, nneg, tmp)
    # run-length merge of the two sorted key lists into arrays sized for the worst case (untouched pages
    # cost no memory); the caller keeps the first ``m`` records
    keys = np.empty(npos + nneg, np.uint32)
    cpos = np.empty(npos + nneg, np.uint32)
    cneg = np.empty(npos + nneg, np.uint32)
    i = 0
    j = 0
    r = -1
    while i < npos or j < nneg:
        if j >= nneg or (i < npos and kp[i] <= kn[j]):
            k = kp[i]
            i += 1
            is_pos = True
        else:
            k = kn[j]
            j += 1
            is_pos = False
        if r < 0 or keys[r] != k:
            r += 1
            keys[r] = k
            cpos[r] = 0
            cneg[r] = 0
        if is_pos:
            cpos[r] += 1
        else:
            cneg[r] += 1
    return keys, cpos, cneg, r + 1


@njit(cache=True, nogil=True)
def empty_like(n, like):
    """``np.empty(n, like.dtype)`` from numba's allocator. numpy asks for transparent huge pages on large
    arrays (madvise); on a fragmented host the first touch then stalls in page compaction (measured here:
    merges 3x slower), so the big transient buffers of this module come from here."""
    return np.empty(n, like.dtype)


@njit(cache=True, nogil=True)
def merge_runs(k1, p1, n1, k2, p2, n2):
    """Merge two key-sorted run lists (counts of one dtype), adding the counts of equal keys. Returns
    (keys, pos, neg, m): arrays sized for the worst case, the first m entries valid. Branch-free step."""
    a = k1.shape[0]
    b = k2.shape[0]
    keys = np.empty(a + b, k1.dtype)
    pos = np.empty(a + b, p1.dtype)
    neg = np.empty(a + b, p1.dtype)
    i = 0
    j = 0
    m = 0
    while i < a and j < b:
        ka = k1[i]
        kb = k2[j]
        t1 = ka <= kb
        t2 = kb <= ka
        keys[m] = ka if t1 else kb
        pos[m] = (p1[i] if t1 else 0) + (p2[j] if t2 else 0)
        neg[m] = (n1[i] if t1 else 0) + (n2[j] if t2 else 0)
        i += t1
        j += t2
        m += 1
    while i < a:
        keys[m] = k1[i]
        pos[m] = p1[i]
        neg[m] = n1[i]
        i += 1
        m += 1
    while j < b:
        keys[m] = k2[j]
        pos[m] = p2[j]
        neg[m] = n2[j]
        j += 1
        m += 1
    return keys, pos, neg, m


@njit(cache=True, nogil=True, error_model="numpy")
def curve_scan(pos, neg):
    """One pass over the exact curve (``pos``/``neg`` per distinct score, ascending score; P > 0 needed).

    Returns the summands of scikit-learn's AP (``-sum(diff(recall) * precision[:-1])`` on the reversed curve)
    (``ap_terms``) and of the trapezoid AUROC over ``roc_curve(drop_intermediate=True)`` (``roc_terms``),
    element for element as numpy computes them, so that ``np.sum`` over them reproduces sklearn bit for bit,
    then FPR95 first_geq, strict_dropint and closest (NaN without negatives) and the best-F1 index
    (ascending order).
    """
    m = pos.shape[0]
    ap_terms = np.empty(m)
    roc_terms = np.empty(m)
    p_int = 0
    n_int = 0
    for a in range(m):
        p_int += pos[a]
        n_int += neg[a]
    P = float(p_int)
    N = float(n_int)
    tps = 0.0
    fps = 0.0
    prev_rec = 0.0
    fpr_geq = np.nan
    fpr_strict = np.nan
    found_geq = False
    found_strict = False
    best_key = np.inf
    fps_closest = 0.0
    closest_open = True
    best_f1 = -1.0
    best_i = 0
    n_roc = 0
    prev_x = 0.0
    prev_y = 0.0
    for i in range(m):  # thresholds descending
        a = m - 1 - i
        dp = float(pos[a])
        dn = float(neg[a])
        tps += dp
        fps += dn
        rec = tps / P
        ap_terms[a] = (prev_rec - rec) * (tps / (tps + fps))
        prev_rec = rec
        if not found_geq and rec >= 0.95:
            found_geq = True
            fpr_geq = fps / N
        if closest_open:  # hendrycks: argmin |recall - 0.95| from full recall downwards, first minimum
            key = abs(rec - 0.95)
            if key <= best_key:
                best_key = key
                fps_closest = fps
            closest_open = tps < P
        f1 = 2 * tps / (2 * tps + fps + (P - tps))
        if f1 > best_f1:
            best_f1 = f1
            best_i = a
        keep = i == 0 or i == m - 1 or m <= 2
        if not keep:
            keep = float(neg[a - 1]) != dn or float(pos[a - 1]) != dp
        if keep:
            x = fps / N
            y = rec
            roc_terms[n_roc] = (x - prev_x) * (y + prev_y) / 2.0
            n_roc += 1
            if not found_strict and y > 0.95:
                found_strict = True
                fpr_strict = x
            prev_x = x
            prev_y = y
    return ap_terms, roc_terms[:n_roc], fpr_geq, fpr_strict, fps_closest / N, best_i


@njit(cache=True, nogil=True, error_model="numpy")
def mdm_scan(values, pos, neg, thresholds, out):
    """Longest union of consecutive F1 intervals with F1 > T for each T (see :mod:`maskbench.metrics.mdm`).

    ``values`` ascending in [0, 1]; interval k predicts {s >= values[k]} on [values[k-1], values[k]).
    """
    m = values.shape[0]
    nt = thresholds.shape[0]
    tp = 0
    pp = 0
    for a in range(m):
        tp += pos[a]
        pp += pos[a] + neg[a]
    n_pos = tp
    start = np.empty(nt)
    for t in range(nt):
        start[t] = -1.0
        out[t] = 0.0
    for k in range(m + 1):
        left = 0.0 if k == 0 else float(values[k - 1])
        right = float(values[k]) if k < m else 1.0
        if k > 0 or right > 0.0:  # I_0 = [0, v_1) is empty when v_1 == 0
            f1 = 2.0 * tp / (n_pos + pp)
            for t in range(nt):
                if f1 > thresholds[t]:
                    if start[t] < 0.0:
                        start[t] = left
                    out[t] = max(out[t], right - start[t])
                else:
                    start[t] = -1.0
        if k < m:
            tp -= pos[k]
            pp -= pos[k] + neg[k]
