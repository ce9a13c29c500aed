"""Percentile bootstrap confidence intervals of every metric over frames, and paired comparisons.

Definition (reproducible by anyone): with ``F`` frames in their order (``per_image.jsonl`` of a run; for a
directory of maps the stems sorted as strings), replicate ``b`` of ``B`` draws the frame indices
``numpy.random.default_rng(seed).integers(0, F, size=(B, F))[b]``; a frame drawn twice counts twice. The
replicate's metrics are those of its frames evaluated exactly as the chosen protocol evaluates a split: the pixel
curve (AP, AUROC, FPR95 by its rule, MDM, the best-F1 threshold), then the components binarised at that
replicate's own threshold (sIoU, PPV, F1*). A replicate where a metric is undefined (no positives, no GT
component, ...) is left out of that metric's interval and counted (``undefined``). The interval is
``numpy.percentile(values, [50 - level/2, 50 + level/2])`` (linear) over the defined replicates.

Every scorer of a run is resampled with the same draws (the draws depend only on ``F``, ``B`` and ``seed``), so
:func:`paired_difference` gives the paired interval of a metric's difference between two scorers; the
difference is significant at that level iff the interval excludes 0.

Speed: nothing is re-evaluated per replicate. Pass 1 (:class:`BootstrapPixels`) keeps each frame's mergeable
pixel state (its exact float16 histogram, its SMIYC bins, or its exact float32 runs); a replicate's pooled
histogram is the count-weighted sum of those (one float64 matrix product per block of replicates: integer counts,
exact) and its SMIYC curve one weighted pass over all frames' bins in canonical order
(:mod:`maskbench.metrics._bootstrap_kernels`). Pass 2 (:class:`BootstrapComponents`) evaluates each frame's
components once at every distinct threshold the replicates chose (:func:`~maskbench.metrics.component_sweep.
component_sweep`, one union-find pass for all of them); a replicate adds its frames' totals with their counts.
The inputs are what ``bench run`` stores per frame: the label map and the scores of its pixels labelled 0 / 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskbench.errors import InputError
from maskbench.metrics import _kernels, smiyc
from maskbench.metrics._bootstrap_kernels import pooled_runs, smiyc_replicate
from maskbench.metrics.component_sweep import labelled_scores, sweep_keys, threshold_keys
from maskbench.metrics.component_frame import check_sizes
from maskbench.metrics.components import ComponentAccumulator, ComponentTotals
from maskbench.metrics.exact_curve import FPR95_RULES
from maskbench.metrics.pixel import PROTOCOLS
from maskbench.metrics.pixel_result import pixel_result

#: The metrics with intervals (the keys of a result's ``metrics``).
METRICS = ("AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70")
PIXEL_METRICS = {"AP": "ap", "AUROC": "auroc", "FPR95": "fpr95", "MDM_F1_60": "mdm_f1_60", "MDM_F1_70": "mdm_f1_70"}
COMPONENT_METRICS = {"sIoU": "siou", "PPV": "ppv", "F1": "f1"}
_BLOCK = 64  # replicates per matrix product


def replicate_counts(n_frames, n_replicates, seed):
    """``(B, F)`` int64: how often replicate ``b`` draws frame ``f`` (the draws of the module docstring)."""
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise InputError(f"bootstrap: need at least one frame, got {n_frames!r}")
    if isinstance(n_replicates, bool) or not isinstance(n_replicates, (int, np.integer)) or n_replicates < 1:
        raise InputError(f"bootstrap: the number of replicates must be a positive integer, got {n_replicates!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"bootstrap: the seed must be a non-negative integer, got {seed!r}")
    draws = np.random.default_rng(seed).integers(0, n_frames, size=(n_replicates, n_frames))
    flat = draws + n_frames * np.arange(n_replicates)[:, None]
    return np.bincount(flat.reshape(-1), minlength=n_replicates * n_frames).reshape(n_replicates, n_frames)


class _Frames:
    """Per-frame states keyed by frame index, merged from shards; all indices ``0..F-1`` must be present."""

    def __init__(self):
        self.frames = {}

    def _put(self, index, state):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise InputError(f"bootstrap: frame index must be a non-negative integer, got {index!r}")
        if int(index) in self.frames:
            raise InputError(f"bootstrap: frame {index} given twice")
        self.frames[int(index)] = state

    def _merge(self, other):
        both = self.frames.keys() & other.frames.keys()
        if both:
            raise InputError(f"bootstrap merge: frame(s) {sorted(both)[:5]} in both parts")
        self.frames.update(other.frames)

    def _ordered(self):
        n = len(self.frames)
        if n == 0 or set(self.frames) != set(range(n)):
            missing = sorted(set(range(max(self.frames, default=-1) + 1)) - set(self.frames))[:5]
            raise InputError(f"bootstrap: frames must be numbered 0..F-1 without gaps (missing {missing})")
        return [self.frames[i] for i in range(n)]


class BootstrapPixels(_Frames):
    """Pass 1: each frame's pixel state under ``protocol`` (``update(index, scores, labels)``, ``merge``), then
    :meth:`replicates`."""

    def __init__(self, protocol="exact16", *, fpr95_rule="first_geq"):
        super().__init__()
        if protocol not in PROTOCOLS:
            raise InputError(f"protocol: expected one of {PROTOCOLS}, got {protocol!r}")
        if fpr95_rule not in FPR95_RULES or (protocol.startswith("smiyc") and fpr95_rule != "first_geq"):
            raise InputError(f"fpr95_rule {fpr95_rule!r}: not a rule of protocol {protocol!r}")
        self.protocol, self.fpr95_rule = protocol, fpr95_rule
        self.score_dtype = np.dtype(np.float32 if protocol == "exact" else np.float16)

    def update(self, index, scores, labels):
        """Frame ``index`` (its position in the split): a 2-D score map or the 1-D scores of its pixels labelled
        0 / 1 (row-major), and its uint8 label map."""
        gt, roi, values = labelled_scores(scores, labels, self.score_dtype)
        lab = gt.reshape(-1)[roi]
        if self.protocol == "exact":
            kp, kn = _kernels.frame_keys32(np.ascontiguousarray(values).view(np.uint32), lab)
            keys, pos, neg, m = _kernels.runs_from_keys(kp, kn)
            self._put(index, (keys[:m].copy(), pos[:m].astype(np.int64), neg[:m].astype(np.int64)))
            return self
        pos = np.zeros(65536, np.int64)
        neg = np.zeros(65536, np.int64)
        _kernels.hist16(np.ascontiguousarray(values).view(np.uint16), lab, pos, neg)
        nz = np.flatnonzero(pos | neg)
        bins = None
        if self.protocol.startswith("smiyc"):
            bins = smiyc.frame_bins(pos, neg, legacy=self.protocol == "smiyc-legacy")
        self._put(index, (nz.astype(np.uint16), pos[nz], neg[nz], bins))
        return self

    def merge(self, other):
        if not isinstance(other, BootstrapPixels) or (other.protocol, other.fpr95_rule) != (self.protocol,
                                                                                            self.fpr95_rule):
            raise InputError("bootstrap merge: expected BootstrapPixels of the same protocol and rule")
        self._merge(other)
        return self

    def replicates(self, n_replicates=1000, seed=0):
        """The pixel metrics of every replicate (:class:`PixelReplicates`)."""
        frames = self._ordered()
        counts = replicate_counts(len(frames), n_replicates, seed)
        results = list(self._results(frames, counts))
        return PixelReplicates(self.protocol, self.fpr95_rule, self.score_dtype, counts, seed, results)

    def _pooled(self, frames, counts):
        """Per replicate ``(values ascending, pos, neg)`` of its pooled exact histogram."""
        if self.protocol == "exact":  # every frame's runs in one key order, merged per replicate with its counts
            keys = np.concatenate([f[0] for f in frames])
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
            pos = np.concatenate([f[1] for f in frames])[order]
            neg = np.concatenate([f[2] for f in frames])[order]
            owner = np.repeat(np.arange(len(frames)), [f[0].size for f in frames])[order]
            out_keys = np.empty_like(keys)
            out_pos, out_neg = np.empty(keys.size, np.int64), np.empty(keys.size, np.int64)
            for row in counts:
                m = pooled_runs(keys, pos, neg, owner, row, out_keys, out_pos, out_neg)
                yield _kernels.keys32_to_values(out_keys[:m]), out_pos[:m], out_neg[:m]
            return
        keys = np.unique(np.concatenate([f[0] for f in frames]))
        hist = np.zeros((2, len(frames), keys.size))
        for i, f in enumerate(frames):
            cols = np.searchsorted(keys, f[0])
            hist[0, i, cols] = f[1]
            hist[1, i, cols] = f[2]
        for start in range(0, counts.shape[0], _BLOCK):
            block = counts[start:start + _BLOCK].astype(np.float64)
            pos_b, neg_b = block @ hist[0], block @ hist[1]  # integer-valued float64: exact
            for p, n in zip(pos_b, neg_b):
                nz = np.flatnonzero(p + n)
                yield _kernels.VALUES16[keys[nz]], p[nz].astype(np.int64), n[nz].astype(np.int64)

    def _results(self, frames, counts):
        legacy = self.protocol == "smiyc-legacy"
        if self.protocol.startswith("smiyc"):
            rows = [(f[3], i) for i, f in enumerate(frames) if f[3] is not None]
            thr = np.concatenate([r[0][0] for r in rows]) if rows else np.empty(0)
            tp = np.concatenate([r[0][1] for r in rows]) if rows else np.empty(0, np.int64)
            fp = np.concatenate([r[0][2] for r in rows]) if rows else np.empty(0, np.int64)
            frame = np.concatenate([np.full(r[0][0].size, r[1]) for r in rows]) if rows else np.empty(0, np.int64)
            order = smiyc.canonical_order(thr, tp, fp)
            thr, tp, fp, frame = thr[order], tp[order], fp[order], frame[order]
        for row, (values, pos, neg) in zip(counts, self._pooled(frames, counts)):
            out = None
            n_pos, n_neg = int(pos.sum()), int(neg.sum())
            if self.protocol.startswith("smiyc") and n_pos:
                ok, ap_terms, roc_terms, fpr95, threshold = smiyc_replicate(thr, tp, fp, frame, row, n_pos, n_neg,
                                                                             legacy)
                if ok:
                    out = dict(ap=float(np.sum(ap_terms)), auroc=float(np.sum(roc_terms)), fpr95=float(fpr95),
                               threshold=float(threshold))
            res = pixel_result(self.protocol, self.fpr95_rule, values, pos, neg, n_images=int(row.sum()),
                               smiyc_out=out)
            yield {**{m: getattr(res, field) for m, field in PIXEL_METRICS.items()}, "threshold": res.threshold}


@dataclass
class PixelReplicates:
    """Pass 1 done: each replicate's pixel metrics and best-F1 threshold (``results``, dicts) and frame counts."""

    protocol: str
    fpr95_rule: str
    score_dtype: np.dtype
    counts: np.ndarray
    seed: int
    results: list

    def thresholds(self):
        """The distinct best-F1 thresholds of the replicates (where defined): what pass 2 evaluates."""
        return sorted({r["threshold"] for r in self.results if r["threshold"] is not None})

    def components(self, track="anomaly"):
        """An empty :class:`BootstrapComponents` for pass 2 at this pass's thresholds."""
        return BootstrapComponents(self.thresholds(), track=track, score_dtype=self.score_dtype)

    def finish(self, components=None):
        """:class:`BootstrapResult` of every metric; without ``components`` the component metrics stay undefined."""
        n_rep = self.counts.shape[0]
        values = {m: np.full(n_rep, np.nan) for m in METRICS}
        for b, res in enumerate(self.results):
            for metric in PIXEL_METRICS:
                values[metric][b] = np.nan if res[metric] is None else res[metric]
        if components is not None:
            for b, comp in components.replicate_results(self):
                for metric, field in COMPONENT_METRICS.items():
                    v = getattr(comp, field)
                    values[metric][b] = np.nan if v is None else v
        thresholds = np.array([np.nan if r["threshold"] is None else r["threshold"] for r in self.results])
        return BootstrapResult(self.counts.shape[1], n_rep, self.seed, values, thresholds)


