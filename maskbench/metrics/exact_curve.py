"""The exact pooled curve from per-score counts: sklearn's PR / ROC arrays, AP, AUROC and every FPR95 rule.

Input everywhere: ``pos`` / ``neg``, the positive and negative pixel counts of each distinct score in ascending
score order (every entry holds at least one pixel). ``roc_arrays`` is ``sklearn.metrics.roc_curve`` with its
default ``drop_intermediate=True``; the kernel :func:`maskbench.metrics._kernels.curve_scan` gives AP and AUROC
bit for bit as sklearn and the rules that need no array.

FPR95 rules (:data:`FPR95_RULES`), each the FPR a published evaluation reports:

* ``first_geq``: first point of the full curve with TPR >= 0.95 (Fishyscapes bdlb, SMIYC);
* ``strict_dropint``: first point of ``roc_curve(drop_intermediate=True)`` with TPR > 0.95 (RbA ``support.py``
  ``calculate_auroc``, DenseHybrid);
* ``closest``: argmin |TPR − 0.95| over the points up to full recall, scanned from full recall downwards, first
  minimum (hendrycks/anomaly-seg ``fpr_and_fdr_at_recall``, here pooled);
* ``interp``: ``tayden/ood-metrics`` ``fpr_at_95_tpr`` (Mask2Anomaly's evaluation) on the default ``roc_curve``:
  0 when no point reaches TPR 0.95, the minimum FPR over the points with TPR >= 0.95 when all do, else
  ``np.interp(0.95, tpr, fpr)`` (on a TPR plateau at exactly 0.95: the FPR of its last point);
* ``first_geq_dropint``: first point of ``roc_curve(drop_intermediate=True)`` with TPR >= 0.95
  (``matejgrcic/Open-set-M2F`` ``calculate_stat``);
* ``maskomaly_tpr90``: first point of ``roc_curve(drop_intermediate=True)`` with TPR > 0.90
  (``jan-ackermann/Maskomaly`` ``maskomaly/eval.py`` ``calculate_auroc``): the FPR at 90 % TPR, which is what
  Maskomaly's published "FPR95" column measures.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from maskbench.metrics import _kernels
from maskbench.registry import Registry


@dataclass(frozen=True)
class Fpr95Rule:
    """A named FPR95 rule: what it computes and whose number it reproduces; ``on_roc(fpr, tpr)`` for the rules
    read off the ``roc_curve(drop_intermediate=True)`` arrays (None: computed in the curve scan)."""

    name: str
    description: str
    on_roc: Optional[Callable[[np.ndarray, np.ndarray], float]] = None


def _interp(fpr, tpr):
    if np.all(tpr < 0.95):
        return 0.0
    if np.all(tpr >= 0.95):
        return float(np.min(fpr[tpr >= 0.95]))
    return float(np.interp(0.95, tpr, fpr))


FPR95_RULES: Registry[Fpr95Rule] = Registry("FPR95 rule")
for _rule in (
    Fpr95Rule("first_geq", "FPR at the first curve point with TPR >= 0.95 (Fishyscapes, SMIYC)"),
    Fpr95Rule("strict_dropint", "FPR at the first roc_curve(drop_intermediate=True) point with TPR > 0.95 "
                                "(RbA, DenseHybrid)"),
    Fpr95Rule("closest", "FPR at the point with TPR closest to 0.95, from full recall down (hendrycks/anomaly-seg)"),
    Fpr95Rule("interp", "np.interp(0.95, tpr, fpr) on roc_curve (tayden/ood-metrics fpr_at_95_tpr, Mask2Anomaly)",
              _interp),
    Fpr95Rule("first_geq_dropint", "FPR at the first roc_curve(drop_intermediate=True) point with TPR >= 0.95 "
                                   "(Open-set-M2F calculate_stat, EAM/UNO)",
              lambda fpr, tpr: float(fpr[np.argmax(tpr >= 0.95)])),
    Fpr95Rule("maskomaly_tpr90", "FPR at the first roc_curve(drop_intermediate=True) point with TPR > 0.90: what "
                                 "Maskomaly's published 'FPR95' column measures (its eval.py calculate_auroc)",
              lambda fpr, tpr: float(fpr[np.argmax(tpr > 0.90)])),
):
    FPR95_RULES.register(_rule.name, _rule)


def curve_counts(pos, neg):
    """Cumulative (tps, fps) over thresholds descending, float64 as sklearn's confusion_matrix_at_thresholds."""
    return np.cumsum(pos[::-1], dtype=np.float64), np.cumsum(neg[::-1], dtype=np.float64)


def pr_arrays(pos, neg):
    """precision, recall exactly as sklearn's precision_recall_curve (reversed, with the (1, 0) end)."""
    tps, fps = curve_counts(pos, neg)
    precision = tps / (tps + fps)  # every distinct score holds at least one pixel
    recall = tps / tps[-1]
    return np.concatenate([precision[::-1], [1.0]]), np.concatenate([recall[::-1], [0.0]])


def roc_arrays(pos, neg):
    """fpr, tpr exactly as sklearn's roc_curve(drop_intermediate=True)."""
    tps, fps = curve_counts(pos, neg)
    if tps.shape[0] > 2:
        keep = np.flatnonzero(np.concatenate([[True], np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), [True]]))
        tps, fps = tps[keep], fps[keep]
    tps = np.concatenate([[0.0], tps])
    fps = np.concatenate([[0.0], fps])
    return fps / fps[-1], tps / tps[-1]


def exact_metrics(pos, neg, rule):
    """AP, AUROC, FPR95 (by ``rule``) and the best-F1 index (ascending order) of the exact curve (P > 0).

    The kernel writes the summands exactly as sklearn forms them; ``np.sum`` then adds them in numpy's
    pairwise order, so AP equals ``average_precision_score`` and AUROC ``roc_auc_score`` bit for bit.
    AUROC and FPR95 are None without negatives.
    """
    terms, roc_terms, fpr_geq, fpr_strict, fpr_closest, best = _kernels.curve_scan(pos, neg)
    ap = max(0.0, float(-np.sum(terms)))
    del terms
    if not int(neg.sum()):
        return ap, None, None, best
    auroc = float(np.sum(roc_terms))
    on_roc = FPR95_RULES.get(rule).on_roc
    if on_roc is not None:
        fpr95 = on_roc(*roc_arrays(pos, neg))
    else:
        fpr95 = float({"first_geq": fpr_geq, "strict_dropint": fpr_strict, "closest": fpr_closest}[rule])
    return ap, auroc, fpr95, best
