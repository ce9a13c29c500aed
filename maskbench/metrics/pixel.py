"""Pixel-level AP (AuPRC), AUROC, FPR95, best-F1 threshold and MDM as a streaming accumulator.

Protocols (``PROTOCOLS``):

* ``exact``: the pooled curve over all non-void float32 pixels of the split, one record per distinct score
  (uint32 monotone key + uint32 positives + uint32 negatives = 12 bytes; uint64 counts when a count would
  overflow). AP equals ``sklearn.metrics.average_precision_score``, AUROC ``roc_auc_score``.
* ``exact16``: the same exact pooled curve on scores cast to float16, kept as a histogram over the 65,536
  float16 bit patterns (two int64 arrays): memory independent of the number of pixels.
* ``smiyc`` / ``smiyc-legacy``: SegmentMeIfYouCan ``PixBinaryClass`` (newest / before Aug 2023), see
  :mod:`maskbench.metrics.smiyc`, including the deterministic rule for frames tied at a bin edge (the
  official result depends on frame order there; ours does not).

Every protocol is exact under ``merge``: shards combine to the same result in any order.

FPR95 rules (``FPR95_RULES``, :mod:`maskbench.metrics.exact_curve`), always named, applied to the exact curve of
``exact``/``exact16``: ``first_geq``, ``strict_dropint``, ``closest``, ``interp``, ``first_geq_dropint`` and
``maskomaly_tpr90`` (the FPR at 90 % TPR that Maskomaly publishes as "FPR95"). The SMIYC protocols only define
``first_geq``.

Labels: 0 inlier, 1 anomaly, any other value void. ``threshold`` is the best-F1 curve point
(F1 = 2tp / (2tp + fp + fn), first maximum as ``np.nanargmax``); binarise with :meth:`PixelResult.binarize`.
"""

import dataclasses
from typing import NamedTuple, Optional

import numpy as np

from maskbench.errors import InputError
from maskbench.metrics import _kernels, smiyc
from maskbench.metrics._validate import check_label_map, check_score_map
from maskbench.metrics.exact_curve import FPR95_RULES, curve_counts, exact_metrics, pr_arrays, roc_arrays
from maskbench.metrics.mdm import MDM_THRESHOLDS, mdm_from_counts

PROTOCOLS = ("exact", "exact16", "smiyc", "smiyc-legacy")
FLOAT16_OVERFLOW = 65520.0  # float32 values with |x| >= this round to inf in float16
_UINT32_MAX = 2**32 - 1
_KEY_BATCH = 1 << 23  # exact: pixel keys of several frames are sorted together (fewer run merges)


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


