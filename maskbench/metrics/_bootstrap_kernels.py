"""numba kernels of the bootstrap: a replicate's SMIYC curve from weighted frame bins, a replicate's exact float32
histogram from weighted frame runs, and one frame's SMIYC components at many thresholds in one union-find pass.

Each kernel computes the same IEEE operations in the same order as the numpy code it stands for
(:func:`maskbench.metrics.smiyc.smiyc_curve`, :meth:`maskbench.metrics.pixel.PixelAccumulator.distinct_scores`,
:func:`maskbench.metrics.component_frame.frame_component_stats`); ``tests/metrics/test_bootstrap.py`` compares them
with a re-evaluation of every replicate.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def smiyc_replicate(thr, tp_rel, fp_rel, frame, weights, n_pos, n_neg, legacy):
    """The SMIYC curve of one replicate: frame ``f``'s bins counted ``weights[f]`` times.

    ``thr``/``tp_rel``/``fp_rel``/``frame``: every frame's bins in canonical order (threshold, positives, negatives
    descending), ``n_pos``/``n_neg`` > 0 the replicate's pooled counts. A replicate's rows in that order are the
    rows of its frames sorted as :func:`~maskbench.metrics.smiyc.smiyc_curve` sorts them (copies of a row are
    adjacent and identical), so the cumulative counts are the same; the newest protocol keeps the first row
    (one copy) and the last row of each threshold, the legacy one every copy after the first with a prediction.

    Returns ``(ok, ap_terms, roc_terms, fpr95, threshold)``: the summands of AP and AUROC as numpy forms them
    (``np.sum`` of them is the official value) or ``ok = False`` where the official code has no curve.
    """
    n_rows = thr.shape[0]
    size = 3
    for r in range(n_rows):
        size += weights[frame[r]]
    tp = np.empty(size)
    fp = np.empty(size)
    th = np.empty(size)
    P = float(n_pos)
    N = float(n_neg)
    m = 1  # tp[0] etc. is reserved for the newest protocol's start point
    ctp = 0.0
    cfp = 0.0
    have = False
    cur = 0.0
    for r in range(n_rows):
        w = weights[frame[r]]
        if w == 0:
            continue
        t = thr[r]
        a = float(tp_rel[r])
        b = float(fp_rel[r])
        if legacy:
            for _ in range(w):
                ctp += a
                cfp += b
                if m > 1 or ctp + cfp > 0.01:  # the official prefix without predictions is removed
                    tp[m] = ctp
                    fp[m] = cfp
                    th[m] = t
                    m += 1
            continue
        if not have:  # index 0 of the official collapse: the first row, one copy
            tp[m] = a
            fp[m] = b
            th[m] = t
            m += 1
            have = True
            cur = t
        elif t != cur:  # the previous row was the last of its threshold
            tp[m] = ctp
            fp[m] = cfp
            th[m] = cur
            m += 1
            cur = t
        ctp += w * a
        cfp += w * b
    if legacy:
        if m == 1:
            return False, np.empty(0), np.empty(0), 0.0, 0.0
        lo = 1
    else:
        if not have:
            return False, np.empty(0), np.empty(0), 0.0, 0.0
        tp[m] = ctp  # the last row ends the last threshold
        fp[m] = cfp
        th[m] = cur
        m += 1
        lo = 1
        top = th[1]
        if tp[1] != 0 or fp[1] != 0:  # start point
            lo = 0
            tp[0] = 0.0
            fp[0] = 0.0
            top = th[1] + 1
            th[0] = top
        if tp[m - 1] != P or fp[m - 1] != N:  # end point
            tp[m] = P
            fp[m] = N
            th[m] = top - 1
            m += 1
    n = m - lo
    tp = tp[lo:m]
    fp = fp[lo:m]
    # element-wise, as numpy: fn = P - tp, tn = N - fp, tpr = recall = tp / (tp + fn), fpr = fp / (fp + tn),
    # precision = tp / (tp + fp) (1 where nothing is predicted, newest protocol), F1 = 2tp / (2tp + fp + fn)
    tpr = np.empty(n)
    fpr = np.empty(n)
    prec = np.empty(n)
    f1 = np.empty(n)
    for i in range(n):
        a = tp[i]
        b = fp[i]
        fn = P - a
        tpr[i] = a / (a + fn)
        fpr[i] = b / (b + (N - b))
        prec[i] = a / (a + b)
        f1[i] = (2 * a) / (2 * a + b + fn)
    if not legacy:
        for i in range(n):
            if tp[i] + fp[i] == 0:
                prec[i] = 1.0
    ap_terms = np.empty(n - 1)
    roc_terms = np.empty(n - 1)
    for i in range(n - 1):
        roc_terms[i] = (fpr[i + 1] - fpr[i]) * (tpr[i + 1] + tpr[i]) / 2.0
    if legacy:  # np.trapezoid(precision, recall)
        for i in range(n - 1):
            ap_terms[i] = (tpr[i + 1] - tpr[i]) * (prec[i + 1] + prec[i]) / 2.0
    else:  # np.sum(np.diff(recall) * precision[1:])
        for i in range(n - 1):
            ap_terms[i] = (tpr[i + 1] - tpr[i]) * prec[i + 1]
    best = 0  # np.nanargmax (F1 is never NaN here: P > 0)
    for i in range(1, n):
        if f1[i] > f1[best]:
            best = i
    fpr95 = 1.0  # fpr[np.searchsorted(tpr, 0.95)], 1 past the end
    for i in range(n):
        if tpr[i] >= 0.95:
            fpr95 = fpr[i]
            break
    return True, ap_terms, roc_terms, fpr95, th[lo + best]


@njit(cache=True, nogil=True)
def pooled_runs(keys, pos, neg, frame, weights, out_keys, out_pos, out_neg):
    """A replicate's exact histogram from every frame's records (``keys`` ascending over all frames, a key held by
    several frames once per frame, ``frame`` the owner): per distinct key ``Σ weights[frame] · count``, keys whose
    total is 0 dropped; written to ``out_*``, returns their number."""
    n = keys.shape[0]
    m = 0
    i = 0
    while i < n:
        k = keys[i]
        p = 0
        q = 0
        while i < n and keys[i] == k:
            w = weights[frame[i]]
            p += w * pos[i]
            q += w * neg[i]
            i += 1
        if p != 0 or q != 0:
            out_keys[m] = k
            out_pos[m] = p
            out_neg[m] = q
            m += 1
    return m


@njit(cache=True, nogil=True)
def _find(parent, p):
    while parent[p] != p:
        parent[p] = parent[parent[p]]
        p = parent[p]
    return p


@njit(cache=True, nogil=True, error_model="numpy")
def components_at_thresholds(pix, keys, is_bg, gt_dense, width, gt_sizes, bg_kept, tkeys, min_pred, taus):
    """SMIYC component statistics of one frame at every threshold key of ``tkeys`` (descending) in one pass.

    The frame's non-void pixels: ``pix`` their row-major indices in a frame ``width`` wide, ``keys`` the
    monotone keys of their scores (prediction: ``key > tkey``), ``is_bg`` label 0, ``gt_dense`` their kept GT
    component (1..G, else <= 0); ``gt_sizes`` ``(G + 1,)`` the kept GT components' pixel counts (index 0 unused),
    ``bg_kept`` whether background pixels count (the official ROI), ``taus`` the 11 τ. Pixels are added in
    descending key order to a union-find over 8-neighbours: once every pixel above ``tkeys[j]`` is in, the sets
    are the 8-connected components of the prediction at ``tkeys[j]``; the official contingency quantities follow
    from each component's size and background count and the (component, GT component) overlaps.

    Returns per threshold ``n_pred`` (present kept predictions), ``tp``/``fn``/``fp`` ``(T, 11)`` per τ,
    ``siou_gt`` ``(T, G)``, and for the predictions touching a kept GT component (the others have PPV =
    sIoU = 0) ``ppv``/``siou_pred`` flattened with offsets ``pred_at``.
    """
    n_t = tkeys.shape[0]
    n_gt = gt_sizes.shape[0] - 1
    n_tau = taus.shape[0]
    lowest = tkeys[n_t - 1]
    n_cand = 0
    for i in range(pix.shape[0]):
        if keys[i] > lowest:
            n_cand += 1
    sel = np.empty(n_cand, np.int64)
    ckey = np.empty(n_cand, keys.dtype)
    k = 0
    for i in range(pix.shape[0]):
        if keys[i] > lowest:
            sel[k] = i
            ckey[k] = keys[i]
            k += 1
    order = np.argsort(ckey)[::-1]
    sel = sel[order]
    ckey = ckey[order]
    # box of the candidates: a slot map from pixel to candidate
    r0 = c0 = 1 << 62
    r1 = c1 = -1
    for k in range(n_cand):
        p = pix[sel[k]]
        r0 = min(r0, p // width)
        r1 = max(r1, p // width)
        c0 = min(c0, p % width)
        c1 = max(c1, p % width)
    bh = max(r1 - r0 + 1, 0)
    bw = max(c1 - c0 + 1, 0)
    slot = np.full((bh, bw), -1, np.int32)
    parent = np.empty(n_cand, np.int64)
    size = np.empty(n_cand, np.int64)
    bg = np.empty(n_cand, np.int64)
    gslot = np.empty(n_cand, np.int64)  # candidates in kept GT components (in added order) and their component
    gcomp = np.empty(n_cand, np.int64)
    n_g = 0
    for k in range(n_cand):
        g = gt_dense[sel[k]]
        if g > 0:
            gslot[n_g] = k
            gcomp[n_g] = g
            n_g += 1
    n_kept_bg = 0  # roots with size >= min_pred and a background pixel

    n_pred = np.zeros(n_t, np.int64)
    tp = np.zeros((n_t, n_tau), np.int64)
    fn = np.zeros((n_t, n_tau), np.int64)
    fp = np.zeros((n_t, n_tau), np.int64)
    siou_gt = np.zeros((n_t, n_gt))
    pred_at = np.zeros(n_t + 1, np.int64)
    ppv = np.empty(0)
    siou_pred = np.empty(0)
    inter = np.zeros(n_gt + 1, np.int64)
    union = np.zeros(n_gt + 1, np.int64)
    k = 0
    n_in = 0
    for t in range(n_t):
        tk = tkeys[t]
        while k < n_cand and ckey[k] > tk:
            p = pix[sel[k]]
            r = p // width - r0
            c = p % width - c0
            slot[r, c] = k
            parent[k] = k
            size[k] = 1
            bg[k] = 1 if is_bg[sel[k]] else 0
            if 1 >= min_pred and bg[k] > 0:
                n_kept_bg += 1
            for dr in range(-1, 2):
                rr = r + dr
                if rr < 0 or rr >= bh:
                    continue
                for dc in range(-1, 2):
                    cc = c + dc
                    if (dr == 0 and dc == 0) or cc < 0 or cc >= bw or slot[rr, cc] < 0:
                        continue
                    a = _find(parent, k)
                    b = _find(parent, slot[rr, cc])
                    if a == b:
                        continue
                    if size[a] >= min_pred and bg[a] > 0:
                        n_kept_bg -= 1
                    if size[b] >= min_pred and bg[b] > 0:
                        n_kept_bg -= 1
                    if size[a] < size[b]:
                        a, b = b, a
                    parent[b] = a
                    size[a] += size[b]
                    bg[a] += bg[b]
                    if size[a] >= min_pred and bg[a] > 0:
                        n_kept_bg += 1
            k += 1
        # (component, GT component) overlaps of the kept components among the predicted GT pixels
        while n_in < n_g and gslot[n_in] < k:
            n_in += 1
        pair = np.empty(n_in, np.int64)
        m = 0
        for j in range(n_in):
            root = _find(parent, gslot[j])
            if size[root] >= min_pred:
                pair[m] = root * (n_gt + 1) + gcomp[j]
                m += 1
        pair = np.sort(pair[:m])
        inter[:] = 0
        union[:] = 0
        for j in range(m):  # gt_inter; gt_union's background part once per (component, GT component)
            g = pair[j] % (n_gt + 1)
            inter[g] += 1
            if bg_kept and (j == 0 or pair[j] != pair[j - 1]):
                union[g] += bg[pair[j] // (n_gt + 1)]
        for g in range(1, n_gt + 1):
            siou_gt[t, g - 1] = float(inter[g]) / float(gt_sizes[g] + union[g])
        start = pred_at[t]
        grow = ppv.shape[0]
        while grow < start + m:
            grow = 2 * grow + 8
        if grow > ppv.shape[0]:
            ppv = np.concatenate((ppv[:start], np.empty(grow - start)))
            siou_pred = np.concatenate((siou_pred[:start], np.empty(grow - start)))
        touching = 0
        touching_bg = 0
        j = 0
        while j < m:
            root = pair[j] // (n_gt + 1)
            pred_inter = 0
            outside = 0  # pixels of the touched GT components outside every kept prediction
            while j < m and pair[j] // (n_gt + 1) == root:
                g = pair[j] % (n_gt + 1)
                code = pair[j]
                while j < m and pair[j] == code:
                    pred_inter += 1
                    j += 1
                outside += gt_sizes[g] - inter[g]
            pred_px = pred_inter + (bg[root] if bg_kept else 0)
            ppv[start + touching] = float(pred_inter) / float(pred_px)
            siou_pred[start + touching] = float(pred_inter) / float(pred_px + outside)
            touching += 1
            if bg[root] > 0:
                touching_bg += 1
        n_pred[t] = touching + ((n_kept_bg - touching_bg) if bg_kept else 0)
        pred_at[t + 1] = start + touching
        for i in range(n_tau):
            for g in range(n_gt):
                if siou_gt[t, g] >= taus[i]:
                    tp[t, i] += 1
                else:
                    fn[t, i] += 1
            fp[t, i] = n_pred[t] - touching
            for q in range(start, start + touching):
                if ppv[q] < taus[i]:
                    fp[t, i] += 1
    return n_pred, tp, fn, fp, siou_gt, ppv[:pred_at[n_t]].copy(), siou_pred[:pred_at[n_t]].copy(), pred_at