class BootstrapComponents(_Frames):
    """Pass 2: each frame's component totals at every threshold of pass 1 (``update(index, scores, labels)``)."""

    def __init__(self, thresholds, *, track="anomaly", score_dtype=np.float16):
        super().__init__()
        self.thresholds = list(thresholds)
        self.track, self.score_dtype = track, np.dtype(score_dtype)
        self.sizes = check_sizes(track, None, None)
        self.keys = dict(zip(self.thresholds, threshold_keys(self.thresholds, self.score_dtype)))

    def update(self, index, scores, labels):
        """Frame ``index``: as :meth:`BootstrapPixels.update`."""
        self._put(index, sweep_keys(scores, labels, list(self.keys.values()), self.score_dtype, *self.sizes))
        return self

    def merge(self, other):
        if not isinstance(other, BootstrapComponents) or (other.thresholds, other.track, other.score_dtype) != (
                self.thresholds, self.track, self.score_dtype):
            raise InputError("bootstrap merge: expected BootstrapComponents with the same thresholds and track")
        self._merge(other)
        return self

    def replicate_results(self, pixels):
        """``(b, ComponentResult)`` for every replicate of ``pixels`` with a best-F1 threshold."""
        frames = self._ordered()
        if len(frames) != pixels.counts.shape[1]:
            raise InputError(f"bootstrap: {len(frames)} frames in pass 2 but {pixels.counts.shape[1]} in pass 1")
        by_threshold = {}
        for b, res in enumerate(pixels.results):
            if res["threshold"] is not None:
                by_threshold.setdefault(res["threshold"], []).append(b)
        for t, reps in by_threshold.items():
            totals = [f[self.keys[t]] for f in frames]
            ints = np.array([[x.n_images, x.n_skipped, x.n_gt, x.n_pred] for x in totals], np.int64)
            per_tau = np.stack([np.concatenate([x.tp, x.fn, x.fp]) for x in totals])
            sums = [(x.siou_gt_sum, x.siou_pred_sum, x.ppv_sum) for x in totals]
            block = pixels.counts[reps]
            agg_ints, agg_tau = block @ ints, block @ per_tau
            tp, fn, fp = np.split(agg_tau, 3, axis=1)
            for row, b in enumerate(reps):
                c = block[row].tolist()
                used = [f for f in range(len(c)) if c[f]]
                exact = [sum(c[f] * sums[f][k] for f in used) for k in range(3)]
                acc = ComponentAccumulator(t, track=self.track, score_dtype=self.score_dtype)
                acc.add_totals(ComponentTotals(*(int(x) for x in agg_ints[row]), *exact, tp[row], fn[row], fp[row]))
                yield b, acc.compute()