class PixelAccumulator:
    """Streaming pixel metrics: ``update(scores, gt)`` per image, ``merge(other)`` across shards (exact and
    order-independent), ``compute()`` -> :class:`PixelResult`. Picklable; ``state()`` / ``from_state()``
    give a plain dict of numpy arrays."""

    def __init__(self, protocol="exact16", *, fpr95_rule="first_geq"):
        if protocol not in PROTOCOLS:
            raise InputError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}")
        if fpr95_rule not in FPR95_RULES:
            raise InputError(f"fpr95_rule: expected one of {tuple(FPR95_RULES)}, got {fpr95_rule!r}")
        if protocol.startswith("smiyc") and fpr95_rule != "first_geq":
            raise InputError(f"fpr95_rule: protocol {protocol!r} defines only 'first_geq' (the official rule), got {fpr95_rule!r}")
        self.protocol = protocol
        self.fpr95_rule = fpr95_rule
        self.n_images = 0
        self.n_skipped_void = 0  # smiyc: all-void frames, skipped (the official code crashes on them)
        if protocol == "exact":
            self._runs = []  # stack of _Runs, ranks decreasing
            self._pending = []  # (positive keys, negative keys) of frames not yet sorted
            self._n_pending = 0
        else:
            self._pos16 = np.zeros(65536, np.int64)
            self._neg16 = np.zeros(65536, np.int64)
        if protocol.startswith("smiyc"):
            self._bins = []  # per frame: (lower edges desc, positives, negatives)

    @property
    def score_dtype(self):
        return np.dtype(np.float32 if self.protocol == "exact" else np.float16)

    # ------------------------------------------------------------------ update / merge
    def update(self, scores, gt):
        """Add one image: ``scores`` 2-D float16/float32 (higher = more anomalous), ``gt`` uint8 same shape."""
        scores = check_score_map(scores)
        gt = check_label_map(gt, scores.shape, name="gt")
        labels = np.ascontiguousarray(gt).reshape(-1)
        if self.protocol == "exact":
            if labels.size > _UINT32_MAX - _KEY_BATCH:  # counts of one sort batch must fit uint32
                raise InputError(f"scores: a frame of {labels.size} pixels is too large (max 2**32 - 2**23)")
            bits = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1).view(np.uint32)
            kp, kn = _kernels.frame_keys32(bits, labels)
            self._pending.append((kp, kn))
            self._n_pending += kp.size + kn.size
            if self._n_pending >= _KEY_BATCH:
                self._flush()
        else:
            if scores.dtype == np.float32 and scores.size:
                lo, hi = float(scores.min()), float(scores.max())
                if hi >= FLOAT16_OVERFLOW or lo <= -FLOAT16_OVERFLOW:
                    raise InputError(
                        f"scores: range [{lo}, {hi}] overflows float16 (|x| < {FLOAT16_OVERFLOW:g} needed) under "
                        f"protocol {self.protocol!r}; rescale the scores or use protocol 'exact'")
            bits = np.ascontiguousarray(scores, dtype=np.float16).reshape(-1).view(np.uint16)
            if self.protocol == "exact16":
                _kernels.hist16(bits, labels, self._pos16, self._neg16)
            else:
                pos = np.zeros(65536, np.int64)
                neg = np.zeros(65536, np.int64)
                _kernels.hist16(bits, labels, pos, neg)
                self._pos16 += pos
                self._neg16 += neg
                rows = smiyc.frame_bins(pos, neg, legacy=self.protocol == "smiyc-legacy")
                if rows is None:
                    self.n_skipped_void += 1
                else:
                    self._bins.append(rows)
        self.n_images += 1
        return self

    def _flush(self):
        """Sort the pending keys into one run list on the stack."""
        if self._pending:
            kp = _concat_u32([p for p, _ in self._pending])  # copies: pending arrays stay untouched
            kn = _concat_u32([n for _, n in self._pending])
            self._pending, self._n_pending = [], 0
            keys, pos, neg, m = _kernels.runs_from_keys(kp, kn)
            # views of worst-case-sized buffers: pages past m are never touched, so never resident
            self._push_runs(_Runs(keys[:m], pos[:m], neg[:m], 0, kp.size + kn.size))

    def _push_runs(self, runs):
        """Binary counter over merge ranks: each record is merged O(log frames) times, whatever the overlap."""
        stack = self._runs
        stack.append(runs)
        while len(stack) > 1 and stack[-2].rank <= stack[-1].rank:
            b = stack.pop()
            a = stack.pop()
            stack.append(_merge_runs(a, b))

    def merge(self, other):
        """Fold another accumulator (another shard) into this one; returns self."""
        if not isinstance(other, PixelAccumulator):
            raise InputError(f"merge: expected a PixelAccumulator, got {type(other).__name__}")
        if other is self:
            raise InputError("merge: an accumulator cannot be merged into itself")
        if (other.protocol, other.fpr95_rule) != (self.protocol, self.fpr95_rule):
            raise InputError(
                f"merge: protocol/rule differ: ({self.protocol!r}, {self.fpr95_rule!r}) vs "
                f"({other.protocol!r}, {other.fpr95_rule!r})")
        self.n_images += other.n_images
        self.n_skipped_void += other.n_skipped_void
        if self.protocol == "exact":
            self._pending.extend(other._pending)  # arrays never modified in place: sharing is safe
            self._n_pending += other._n_pending
            for runs in list(other._runs):
                self._push_runs(runs)
            if self._n_pending >= _KEY_BATCH:
                self._flush()
        else:
            self._pos16 += other._pos16
            self._neg16 += other._neg16
        if self.protocol.startswith("smiyc"):
            self._bins.extend(other._bins)
        return self

    # ------------------------------------------------------------------ plain state
    def state(self):
        """Plain dict (str, int, numpy arrays) that :meth:`from_state` turns back into an accumulator."""
        s = dict(protocol=self.protocol, fpr95_rule=self.fpr95_rule, n_images=self.n_images,
                 n_skipped_void=self.n_skipped_void)
        if self.protocol == "exact":
            self._flush()
            s["runs"] = [r._asdict() for r in self._runs]
        else:
            s["pos16"] = self._pos16.copy()
            s["neg16"] = self._neg16.copy()
        if self.protocol.startswith("smiyc"):
            s["bins"] = [list(r) for r in self._bins]
        return s

    @classmethod
    def from_state(cls, state):
        acc = cls(state["protocol"], fpr95_rule=state["fpr95_rule"])
        acc.n_images = int(state["n_images"])
        acc.n_skipped_void = int(state["n_skipped_void"])
        if acc.protocol == "exact":
            for r in state["runs"]:
                acc._push_runs(_Runs(np.asarray(r["keys"], np.uint32), np.asarray(r["pos"]), np.asarray(r["neg"]),
                                     int(r["rank"]), int(r["bound"])))
        else:
            acc._pos16 = np.array(state["pos16"], np.int64)
            acc._neg16 = np.array(state["neg16"], np.int64)
        if acc.protocol.startswith("smiyc"):
            acc._bins = [tuple(np.asarray(a) for a in r) for r in state["bins"]]
        return acc

    # ------------------------------------------------------------------ compute
    def distinct_scores(self):
        """(values ascending in the protocol's dtype, positives, negatives) per distinct score."""
        if self.protocol == "exact":
            self._flush()
            runs = _collapse_runs(self._runs)
            self._runs = [runs] if runs.keys.size else []  # same state, merged once
            keys, pos, neg = runs.keys, runs.pos, runs.neg
            return _kernels.keys32_to_values(keys), pos, neg
        nz = np.flatnonzero(self._pos16 | self._neg16)
        return _kernels.VALUES16[nz], self._pos16[nz], self._neg16[nz]

    def compute(self):
        """Metrics of everything accumulated so far -> :class:`PixelResult`."""
        values, pos, neg = self.distinct_scores()
        smiyc_out = None
        if self.protocol.startswith("smiyc") and self._bins and int(pos.sum()):
            thr, tp, fp = (np.concatenate(a) for a in zip(*self._bins))
            smiyc_out = smiyc.smiyc_curve(thr, tp, fp, int(pos.sum()), int(neg.sum()),
                                          legacy=self.protocol == "smiyc-legacy")
        return pixel_result(self.protocol, self.fpr95_rule, values, pos, neg, n_images=self.n_images,
                            n_skipped_void=self.n_skipped_void, smiyc_out=smiyc_out)


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


