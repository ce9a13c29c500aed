"""Component-level sIoU, PPV and mean F1* exactly as SegmentMeIfYouCan's ``SegEval`` (Chan et al., NeurIPS'21 D&B).

Protocol (road-anomaly-benchmark ``metrics/instance_segmentation.py``; details in metrics.md §1.3, §8, §9): each
frame's components and their sIoU / PPV come from :mod:`maskbench.metrics.component_frame`; then

* per τ in ``np.linspace(0.25, 0.75, 11)``: TP = #(sIoU ≥ τ), FN = #(sIoU < τ), FP = #(PPV < τ), summed over
  frames; ``F1_τ = 2TP / (2TP + FN + FP)``; F1* = mean of the 11 F1_τ; reported sIoU / PPV = means over all
  GT / predicted components of the dataset (pooled, not per image).
"""

from dataclasses import dataclass, field

import numpy as np

from maskbench.errors import InputError
from maskbench.metrics import _component_kernels as kernels
from maskbench.metrics.component_frame import (
    SCORE_DTYPES, TAUS, check_score_dtype, check_sizes, check_threshold, prepare_frame, prepared_frame_stats,
)

EXACT_SHIFT = 1074  # every float64 is an integer multiple of 2**-1074


@dataclass(frozen=True)
class ComponentTotals:
    """What frames add to a :class:`ComponentAccumulator`: counts, and the exact sums of their sIoU / PPV values
    as integer multiples of 2**-1074 (so totals of several frames, or of one frame counted twice, add exactly)."""

    n_images: int  # frames evaluated
    n_skipped: int  # entirely void frames
    n_gt: int
    n_pred: int
    siou_gt_sum: int
    siou_pred_sum: int
    ppv_sum: int
    tp: np.ndarray  # int64 (11,), per τ in TAUS
    fn: np.ndarray
    fp: np.ndarray

    @classmethod
    def from_stats(cls, stats):
        """The totals of one frame's :class:`FrameComponentStats`."""
        return cls(int(not stats.skipped), int(stats.skipped), stats.siou_gt.size, stats.ppv.size,
                   _exact_sum(stats.siou_gt), _exact_sum(stats.siou_pred), _exact_sum(stats.ppv), stats.tp, stats.fn,
                   stats.fp)


@dataclass(frozen=True)
class ComponentResult:
    """Dataset-level component metrics; ``None`` (with a reason in ``notes``) where a metric is undefined."""

    siou: float | None       # mean sIoU over all GT components (leaderboard "sIoU gt")
    ppv: float | None        # mean PPV over all predicted components (leaderboard "PPV")
    f1: float | None         # F1*: mean of the 11 F1_τ (leaderboard "mean F1")
    f1_per_tau: list         # 11 floats (or None), one per τ in TAUS
    tp: list                 # 11 ints per τ, summed over frames
    fn: list
    fp: list
    n_gt_components: int
    n_pred_components: int
    n_images: int            # frames evaluated
    n_skipped: int           # entirely void frames skipped
    threshold: float         # the threshold as given
    track: str
    notes: dict = field(default_factory=dict)
    siou_pred: float | None = None  # mean sIoU of predicted components (computed officially, not on the leaderboard)
    protocol: str = ""


def _exact_sum(values):
    """Exact sum of non-negative float64 values as an integer multiple of 2**-1074 (order-independent)."""
    total = 0
    for value in values.tolist():
        num, den = value.as_integer_ratio()
        total += num << (EXACT_SHIFT - den.bit_length() + 1)
    return total


def _exact_mean(total, count):
    """Correctly rounded ``total * 2**-1074 / count`` (Python int division rounds correctly)."""
    return total / (count << EXACT_SHIFT)


