"""numba kernels of the scorers' per-chunk work that torch would spread over many full passes (CPU only).

Every kernel computes in the dtype of its inputs with the same IEEE operations, in the same order, as the
torch code it replaces (products and maxima of single roundings, no fused multiply-add), so both give the
same bits; ``tests/scorers`` compares them.
"""

from numba import njit


@njit(cache=True, nogil=True)
def _weighted_max(sig, rows, conf, zero, best):
    """``best[i] = max(0, max_j conf[j] σ[rows[j], i])``: ``max_weighted`` of ``maskbench.scorers._common``
    (its products are non-negative, so starting from 0 changes nothing)."""
    n = best.shape[0]
    for i in range(n):
        best[i] = zero
    for j in range(rows.shape[0]):
        row = sig[rows[j]]
        c = conf[j]
        for i in range(n):
            v = row[i] * c
            if v > best[i]:
                best[i] = v


@njit(cache=True, nogil=True)
def maskomaly_chunk(sig, reject_rows, reject_conf, border_rows, accept_rows, accept_conf, t_border, border,
                    w_reject, w_accept, one, best, count, out):
    """Maskomaly Algorithm 1 on one chunk of pixels (``maskbench.scorers.maskomaly``), one read of each row.

    ``sig`` ``(rows, n)`` sigmoids; ``R = 1 − max_j reject_conf[j] σ[reject_rows[j]]`` (1 if none), 0 where
    ``border`` and at least two ``border_rows`` have ``σ > t_border``; ``Acc = max_j accept_conf[j]
    σ[accept_rows[j]]`` (0 if none); ``out = R · w_reject + Acc · w_accept``. Scalars come in the dtype of
    ``sig`` (``one`` = 1), so that no operation promotes to float64; ``best``/``count`` are scratch.
    """
    n = out.shape[0]
    zero = one - one
    _weighted_max(sig, reject_rows, reject_conf, zero, best)
    for i in range(n):
        count[i] = 0
    if border:
        for j in range(border_rows.shape[0]):
            row = sig[border_rows[j]]
            for i in range(n):
                count[i] += row[i] > t_border
    for i in range(n):
        out[i] = zero if border and count[i] >= 2 else one - best[i]
    _weighted_max(sig, accept_rows, accept_conf, zero, best)
    for i in range(n):
        out[i] = out[i] * w_reject + best[i] * w_accept


@njit(cache=True, nogil=True)
def zero_where_weighted_max(sig, rows, conf, threshold, best, out):
    """``out[i] = 0`` where ``max_j conf[j] σ[rows[j], i] >= threshold`` (Mask2Anomaly's refinement, Eq. 15 as
    the reference runs it); ``best`` is scratch."""
    zero = threshold - threshold
    _weighted_max(sig, rows, conf, zero, best)
    for i in range(out.shape[0]):
        if best[i] >= threshold:
            out[i] = zero


__all__ = ["maskomaly_chunk", "zero_where_weighted_max"]
