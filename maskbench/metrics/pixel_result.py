"""The reported pixel metrics of one split: :class:`PixelResult` and :func:`pixel_result` from pooled counts.

From the per-score ``pos`` / ``neg`` counts (ascending score, non-void pixels only): AP and AUROC as
``sklearn.metrics.average_precision_score`` / ``roc_auc_score``, FPR95 under the named rule
(:mod:`maskbench.metrics.exact_curve`), the best-F1 threshold (F1 = 2tp / (2tp + fp + fn), first maximum as
``np.nanargmax``) and MDM^60 / MDM^70 (:mod:`maskbench.metrics.mdm`, Maskomaly Eq. 3). The SMIYC protocols take
AP, AUROC, FPR95 and the threshold from the official ``PixBinaryClass`` curve
(:func:`maskbench.metrics.smiyc.smiyc_curve`). A metric that is undefined (no anomaly or no inlier pixel, scores
outside [0, 1] for MDM) is None with the reason in ``notes``.
"""

import dataclasses
from typing import Optional

import numpy as np

from maskbench.errors import InputError
from maskbench.metrics.exact_curve import exact_metrics, pr_arrays, roc_arrays
from maskbench.metrics.mdm import MDM_THRESHOLDS, mdm_from_counts


@dataclasses.dataclass
class PixelResult:
    """Pixel metrics of one split under one protocol. A value is None when undefined; ``notes`` says why."""

    protocol: str
    fpr95_rule: str
    ap: Optional[float]
    auroc: Optional[float]
    fpr95: Optional[float]
    threshold: Optional[float]
    score_dtype: np.dtype
    mdm_f1_60: Optional[float]
    mdm_f1_70: Optional[float]
    n_pixels: int
    n_positive: int
    n_images: int
    notes: dict = dataclasses.field(default_factory=dict)
    _curve: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def pr_curve(self):
        """(precision, recall). Exact protocols: as ``sklearn.metrics.precision_recall_curve`` (recall
        decreasing, ending at (1, 0)); SMIYC: the official ``curve_precision`` / ``curve_recall``."""
        c = self._curve
        if "precision" in c:
            return c["precision"], c["recall"]
        if "pos" not in c:
            return np.empty(0), np.empty(0)
        return pr_arrays(c["pos"], c["neg"])

    def roc_curve(self):
        """(fpr, tpr). Exact protocols: as ``sklearn.metrics.roc_curve`` (drop_intermediate=True, starting
        at (0, 0)); SMIYC: the official ``curve_fpr`` / ``curve_tpr``."""
        c = self._curve
        if "fpr" in c:
            return c["fpr"], c["tpr"]
        if "pos" not in c or not c["neg"].any():
            return np.empty(0), np.empty(0)
        return roc_arrays(c["pos"], c["neg"])

    def binarize(self, scores):
        """``scores > threshold`` as the component metrics need it: compared in ``score_dtype`` with numpy-1
        scalar semantics (the threshold is rounded to float16 when it fits float16's range)."""
        if self.threshold is None:
            raise InputError(f"binarize: no best-F1 threshold ({self.notes.get('threshold', 'undefined')})")
        scores = np.asarray(scores).astype(self.score_dtype, copy=False)
        cmp_dtype = np.promote_types(self.score_dtype, np.min_scalar_type(self.threshold))
        return scores.astype(cmp_dtype, copy=False) > cmp_dtype.type(self.threshold)

    def to_dict(self):
        """Plain dict of the reported values (with protocol, rule and notes), for tables and JSON."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        d["score_dtype"] = np.dtype(self.score_dtype).name
        d["notes"] = dict(self.notes)
        return d


def pixel_result(protocol, fpr95_rule, values, pos, neg, *, n_images, n_skipped_void=0, smiyc_out=None):
    """:class:`PixelResult` of a pooled split: ``values`` ascending in the protocol's score dtype with their
    ``pos`` / ``neg`` counts (the exact histogram; MDM and the exact curve come from it) and, for the SMIYC
    protocols, ``smiyc_out`` (:func:`maskbench.metrics.smiyc.smiyc_curve` of the frames' bins, None without bins)."""
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    notes = {}
    ap = auroc = fpr95 = threshold = None
    curve = {}
    if protocol.startswith("smiyc"):
        if n_skipped_void:
            notes["frames"] = (f"{n_skipped_void} all-void frame(s) skipped (the official SMIYC code "
                               "crashes on a frame without non-void pixels)")
        if smiyc_out is not None and n_pos:
            ap, auroc, fpr95, threshold = (smiyc_out[k] for k in ("ap", "auroc", "fpr95", "threshold"))
            curve = {k: smiyc_out[k] for k in ("precision", "recall", "tpr", "fpr", "thresholds") if k in smiyc_out}
    elif n_pos:
        curve = dict(pos=pos, neg=neg)
        ap, auroc, fpr95, ix = exact_metrics(pos, neg, fpr95_rule)
        threshold = float(values[ix])
    if n_pos == 0:
        why = "no anomaly pixels (label 1) among the non-void pixels"
        for k in ("ap", "auroc", "fpr95", "threshold"):
            notes[k] = why
        ap = auroc = fpr95 = threshold = None
    elif n_neg == 0:
        why = "no inlier pixels (label 0) among the non-void pixels"
        notes["auroc"] = notes["fpr95"] = why
        auroc = fpr95 = None
    names = [f"mdm_f1_{round(t * 100)}" for t in MDM_THRESHOLDS]
    mdm = {}
    if n_pos == 0:
        notes.update(dict.fromkeys(names, "no anomaly pixels: F1 is undefined"))
    elif values[0] < 0 or values[-1] > 1:
        notes.update(dict.fromkeys(names, f"scores leave [0, 1] (range [{float(values[0])}, "
                                          f"{float(values[-1])}]); MDM needs scores in [0, 1]"))
    else:
        mdm = dict(zip(names, mdm_from_counts(values, pos, neg, MDM_THRESHOLDS)))
    return PixelResult(
        protocol=protocol, fpr95_rule=fpr95_rule, ap=ap, auroc=auroc, fpr95=fpr95, threshold=threshold,
        score_dtype=np.dtype(np.float32 if protocol == "exact" else np.float16), mdm_f1_60=mdm.get("mdm_f1_60"),
        mdm_f1_70=mdm.get("mdm_f1_70"), n_pixels=n_pos + n_neg, n_positive=n_pos, n_images=n_images, notes=notes,
        _curve=curve)