@dataclass
class BootstrapResult:
    """Every replicate's metrics: ``values[metric]`` ``(B,)`` float64, NaN where undefined."""

    n_frames: int
    n_replicates: int
    seed: int
    values: dict
    thresholds: np.ndarray

    def interval(self, metric, level=95.0):
        """``{low, high, B, seed, level, undefined}`` of ``metric`` (low / high None when no replicate defines it)."""
        level = _check_level(level)
        v = self._metric(metric)
        defined = v[~np.isnan(v)]
        low = high = None
        if defined.size:
            low, high = (float(x) for x in np.percentile(defined, [50 - level / 2, 50 + level / 2]))
        return dict(low=low, high=high, B=self.n_replicates, seed=self.seed, level=level,
                    undefined=int(v.size - defined.size))

    def intervals(self, level=95.0):
        """:meth:`interval` of every metric (the ``ci`` of a result)."""
        return {m: self.interval(m, level) for m in METRICS}

    def _metric(self, metric):
        if metric not in self.values:
            raise InputError(f"bootstrap: unknown metric {metric!r}; known: {', '.join(METRICS)}")
        return self.values[metric]

    def to_arrays(self):
        """Plain arrays to store beside the results (``np.savez``); :meth:`from_arrays` reads them back."""
        return dict(n_frames=np.int64(self.n_frames), seed=np.int64(self.seed), thresholds=self.thresholds,
                    **{f"value_{m}": self.values[m] for m in METRICS})

    @classmethod
    def from_arrays(cls, arrays):
        values = {m: np.asarray(arrays[f"value_{m}"], np.float64) for m in METRICS}
        return cls(int(arrays["n_frames"]), values["AP"].size, int(arrays["seed"]), values,
                   np.asarray(arrays["thresholds"]))