def pixel_metrics(scores_list, gt_list, protocol="exact16", *, fpr95_rule="first_geq"):
    """One-shot helper: accumulate paired score maps and label maps, return :class:`PixelResult`."""
    scores_list, gt_list = list(scores_list), list(gt_list)
    if len(scores_list) != len(gt_list):
        raise InputError(f"pixel_metrics: {len(scores_list)} score maps but {len(gt_list)} label maps")
    acc = PixelAccumulator(protocol, fpr95_rule=fpr95_rule)
    for i, (s, g) in enumerate(zip(scores_list, gt_list)):
        try:
            acc.update(s, g)
        except InputError as e:
            raise InputError(f"image {i}: {e}") from None
    return acc.compute()


# ---------------------------------------------------------------------- exact curve helpers
class _Runs(NamedTuple):
    """Records of distinct float32 scores: monotone key, positives, negatives (uint32, or uint64 once a
    count could pass 2**32 - 1); ``rank`` for the merge schedule, ``bound`` >= every count."""

    keys: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    rank: int
    bound: int


def _merge_runs(a, b):
    """Merge two run lists (counts of equal keys added); uint64 counts when a sum could overflow uint32."""
    bound = a.bound + b.bound
    wide = a.pos.dtype == np.uint64 or b.pos.dtype == np.uint64
    if bound > _UINT32_MAX and not wide:  # the cheap bound is too loose: take the true maxima
        bound = sum(max(int(r.pos.max(initial=0)), int(r.neg.max(initial=0))) for r in (a, b))
        wide = bound > _UINT32_MAX
    dtype = np.uint64 if wide else np.uint32
    keys, pos, neg, m = _kernels.merge_runs(
        a.keys, a.pos.astype(dtype, copy=False), a.neg.astype(dtype, copy=False),
        b.keys, b.pos.astype(dtype, copy=False), b.neg.astype(dtype, copy=False))
    keys, pos, neg = keys[:m], pos[:m], neg[:m]  # untouched tail pages are never resident
    rank = a.rank + 1 if a.rank == b.rank else max(a.rank, b.rank)
    return _Runs(keys, pos, neg, rank, bound)


