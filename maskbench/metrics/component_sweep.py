"""One frame's SMIYC component statistics at many thresholds in one pass (what a bootstrap needs).

``component_sweep(scores, gt, thresholds)`` gives, for every threshold, the :class:`ComponentTotals` that
:func:`maskbench.metrics.component_frame.frame_component_stats` at that threshold would add to a
:class:`~maskbench.metrics.components.ComponentAccumulator`, bit for bit: the same binarisation (``scores > t``
in the score dtype with numpy-1 semantics, void zeroed before labelling), the same 8-connected components, size
filters and contingency quantities. The predictions at decreasing thresholds are nested, so one union-find pass
over the non-void pixels in descending score order (:func:`maskbench.metrics._bootstrap_kernels.
components_at_thresholds`) yields the components at every threshold on the way.

Scores may be a full 2-D map or the 1-D scores of the non-void pixels (labels 0 / 1, row-major order), the form
``bench run`` stores per frame.
"""

import numpy as np
from scipy.ndimage import label

from maskbench.errors import InputError
from maskbench.metrics import _component_kernels
from maskbench.metrics._bootstrap_kernels import components_at_thresholds
from maskbench.metrics._validate import check_label_map, check_score_map
from maskbench.metrics.component_frame import EIGHT, TAUS, check_score_dtype, check_sizes, check_threshold
from maskbench.metrics.components import EXACT_SHIFT, ComponentTotals


def labelled_scores(scores, gt, dtype):
    """``(gt, flat indices of the non-void pixels, their scores in dtype)`` from a full 2-D map or from the 1-D
    scores of the non-void pixels; rejects NaN / inf and (for float16) values beyond float16's range."""
    scores = np.asarray(scores)
    gt = np.asarray(gt)
    if gt.ndim != 2:
        raise InputError(f"gt: expected a 2-D label map, got shape {gt.shape}")
    roi = np.flatnonzero(gt.reshape(-1) <= 1)
    if scores.ndim == 1:
        check_label_map(gt, gt.shape, name="gt")
        if scores.shape[0] != roi.size:
            raise InputError(f"scores: {scores.shape[0]} values for {roi.size} non-void pixels (labels 0 / 1)")
        check_score_map(scores[None], name="scores")
    else:
        check_label_map(gt, check_score_map(scores).shape, name="gt")
        scores = scores.reshape(-1)[roi]
    if dtype == np.float16 and scores.dtype != np.float16 and scores.size and np.abs(scores).max() >= 65520.0:
        raise InputError(f"scores: values beyond float16's range (max |s| = {float(np.abs(scores).max())}) under a "
                         "float16 protocol")
    return gt, roi, scores.astype(dtype, copy=False)


def threshold_keys(thresholds, score_dtype):
    """Monotone keys of the thresholds as the components compare them (``key(s) > key(t)`` iff ``s > t``)."""
    dtype = check_score_dtype(score_dtype)
    return [int(_component_kernels.threshold_key(check_threshold(t, dtype))) for t in thresholds]


def component_sweep(scores, gt, thresholds, *, track="anomaly", score_dtype=np.float16, min_pred_size=None,
                    min_gt_size=None):
    """``{threshold: ComponentTotals}`` of one frame, for every threshold of ``thresholds`` (floats)."""
    dtype = check_score_dtype(score_dtype)
    sizes = check_sizes(track, min_pred_size, min_gt_size)
    thresholds = list(thresholds)
    keys = threshold_keys(thresholds, dtype)
    at = sweep_keys(scores, gt, keys, dtype, *sizes)
    return {t: at[key] for t, key in zip(thresholds, keys)}


def sweep_keys(scores, gt, keys, dtype, min_pred, min_gt):
    """``{key: ComponentTotals}`` for the threshold keys ``keys`` (:func:`threshold_keys`); the work of
    :func:`component_sweep`."""
    order = sorted(set(keys), reverse=True)
    gt, roi, values = labelled_scores(scores, gt, dtype)
    zeros = np.zeros(len(TAUS), np.int64)
    if roi.size == 0:
        return {key: ComponentTotals(0, 1, 0, 0, 0, 0, 0, zeros, zeros, zeros) for key in order}
    if not order:
        return {}
    width = gt.shape[1]
    labels = gt.reshape(-1)[roi]
    # GT components (8-connected, labelled on their box), kept by size; background voided when smaller than min_gt
    in_gt = np.flatnonzero(labels == 1)
    gt_dense_roi = np.zeros(roi.size, np.int64)
    sizes = np.zeros(1, np.int64)
    bg_kept = gt.size >= min_gt
    if in_gt.size:
        rows, cols = np.divmod(roi[in_gt], width)
        r0, c0 = rows.min(), cols.min()
        ids, n = label(gt[r0:rows.max() + 1, c0:cols.max() + 1] == 1, EIGHT)
        all_sizes = np.bincount(ids.reshape(-1), minlength=n + 1)
        bg_kept = gt.size - all_sizes[1:].sum() >= min_gt
        keep = np.flatnonzero(all_sizes[1:] >= min_gt) + 1
        dense = np.zeros(n + 1, np.int64)
        dense[keep] = np.arange(1, keep.size + 1)
        sizes = np.concatenate([[0], all_sizes[keep]])
        gt_dense_roi[in_gt] = dense[ids[rows - r0, cols - c0]]
    bits = values.view(np.uint16 if dtype == np.float16 else np.uint32)
    key_of = _component_kernels.float_keys(bits)
    tkeys = np.array(order, dtype=key_of.dtype)
    n_pred, tp, fn, fp, siou_gt, ppv, siou_pred, pred_at = components_at_thresholds(
        roi, key_of, labels == 0, gt_dense_roi, width, sizes, bool(bg_kept), tkeys, min_pred,
        np.asarray(TAUS))
    n_gt = sizes.size - 1
    gt_sums = _exact_sums(siou_gt.reshape(-1), np.arange(len(order) + 1) * n_gt)
    siou_pred_sums, ppv_sums = _exact_sums(siou_pred, pred_at), _exact_sums(ppv, pred_at)
    return {key: ComponentTotals(1, 0, n_gt, int(n_pred[j]), gt_sums[j], siou_pred_sums[j], ppv_sums[j], tp[j], fn[j],
                                 fp[j]) for j, key in enumerate(order)}


def _exact_sums(values, bounds):
    """Exact sums of ``values[bounds[i]:bounds[i + 1]]`` (non-negative float64) as integer multiples of 2**-1074,
    as :func:`maskbench.metrics.components._exact_sum` forms them."""
    terms = [_units(*v.as_integer_ratio()) for v in values.tolist()]
    return [sum(terms[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def _units(num, den):
    return num << (EXACT_SHIFT - den.bit_length() + 1)
