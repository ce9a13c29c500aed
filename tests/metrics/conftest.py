"""Independent references for the pixel metric tests (slow, literal; never the code under test).

* ``smiyc_reference``: a literal transcription of SegmentMeIfYouCan ``PixBinaryClass`` (reference notes §1.2;
  road-anomaly-benchmark ``binary_confusion_matrix`` / ``aggregate_dynamic_bins`` / ``curves_from_cmats``), in
  its newest form and in the pre-Aug-2023 form (edges [0, 1], no collapse, prefix without predictions removed,
  AP = trapezoid). It runs ``np.quantile`` and ``np.histogram`` on the pixels of every frame and computes
  ``eps`` / ``vmin - eps`` in float64 as numpy 1.23 does. The only deliberate change is the order of tied
  thresholds (official: ``np.argsort`` quicksort, arbitrary): ``sort="canonical"`` orders rows by
  (threshold, positives, negatives) descending with Python's ``sorted``; ``sort="official"`` keeps argsort.
* ``sklearn_reference``: pooled scikit-learn AP / AUROC / FPR95 under each rule / best-F1 threshold.
* ``mdm_grid``: MDM on a dense grid of thresholds (brute force).

Tests reach them through the session fixture ``pixref``.
"""

import types

import numpy as np
import pytest
from sklearn.metrics import (average_precision_score, confusion_matrix_at_thresholds, roc_auc_score,
                             roc_curve)


def _void_other_labels(lab):
    """maskbench convention: any label other than 0/1 is void (the official loader only produces 0/1/255)."""
    return np.where(lab > 1, 255, lab).astype(np.uint8)