def _concat_u32(arrays):
    out = _kernels.empty_like(sum(a.size for a in arrays), np.empty(0, np.uint32))
    o = 0
    for a in arrays:
        out[o:o + a.size] = a
        o += a.size
    return out


def _collapse_runs(stack):
    if not stack:
        empty = np.empty(0, np.uint32)
        return _Runs(empty, empty, empty, 0, 0)
    out = stack[-1]
    for runs in reversed(stack[:-1]):
        out = _merge_runs(runs, out)
    return out


def tpr95_threshold(accumulator, fpr95_rule="strict_dropint"):
    """The score threshold of the FPR95 point of ``accumulator`` (exact protocols) under ``fpr95_rule``.

    ``strict_dropint`` is DenseHybrid's calibration (``OODCalibration.calculate_stats``): the threshold of the
    first ``roc_curve(drop_intermediate=True)`` point with TPR > 0.95; ``first_geq``: of the first curve point
    with TPR >= 0.95. Thresholds are distinct score values in the protocol's dtype (predict ``score >= t``;
    DenseHybrid then marks ``score > t``). Returns ``(threshold, tpr, fpr)``, or ``None`` without anomaly pixels.
    """
    if not isinstance(accumulator, PixelAccumulator) or accumulator.protocol not in ("exact", "exact16"):
        raise InputError("tpr95_threshold: expected a PixelAccumulator with protocol 'exact' or 'exact16'")
    if fpr95_rule not in ("strict_dropint", "first_geq"):
        raise InputError(f"fpr95_rule: tpr95_threshold supports 'strict_dropint' and 'first_geq', got {fpr95_rule!r}")
    values, pos, neg = accumulator.distinct_scores()
    tps, fps = curve_counts(pos, neg)
    if not tps.size or tps[-1] == 0:
        return None
    desc = values[::-1]
    if fpr95_rule == "strict_dropint":
        keep = np.arange(tps.size)
        if tps.size > 2:
            keep = np.flatnonzero(np.concatenate([[True], np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), [True]]))
        tpr = tps[keep] / tps[-1]
        i = keep[int(np.argmax(tpr > 0.95))]  # the last point has TPR 1
    else:
        i = int(np.argmax(tps / tps[-1] >= 0.95))
    fpr = float(fps[i] / fps[-1]) if fps[-1] else None
    return float(desc[i]), float(tps[i] / tps[-1]), fpr
