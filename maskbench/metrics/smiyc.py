"""SegmentMeIfYouCan pixel metrics (`PixBinaryClass`), reproduced from per-frame float16 histograms.

Official code: SegmentMeIfYouCan/road-anomaly-benchmark, ``metrics/pixel_classification.py``
(``binary_confusion_matrix`` with ``bin_strategy='percentiles'``, 768 bins, ``aggregate_dynamic_bins``) and
``metrics/pixel_classification_curves.py::curves_from_cmats``; reference notes §1.2.

* ``smiyc`` = newest version (1c7804e): edges ``[vmin-eps, vmax+eps]`` with ``eps = max(0.01 (vmax-vmin), 0.01)``
  in float64 as under numpy 1.23 (``vmax-vmin`` itself is a float16 subtraction), collapse of repeated
  thresholds (index 0 kept as in the official code), curve start/end points, step-sum AP, trapezoid AUROC.
* ``smiyc-legacy`` = before 5a08be0 (Aug 2023): edges ``[0, 1]``, no collapse, leading points without
  predictions removed, ``AP = trapz(precision, recall)``.

Each frame's edges are the numpy 'linear' quantiles (384 per class) of its float16 scores; the bin counts
``[e_k, e_k+1)`` (last bin closed) are read off the frame's exact float16 histogram, which gives the same
numbers as ``np.quantile`` / ``np.histogram`` on the pixels.

Tie rule (deterministic, order-independent; the official ``np.argsort`` leaves ties in arbitrary, frame-order
dependent order, notes §9.1): bins of all frames are sorted by (lower edge, positives, negatives) descending.
In ``smiyc`` this only decides which tied bin forms the partial first curve point when several frames share
the top edge; in ``smiyc-legacy`` (no collapse) it fixes every intermediate point at tied edges.
"""

import numpy as np

from maskbench.metrics._kernels import VALUES16

NUM_BINS = 768  # MetricPixelClassification.configs[1] ('PixBinaryClass')
_VALUES64 = VALUES16.astype(np.float64)