def _binary_confusion_matrix_percentiles(prob, gt_bool, legacy, num_bins=768):
    prob_at_true = prob[gt_bool]
    prob_at_false = prob[~gt_bool]
    if legacy:
        bins = [[0, 1]]
    else:
        vmin = np.min(prob)
        vmax = np.max(prob)
        vrange = vmax - vmin  # float16 - float16 -> float16 (numpy 1 and 2 alike)
        eps = np.maximum(np.float64(vrange) * 1e-2, 1e-2)  # numpy 1.23: float16 scalar * float -> float64
        bins = [[np.float64(vmin) - eps, np.float64(vmax) + eps]]  # numpy 1.23: float64
    # numpy 2.4.6's default float16 sort returns unsorted output on this AVX-512 machine for some inputs
    # (found here: np.sort / np.unique / np.histogram on float16). Sort stably before np.quantile and give
    # np.histogram float32 copies (same values; its edge comparisons are float64 either way).
    prob_at_true = np.sort(prob_at_true, kind="stable")
    prob_at_false = np.sort(prob_at_false, kind="stable")
    if prob_at_true.size:
        bins += [np.quantile(prob_at_true, np.linspace(0, 1, min(num_bins // 2, prob_at_true.size)))]
    if prob_at_false.size:
        bins += [np.quantile(prob_at_false, np.linspace(0, 1, min(num_bins // 2, prob_at_false.size)))]
    bins = np.unique(np.concatenate(bins))
    tp_rel, _ = np.histogram(prob_at_true.astype(np.float32), bins=bins)
    fp_rel, bin_edges = np.histogram(prob_at_false.astype(np.float32), bins=bins)
    return dict(bin_edges=bin_edges[::-1], tp_rel=tp_rel[::-1], fp_rel=fp_rel[::-1],
                num_pos=int(np.count_nonzero(gt_bool)), num_neg=int(gt_bool.size - np.count_nonzero(gt_bool)))


def smiyc_reference(scores_list, labels_list, *, legacy=False, sort="canonical"):
    """Official SMIYC pixel metrics (dict: ap, auroc, fpr95, threshold), or None where the official code
    raises. All-void frames are skipped in the newest version (official: crash)."""
    frames = []
    for p, lab in zip(scores_list, labels_list):
        p = np.asarray(p).astype(np.float16)  # Evaluation.save_output
        lab = _void_other_labels(lab)
        roi = lab < 255
        if not legacy and not roi.any():
            continue
        frames.append(_binary_confusion_matrix_percentiles(p[roi], lab[roi].astype(bool), legacy))
    if not frames:
        return None
    thresholds = np.concatenate([r["bin_edges"][1:] for r in frames])
    tp_relative = np.concatenate([r["tp_rel"] for r in frames])
    fp_relative = np.concatenate([r["fp_rel"] for r in frames])
    num_positives = sum(r["num_pos"] for r in frames)
    num_negatives = sum(r["num_neg"] for r in frames)
    if sort == "official":
        order = np.argsort(thresholds)[::-1]
    else:
        order = np.array(sorted(range(len(thresholds)),
                                key=lambda i: (thresholds[i], tp_relative[i], fp_relative[i]), reverse=True),
                         dtype=np.intp)
    tp_cumu = np.cumsum(tp_relative[order].astype(np.float64))
    fp_cumu = np.cumsum(fp_relative[order].astype(np.float64))
    cmats = np.array([[tp_cumu, fp_cumu], [num_positives - tp_cumu, num_negatives - fp_cumu]]).transpose([2, 0, 1])
    thresholds = thresholds[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (_curves_legacy if legacy else _curves_new)(cmats, thresholds)


def _finish(tp, fp, fn, tn, thresholds, tp_rates, fp_rates, ap):
    f1_scores = (2 * tp) / (2 * tp + fp + fn)
    tpr95_index = np.searchsorted(tp_rates, 0.95)
    fpr_tpr95 = fp_rates[tpr95_index] if tpr95_index < tp_rates.shape[0] else 1.0
    ix = np.nanargmax(f1_scores)
    return dict(ap=float(ap), auroc=float(np.trapezoid(tp_rates, fp_rates)), fpr95=float(fpr_tpr95),
                threshold=float(thresholds[ix]), thresholds=thresholds)


def _curves_new(cmats, thresholds):
    idx = np.concatenate([[0], np.nonzero(thresholds[:-1] != thresholds[1:])[0], [cmats.__len__() - 1]])
    cmats = cmats[idx]
    thresholds = thresholds[idx]
    tp, fp, fn, tn = cmats[:, 0, 0], cmats[:, 0, 1], cmats[:, 1, 0], cmats[:, 1, 1]
    num_pos = tp[0] + fn[0]
    num_neg = fp[0] + tn[0]
    if tp[0] != 0 or fp[0] != 0:
        tp = np.concatenate([[0], tp])
        fp = np.concatenate([[0], fp])
        fn = np.concatenate([[num_pos], fn])
        tn = np.concatenate([[num_neg], tn])
        thresholds = np.concatenate([[float(np.max(thresholds)) + 1], thresholds])
    if tp[-1] != num_pos or fp[-1] != num_neg:
        tp = np.concatenate([tp, [num_pos]])
        fp = np.concatenate([fp, [num_neg]])
        fn = np.concatenate([fn, [0]])
        tn = np.concatenate([tn, [0]])
        thresholds = np.concatenate([thresholds, [float(np.max(thresholds)) - 1]])
    tp_rates = tp / (tp + fn)
    fp_rates = fp / (fp + tn)
    n_preds = tp + fp
    precisions = np.ones(tp.shape[0], np.float64)
    precisions[n_preds > 0] = tp[n_preds > 0] / n_preds[n_preds > 0]
    recalls = tp / (tp + fn)
    ap = np.sum(np.diff(recalls) * precisions[1:])
    return _finish(tp, fp, fn, tn, thresholds, tp_rates, fp_rates, ap)


def _curves_legacy(cmats, thresholds):
    num_remove = None
    for i in range(cmats.__len__()):  # get_no_prediction_prefix
        if cmats[i, 0, 0] + cmats[i, 0, 1] > 0.01:
            num_remove = i
            break
    if num_remove is None:
        return None  # official: ValueError('No predictions made at all')
    cmats = cmats[num_remove:]
    thresholds = thresholds[num_remove:]
    tp, fp, fn, tn = cmats[:, 0, 0], cmats[:, 0, 1], cmats[:, 1, 0], cmats[:, 1, 1]
    tp_rates = tp / (tp + fn)
    fp_rates = fp / (fp + tn)
    precisions = tp / (tp + fp)
    recalls = tp / (tp + fn)
    ap = np.trapezoid(precisions, recalls)  # np.trapz in the official code
    return _finish(tp, fp, fn, tn, thresholds, tp_rates, fp_rates, ap)


def pooled(scores_list, labels_list, dtype):
    """Non-void pixels of all frames, scores cast to ``dtype`` then float64 (exact), labels 0/1."""
    s, g = [], []
    for p, lab in zip(scores_list, labels_list):
        keep = (lab == 0) | (lab == 1)
        s.append(np.asarray(p).astype(dtype)[keep].astype(np.float64))
        g.append(lab[keep].astype(np.int64))
    return np.concatenate(s), np.concatenate(g)


def sklearn_reference(y_score, y_true):
    """AP, AUROC, FPR95 for each rule and the best-F1 threshold of the pooled pixels, via scikit-learn."""
    out = dict(ap=average_precision_score(y_true, y_score))
    if (y_true == 0).any():
        out["auroc"] = roc_auc_score(y_true, y_score)
        fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
        out["first_geq"] = fpr[np.argmax(tpr >= 0.95)]
        fpr_d, tpr_d, _ = roc_curve(y_true, y_score)  # RbA / DenseHybrid loop: first tpr > 0.95
        out["strict_dropint"] = next(f for t, f in zip(tpr_d, fpr_d) if t > 0.95)
        # hendrycks fpr_and_fdr_at_recall: points up to the first full-recall one, scanned downwards
        tpr_c, fpr_c = tpr[1:], fpr[1:]
        last = int(np.argmax(tpr_c >= 1.0))
        cand_t, cand_f = tpr_c[last::-1], fpr_c[last::-1]
        out["closest"] = cand_f[int(np.argmin(np.abs(cand_t - 0.95)))]
        out["interp"] = ood_metrics_fpr_at_95_tpr(y_score, y_true)
        out["first_geq_dropint"] = fpr_d[tpr_d >= 0.95][0]  # Open-set-M2F calculate_stat
        out["maskomaly_tpr90"] = next(f for t, f in zip(tpr_d, fpr_d) if t > 0.9)  # Maskomaly eval.calculate_auroc
    _, fps, fns, tps, thr = confusion_matrix_at_thresholds(y_true, y_score)
    out["threshold"] = thr[np.nanargmax(2 * tps / (2 * tps + fps + fns))]
    return out


def ood_metrics_fpr_at_95_tpr(preds, labels):
    """tayden/ood-metrics ``fpr_at_95_tpr``, literally (default ``roc_curve``, Python ``all`` over the arrays)."""
    fpr, tpr, _ = roc_curve(labels, preds)
    if all(tpr < 0.95):
        return 0
    elif all(tpr >= 0.95):
        idxs = [i for i, x in enumerate(tpr) if x >= 0.95]
        return min(map(lambda idx: fpr[idx], idxs))
    else:
        return np.interp(0.95, tpr, fpr)


def mdm_grid(y_score, y_true, threshold, n_grid):
    """Brute force: longest run of grid points z in linspace(0, 1, n_grid) with F1(s > z) > T, as a length
    ((points - 1) / (n_grid - 1)); the exact MDM lies within 2 / (n_grid - 1) of it."""
    z = np.linspace(0.0, 1.0, n_grid)
    order = np.argsort(y_score)
    s, g = y_score[order], y_true[order]
    n_pos = g.sum()
    cum_pos = np.concatenate([[0], np.cumsum(g)])
    above = len(s) - np.searchsorted(s, z, side="right")  # count of s > z
    tp = n_pos - cum_pos[len(s) - above]
    f1 = 2 * tp / (n_pos + above)
    best = run = 0
    for ok in f1 > threshold:
        run = run + 1 if ok else 0
        best = max(best, run)
    return max(best - 1, 0) / (n_grid - 1), best




def make_frames(seed, *, n_frames=3, max_side=24, kind="prob", n_distinct=0, dtype=np.float32,
                p_void=0.1, p_pos=0.1, all_void=False, no_pos_frame=False):
    """Synthetic frames: positives score higher on average; ``n_distinct`` > 0 draws scores from that many
    values (ties); ``kind``: 'prob' in [0, 1], 'logit' ~ N(0, 3), 'energy' ~ N(-30, 1) (negative).
    Labels use 0, 1, 255 and 7 (void). Optionally one all-void frame and one frame without positives."""
    r = np.random.default_rng(seed)
    scores, labels = [], []
    for f in range(n_frames):
        h, w = int(r.integers(1, max_side + 1)), int(r.integers(1, max_side + 1))
        u = r.random((h, w))
        lab = np.where(u < p_pos, 1, 0).astype(np.uint8)
        lab[r.random((h, w)) < p_void] = 255
        lab[r.random((h, w)) < p_void / 4] = 7
        if all_void and f == 0:
            lab[:] = 255
        if no_pos_frame and f == n_frames - 1:
            lab[lab == 1] = 0
        base = r.random((h, w)) + 0.35 * (lab == 1)
        if n_distinct:
            levels = np.sort(r.random(n_distinct))
            base = levels[np.minimum((base / 1.35 * n_distinct).astype(int), n_distinct - 1)]
        if kind == "prob":
            s = np.clip(base / 1.35 if not n_distinct else base, 0, 1)
        elif kind == "logit":
            s = (base - 0.5) * 6
        else:
            s = base - 30.0
        scores.append(s.astype(dtype))
        labels.append(lab)
    return scores, labels


@pytest.fixture(scope="session")
def pixref():
    """The references above (pytest's importlib mode keeps conftest modules out of ``import``)."""
    return types.SimpleNamespace(smiyc_reference=smiyc_reference, sklearn_reference=sklearn_reference,
                                 pooled=pooled, mdm_grid=mdm_grid, make_frames=make_frames)
