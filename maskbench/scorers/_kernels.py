"""numba kernels of the scorers' per-chunk work that torch would spread over many full passes (CPU only).

Every kernel computes in the dtype of its inputs with the same IEEE operations, in the same order, as the
torch code it replaces (products and maxima of single roundings, no fused multiply-add), so both give the
same bits; ``tests/scorers`` compares them.
"""

from numba import njit


@njit(cache=True, nogil=True)
def maskomaly_chunk(sig, reject_rows, reject_conf, border_rows, accept_rows, accept_conf, t_border, border,
                    w_reject, w_accept, one, best, count, out):
    """Maskomaly Algorithm 1 on one chunk of pixels (``maskbench.scorers.maskomaly``), one read of each row.

    ``sig`` ``(rows, n)`` sigmoids; ``R = 1 − max_j reject_conf[j] σ[reject_rows[j]]`` (1 if none), 0 where
    ``border`` and at least two ``border_rows`` have ``σ > t_border``; ``Acc = max_j accept_conf[j]
    σ[accept_rows[j]]`` (0 if none); ``out = R · w_reject + Acc · w_accept``. Scalars come in the dtype of ``sig`` (``one`` = 1), so that no
    operation promotes to float64; ``best``/``count`` are scratch.
    """
    n = out.shape[0]
    zero = one - one
    for i in range(n):
        best[i] = zero
        count[i] = 0
    for j in range(reject_rows.shape[0]):
        row = sig[reject_rows[j]]
        c = reject_conf[j]
        for i in range(n):
            v = row[i] * c
            if v > best[i]:
                best[i] = v
    if border:
        for j in range(border_rows.shape[0]):
            row = sig[border_rows[j]]
            for i in range(n):
                count[i] += row[i] > t_border
    for i in range(n):
        out[i] = zero if border and count[i] >= 2 else one - best[i]
        best[i] = zero
    for j in range(accept_rows.shape[0]):
        row = sig[accept_rows[j]]
        c = accept_conf[j]
        for i in range(n):
            v = row[i] * c
            if v > best[i]:
                best[i] = v
    for i in range(n):
        out[i] = out[i] * w_reject + best[i] * w_accept


__all__ = ["maskomaly_chunk", "zero_where_weighted_max"]


@njit(cache=True, nogil=True)
def zero_where_weighted_max(sig, rows, conf, threshold, best, out):
    """``out[i] = 0`` where ``max_j conf[j] σ[rows[j], i] >= threshold`` (Mask2Anomaly's refinement, Eq. 15 as
    the reference runs it); ``best`` is scratch. The products and the maximum are those of ``max_weighted``."""
    n = out.shape[0]
    zero = threshold - threshold
    for i in range(n):
        best[i] = zero
    for j in range(rows.shape[0]):
        row = sig[rows[j]]
        c = conf[j]
        for i in range(n):
            v = row[i] * c
            if v > best[i]:
                best[i] = v
    for i in range(n):
        if best[i] >= threshold:
            out[i] = zero
