"""Pixel-level AP (AuPRC), AUROC, FPR95, best-F1 threshold and MDM as a streaming accumulator.

Protocols (``PROTOCOLS``):

* ``exact``: the pooled curve over all non-void float32 pixels of the split, one record per distinct score
  (uint32 monotone key + uint32 positives + uint32 negatives = 12 bytes; uint64 counts when a count would
  overflow; :mod:`maskbench.metrics.exact_runs`). AP equals ``sklearn.metrics.average_precision_score``, AUROC
  ``roc_auc_score``.
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
(F1 = 2tp / (2tp + fp + fn), first maximum as ``np.nanargmax``); binarise with
:meth:`~maskbench.metrics.pixel_result.PixelResult.binarize` (:mod:`maskbench.metrics.pixel_result` turns the
pooled counts into the reported values).
"""

import numpy as np

from maskbench.errors import InputError
from maskbench.metrics import _kernels, smiyc
from maskbench.metrics._validate import check_label_map, check_score_map
from maskbench.metrics.exact_curve import FPR95_RULES, curve_counts
from maskbench.metrics.exact_runs import UINT32_MAX, Runs, collapse_runs, concat_u32, merge_runs
from maskbench.metrics.pixel_result import pixel_result

PROTOCOLS = ("exact", "exact16", "smiyc", "smiyc-legacy")
FLOAT16_OVERFLOW = 65520.0  # float32 values with |x| >= this round to inf in float16
_KEY_BATCH = 1 << 23  # exact: pixel keys of several frames are sorted together (fewer run merges)


class PixelAccumulator:
    """Streaming pixel metrics: ``update(scores, gt)`` per image, ``merge(other)`` across shards (exact and
    order-independent), ``compute()`` -> :class:`~maskbench.metrics.pixel_result.PixelResult`. Picklable;
    ``state()`` / ``from_state()`` give a plain dict of numpy arrays."""

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
            self._runs = []  # stack of Runs, ranks decreasing
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
            if labels.size > UINT32_MAX - _KEY_BATCH:  # counts of one sort batch must fit uint32
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
            kp = concat_u32([p for p, _ in self._pending])  # copies: pending arrays stay untouched
            kn = concat_u32([n for _, n in self._pending])
            self._pending, self._n_pending = [], 0
            keys, pos, neg, m = _kernels.runs_from_keys(kp, kn)
            # views of worst-case-sized buffers: pages past m are never touched, so never resident
            self._push_runs(Runs(keys[:m], pos[:m], neg[:m], 0, kp.size + kn.size))

    def _push_runs(self, runs):
        """Binary counter over merge ranks: each record is merged O(log frames) times, whatever the overlap."""
        stack = self._runs
        stack.append(runs)
        while len(stack) > 1 and stack[-2].rank <= stack[-1].rank:
            b = stack.pop()
            a = stack.pop()
            stack.append(merge_runs(a, b))

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
                acc._push_runs(Runs(np.asarray(r["keys"], np.uint32), np.asarray(r["pos"]), np.asarray(r["neg"]),
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
            runs = collapse_runs(self._runs)
            self._runs = [runs] if runs.keys.size else []  # same state, merged once
            keys, pos, neg = runs.keys, runs.pos, runs.neg
            return _kernels.keys32_to_values(keys), pos, neg
        nz = np.flatnonzero(self._pos16 | self._neg16)
        return _kernels.VALUES16[nz], self._pos16[nz], self._neg16[nz]

    def compute(self):
        """Metrics of everything accumulated so far -> :class:`~maskbench.metrics.pixel_result.PixelResult`."""
        values, pos, neg = self.distinct_scores()
        smiyc_out = None
        if self.protocol.startswith("smiyc") and self._bins and int(pos.sum()):
            thr, tp, fp = (np.concatenate(a) for a in zip(*self._bins))
            smiyc_out = smiyc.smiyc_curve(thr, tp, fp, int(pos.sum()), int(neg.sum()),
                                          legacy=self.protocol == "smiyc-legacy")
        return pixel_result(self.protocol, self.fpr95_rule, values, pos, neg, n_images=self.n_images,
                            n_skipped_void=self.n_skipped_void, smiyc_out=smiyc_out)


def pixel_metrics(scores_list, gt_list, protocol="exact16", *, fpr95_rule="first_geq"):
    """One-shot helper: accumulate paired score maps and label maps, return
    :class:`~maskbench.metrics.pixel_result.PixelResult`."""
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