def _quantiles(keys, counts, n):
    """``np.quantile(x, np.linspace(0, 1, min(384, n)))`` ('linear') of the n float16 scores given as a
    histogram (ascending keys with counts), with numpy's lerp: the difference b - a is a float16
    subtraction, the interpolation is float64."""
    q = np.linspace(0, 1, min(NUM_BINS // 2, n))
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    above = virtual >= n - 1
    prev[above] = -1  # numpy takes the last element and computes gamma from index -1
    nxt[above] = -1
    gamma = virtual - prev
    prev_i = prev.astype(np.intp)
    nxt_i = nxt.astype(np.intp)
    prev_i[prev_i < 0] += n
    nxt_i[nxt_i < 0] += n
    cum = np.cumsum(counts)
    a = VALUES16[keys[np.searchsorted(cum, prev_i, side="right")]]
    b = VALUES16[keys[np.searchsorted(cum, nxt_i, side="right")]]
    diff = b - a  # float16, as numpy's _lerp
    out = np.add(a, diff * gamma)
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


def _bin_counts(keys, counts, edges):
    """np.histogram counts of the scores (histogram form) in bins ``[e_k, e_k+1)``, the last one closed."""
    values = _VALUES64[keys]
    cum = np.concatenate([[0], np.cumsum(counts)])
    below = np.concatenate([
        cum[np.searchsorted(values, edges[:-1], side="left")],
        cum[np.searchsorted(values, edges[-1:], side="right")],
    ])
    return np.diff(below)


def frame_bins(hist_pos, hist_neg, *, legacy):
    """One frame's bins from its float16 histograms (int64[65536] over monotone keys).

    Returns (lower edges descending float64, positives int64, negatives int64), or None for a frame
    without non-void pixel in the newest version (the official code crashes there: ``np.min`` of nothing).
    """
    kp = np.flatnonzero(hist_pos)
    kn = np.flatnonzero(hist_neg)
    cp = hist_pos[kp]
    cn = hist_neg[kn]
    n_pos = int(cp.sum())
    n_neg = int(cn.sum())
    if legacy:
        parts = [np.array([0.0, 1.0])]
    else:
        if n_pos + n_neg == 0:
            return None
        kmin = min(kp[0] if n_pos else 65535, kn[0] if n_neg else 65535)
        kmax = max(kp[-1] if n_pos else 0, kn[-1] if n_neg else 0)
        vmin, vmax = VALUES16[kmin], VALUES16[kmax]
        vrange = vmax - vmin  # float16 scalar subtraction
        eps = max(float(vrange) * 1e-2, 1e-2)  # float64 (numpy 1.23: float16 scalar * python float)
        parts = [np.array([float(vmin) - eps, float(vmax) + eps])]
    if n_pos:
        parts.append(_quantiles(kp, cp, n_pos))
    if n_neg:
        parts.append(_quantiles(kn, cn, n_neg))
    edges = np.unique(np.concatenate(parts))
    tp_rel = _bin_counts(kp, cp, edges)
    fp_rel = _bin_counts(kn, cn, edges)
    return edges[:-1][::-1].copy(), tp_rel[::-1].copy(), fp_rel[::-1].copy()


def canonical_order(thresholds, tp_rel, fp_rel):
    """Row order of the merged curve: (threshold, positives, negatives) descending (the tie rule)."""
    return np.lexsort((fp_rel, tp_rel, thresholds))[::-1]


def smiyc_curve(thresholds, tp_rel, fp_rel, n_pos, n_neg, *, legacy):
    """Dataset curve and metrics from all frames' bins, as ``aggregate_dynamic_bins`` + ``curves_from_cmats``.

    Returns a dict with ap, auroc, fpr95, threshold (best-F1 lower edge, float64) and the curve arrays,
    or None when the official code has no curve (legacy: no prediction at all).
    """
    order = canonical_order(thresholds, tp_rel, fp_rel)
    thr = thresholds[order]
    tp = np.cumsum(tp_rel[order].astype(np.float64))
    fp = np.cumsum(fp_rel[order].astype(np.float64))
    fn = n_pos - tp
    tn = n_neg - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        if legacy:
            has_pred = np.flatnonzero(tp + fp > 0.01)
            if has_pred.size == 0:
                return None
            start = has_pred[0]
            tp, fp, fn, tn, thr = tp[start:], fp[start:], fn[start:], tn[start:], thr[start:]
            tpr = tp / (tp + fn)
            fpr = fp / (fp + tn)
            precision = tp / (tp + fp)
            recall = tp / (tp + fn)
            ap = np.trapezoid(precision, recall)
        else:
            idx = np.concatenate([[0], np.nonzero(thr[:-1] != thr[1:])[0], [len(thr) - 1]])
            tp, fp, fn, tn, thr = tp[idx], fp[idx], fn[idx], tn[idx], thr[idx]
            num_pos = tp[0] + fn[0]
            num_neg = fp[0] + tn[0]
            if tp[0] != 0 or fp[0] != 0:
                tp = np.concatenate([[0], tp])
                fp = np.concatenate([[0], fp])
                fn = np.concatenate([[num_pos], fn])
                tn = np.concatenate([[num_neg], tn])
                thr = np.concatenate([[float(np.max(thr)) + 1], thr])
            if tp[-1] != num_pos or fp[-1] != num_neg:
                tp = np.concatenate([tp, [num_pos]])
                fp = np.concatenate([fp, [num_neg]])
                fn = np.concatenate([fn, [0]])
                tn = np.concatenate([tn, [0]])
                thr = np.concatenate([thr, [float(np.max(thr)) - 1]])
            tpr = tp / (tp + fn)
            fpr = fp / (fp + tn)
            n_pred = tp + fp
            precision = np.ones(tp.shape[0], np.float64)
            precision[n_pred > 0] = tp[n_pred > 0] / n_pred[n_pred > 0]
            recall = tp / (tp + fn)
            ap = np.sum(np.diff(recall) * precision[1:])
        f1 = (2 * tp) / (2 * tp + fp + fn)
    i95 = np.searchsorted(tpr, 0.95)
    fpr95 = fpr[i95] if i95 < tpr.shape[0] else 1.0
    best = np.nanargmax(f1) if np.any(~np.isnan(f1)) else None
    return dict(
        ap=float(ap),
        auroc=float(np.trapezoid(tpr, fpr)),
        fpr95=float(fpr95),
        threshold=None if best is None else float(thr[best]),
        precision=precision,
        recall=recall,
        tpr=tpr,
        fpr=fpr,
        thresholds=thr,
    )