def _check_level(level):
    if isinstance(level, bool) or not isinstance(level, (int, float, np.number)) or not 0 < level < 100:
        raise InputError(f"bootstrap: level must be a percentage in (0, 100), got {level!r}")
    return float(level)


def paired_difference(a, b, metric, level=95.0):
    """Paired bootstrap interval of ``metric(a) − metric(b)`` over the replicates where both are defined.

    ``a`` and ``b`` are :class:`BootstrapResult` s of two scorers on the same frames with the same ``B`` and
    seed (hence the same draws). Returns ``{low, high, B, seed, level, undefined, significant}``; significant
    iff the interval excludes 0.
    """
    level = _check_level(level)
    if (a.n_frames, a.n_replicates, a.seed) != (b.n_frames, b.n_replicates, b.seed):
        raise InputError(f"paired bootstrap: the draws differ (frames, B, seed) {(a.n_frames, a.n_replicates, a.seed)}"
                         f" vs {(b.n_frames, b.n_replicates, b.seed)}")
    d = a._metric(metric) - b._metric(metric)
    defined = d[~np.isnan(d)]
    low = high = None
    if defined.size:
        low, high = (float(x) for x in np.percentile(defined, [50 - level / 2, 50 + level / 2]))
    return dict(low=low, high=high, B=a.n_replicates, seed=a.seed, level=level, undefined=int(d.size - defined.size),
                significant=low is not None and (low > 0 or high < 0))


def bootstrap(frames, protocol="exact16", *, track="anomaly", fpr95_rule="first_geq", n_replicates=1000, seed=0):
    """Both passes over ``frames`` (a sequence of ``(scores, labels)`` read twice, in their order) ->
    :class:`BootstrapResult` (``track`` sets the component sizes, see :data:`~maskbench.metrics.component_frame.TRACKS`)."""
    pixels = BootstrapPixels(protocol, fpr95_rule=fpr95_rule)
    for i, (scores, labels) in enumerate(frames):
        pixels.update(i, scores, labels)
    reps = pixels.replicates(n_replicates, seed)
    comps = reps.components(track)
    for i, (scores, labels) in enumerate(frames):
        comps.update(i, scores, labels)
    return reps.finish(comps)