class ComponentAccumulator:
    """Streaming SMIYC component metrics: ``update`` per frame, ``merge`` partial accumulators, ``compute``.

    The state is integer counts and exact integer sums (no per-component lists), so it pickles cheaply and
    ``merge`` is exact and order-independent: the pooled means are the correctly rounded exact means. The
    official code sums per-frame ``np.sum`` results sequentially in frame order, which can differ from the
    exact mean in the last bits (relative difference ~1e-16); per-component values and TP/FN/FP/F1 are identical.
    """

    def __init__(self, threshold, *, track="anomaly", score_dtype=np.float16, min_pred_size=None, min_gt_size=None):
        self.score_dtype = check_score_dtype(score_dtype)
        self.track = track
        self.min_pred_size, self.min_gt_size = check_sizes(track, min_pred_size, min_gt_size)
        self._thr = check_threshold(threshold, self.score_dtype)
        self._tkey = kernels.threshold_key(self._thr)
        self.threshold = float(threshold)
        self.n_images = 0
        self.n_skipped = 0
        self.n_gt = 0
        self.n_pred = 0
        self.siou_gt_sum = 0
        self.siou_pred_sum = 0
        self.ppv_sum = 0
        self.tp = np.zeros(len(TAUS), dtype=np.int64)
        self.fn = np.zeros(len(TAUS), dtype=np.int64)
        self.fp = np.zeros(len(TAUS), dtype=np.int64)

    def _config(self):
        return (self.score_dtype, self.min_pred_size, self.min_gt_size, self._thr.item(), self.track)

    def update(self, scores, gt):
        """Add one frame: ``scores`` 2-D float16/float32 (cast to ``score_dtype``), ``gt`` uint8 of the same shape."""
        scores, gt, finite_checked = prepare_frame(scores, gt, self.score_dtype)
        self.add(prepared_frame_stats(scores, gt, self._tkey, self.min_pred_size, self.min_gt_size, finite_checked))

    def add(self, stats):
        """Add precomputed :class:`FrameComponentStats` (e.g. from a worker process) with the same settings."""
        self.add_totals(ComponentTotals.from_stats(stats))

    def add_totals(self, totals, times=1):
        """Add :class:`ComponentTotals` ``times`` times (a frame drawn twice by a bootstrap replicate counts twice)."""
        self.n_images += times * totals.n_images
        self.n_skipped += times * totals.n_skipped
        self.n_gt += times * totals.n_gt
        self.n_pred += times * totals.n_pred
        self.siou_gt_sum += times * totals.siou_gt_sum
        self.siou_pred_sum += times * totals.siou_pred_sum
        self.ppv_sum += times * totals.ppv_sum
        self.tp = self.tp + times * totals.tp
        self.fn = self.fn + times * totals.fn
        self.fp = self.fp + times * totals.fp

    def merge(self, other):
        """Fold ``other`` (same threshold, track sizes and score dtype) into this accumulator; returns self."""
        if not isinstance(other, ComponentAccumulator):
            raise InputError(f"merge: expected a ComponentAccumulator, got {type(other).__name__}")
        if other._config() != self._config():
            raise InputError(f"merge: settings differ (score dtype, min sizes, threshold, track): "
                             f"{self._config()} vs {other._config()}")
        for name in ("n_images", "n_skipped", "n_gt", "n_pred", "siou_gt_sum", "siou_pred_sum", "ppv_sum"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.tp = self.tp + other.tp
        self.fn = self.fn + other.fn
        self.fp = self.fp + other.fp
        return self

    def protocol(self):
        """One line stating how the numbers are computed (printed with every result)."""
        return (f"SMIYC SegEval ({self.track} track): components of scores > {self._thr.item()!r} compared in "
                f"{SCORE_DTYPES[self.score_dtype]}, 8-connected, predictions < {self.min_pred_size} px dropped, "
                f"GT components < {self.min_gt_size} px void, tau = linspace(0.25, 0.75, 11), FP by PPV < tau, "
                f"dataset-pooled means")

    def compute(self):
        """Return the dataset :class:`ComponentResult` (sIoU / PPV pooled means, F1* = mean F1_τ)."""
        notes = {}
        if self.n_skipped:
            notes["skipped"] = (f"{self.n_skipped} entirely void frame(s) (no pixel labelled 0 or 1) skipped; "
                                f"the official code crashes on them")
        if self.n_gt:
            siou = _exact_mean(self.siou_gt_sum, self.n_gt)
        else:
            siou = None
            notes["siou"] = "no GT component in the evaluated frames (official: NaN)"
        if self.n_pred:
            ppv = _exact_mean(self.ppv_sum, self.n_pred)
            siou_pred = _exact_mean(self.siou_pred_sum, self.n_pred)
        else:
            ppv = siou_pred = None
            notes["ppv"] = "no predicted component in the evaluated frames (official: NaN)"
        tp, fn, fp = self.tp.tolist(), self.fn.tolist(), self.fp.tolist()
        if self.n_gt or self.n_pred:
            f1_per_tau = [(2 * a) / (2 * a + b + c) for a, b, c in zip(tp, fn, fp)]
            f1 = 0.0
            for value in f1_per_tau:  # sequential sum in τ order, as the official aggregate
                f1 += value
            f1 /= len(TAUS)
        else:
            f1_per_tau, f1 = [None] * len(TAUS), None
            notes["f1"] = "no GT and no predicted component: F1 is 0/0 (official: ZeroDivisionError)"
        return ComponentResult(
            siou=siou, ppv=ppv, f1=f1, f1_per_tau=f1_per_tau, tp=tp, fn=fn, fp=fp, n_gt_components=self.n_gt,
            n_pred_components=self.n_pred, n_images=self.n_images, n_skipped=self.n_skipped,
            threshold=self.threshold, track=self.track, notes=notes, siou_pred=siou_pred, protocol=self.protocol())
