"""The ``exact`` pixel protocol's records: sorted runs of distinct float32 scores with their pixel counts.

One record per distinct score: its monotone uint32 key (:mod:`maskbench.metrics._kernels`; key order is score
order, ``-0.0`` shares the key of ``+0.0`` as in scikit-learn's sort by value), positives and negatives. Run
lists merge by adding the counts of equal keys (:func:`merge_runs`), so the collapsed list is the exact per-score
histogram from which :mod:`maskbench.metrics.exact_curve` reads ``sklearn.metrics.average_precision_score`` /
``roc_auc_score`` bit for bit. Counts are uint32, widened to uint64 only when a sum could pass 2**32 - 1.
"""

from typing import NamedTuple

import numpy as np

from maskbench.metrics import _kernels

UINT32_MAX = 2**32 - 1


class Runs(NamedTuple):
    """Records of distinct float32 scores: monotone key, positives, negatives (uint32, or uint64 once a
    count could pass 2**32 - 1); ``rank`` for the merge schedule, ``bound`` >= every count."""

    keys: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    rank: int
    bound: int


def merge_runs(a, b):
    """Merge two run lists (counts of equal keys added); uint64 counts when a sum could overflow uint32."""
    bound = a.bound + b.bound
    wide = a.pos.dtype == np.uint64 or b.pos.dtype == np.uint64
    if bound > UINT32_MAX and not wide:  # the cheap bound is too loose: take the true maxima
        bound = sum(max(int(r.pos.max(initial=0)), int(r.neg.max(initial=0))) for r in (a, b))
        wide = bound > UINT32_MAX
    dtype = np.uint64 if wide else np.uint32
    keys, pos, neg, m = _kernels.merge_runs(
        a.keys, a.pos.astype(dtype, copy=False), a.neg.astype(dtype, copy=False),
        b.keys, b.pos.astype(dtype, copy=False), b.neg.astype(dtype, copy=False))
    keys, pos, neg = keys[:m], pos[:m], neg[:m]  # untouched tail pages are never resident
    rank = a.rank + 1 if a.rank == b.rank else max(a.rank, b.rank)
    return Runs(keys, pos, neg, rank, bound)


def concat_u32(arrays):
    """One new uint32 array holding ``arrays`` one after another (the inputs stay untouched)."""
    out = _kernels.empty_like(sum(a.size for a in arrays), np.empty(0, np.uint32))
    o = 0
    for a in arrays:
        out[o:o + a.size] = a
        o += a.size
    return out


def collapse_runs(stack):
    """The run lists of ``stack`` merged into one (an empty run list for an empty stack)."""
    if not stack:
        empty = np.empty(0, np.uint32)
        return Runs(empty, empty, empty, 0, 0)
    out = stack[-1]
    for runs in reversed(stack[:-1]):
        out = merge_runs(runs, out)
    return out
