"""Maskomaly (Ackermann, Sakaridis, Yu, BMVC'23): reject inlier masks, accept anomaly masks.

Algorithm 1 as ``jan-ackermann/Maskomaly`` ``maskomaly/model.py`` ``Maskomaly.get_soft_mask`` runs it,
with ``conf_q = max_c P[q,c]`` and ``label_q = argmax_c P[q,c]`` over all K+1 columns (void included):

1. reject: ``R(x) = min_q (1 − conf_q σ(M_q(x)))`` over queries with ``label_q ≠ void`` and
   ``conf_q > t_mask`` (paper Eq. 1), and over the ``ground`` queries unconditionally (initial set I);
   ``R = 1`` where no query applies;
2. border: ``R(x) = 0`` where at least two queries with ``label_q ≠ void`` have ``σ(M_q(x)) > t_border``
   (the code's pairwise loop over all non-void queries, with ε_b = 0);
3. accept: ``Acc(x) = max_{q ∈ accept} conf_q σ(M_q(x))`` (paper Eq. 2 uses the void probability;
   the code uses ``conf_q``), 0 when ``accept`` is empty;
4. ``Maskomaly(x) = lam · R(x) + (1 − lam) · Acc(x)``.

Differences from the paper text that follow the code: ``t_mask = 0.7`` with ``>`` (paper: 0.3, ``≥``),
border over all non-void queries (paper: over I), confidence with void. The default ``accept`` and
``ground`` ids are the published ones and hold only for the Mask2Former Swin-L Cityscapes semantic
checkpoint (``model_final_17c1ee.pkl``); fit them for any other checkpoint with
:func:`maskbench.scorers.calibration.calibrate_maskomaly`. Run alone it takes the sigmoid of the
queries it reads only (ground, rejecting, inlier and accept queries); beside other scorers it gathers
them from the shared σ(M) (the same bits). The map is computed at the
resolution of ``mask_logits`` (the reference: at the padded, resized input, then ``INTER_AREA`` to the
original size).
"""

import torch

from maskbench.errors import InputError
from maskbench.scorers import _params
from maskbench.scorers._common import ChunkScore, Queries, check_query_ids, max_weighted, one_minus
from maskbench.scorers._kernels import maskomaly_chunk
from maskbench.scorers._registry import register_scorer

#: On CPU run Algorithm 1 as one numba pass per chunk; False runs the torch ops there too (tests compare both).
CPU_KERNEL = True
SWIN_L_CITYSCAPES_ACCEPT = (49, 31, 83, 32)
SWIN_L_CITYSCAPES_GROUND = (19, 24)


def _rows(queries: Queries, ground, t_mask: float):
    """Query ids of Algorithm 1's steps: ``(reject, reject_conf, border)``.

    reject: ground queries (all) and inlier queries with ``conf > t_mask``; border: every inlier query.
    """
    check_query_ids("maskomaly ground", ground, queries.num_queries)
    inlier = queries.label != queries.void
    in_ground = torch.zeros_like(inlier)
    in_ground[queries.ids(ground)] = True
    reject = queries.select(in_ground | (inlier & (queries.conf > t_mask)))
    return reject, queries.conf[reject], queries.select(inlier)


def _algorithm_1(queries: Queries, *, ground=(), accept=(), t_mask=0.7, t_border=0.1, border=True,
                 w_reject=1.0, w_accept=0.0) -> ChunkScore:
    """``R · w_reject + Acc · w_accept`` per chunk (module docstring); ``ground=()`` with ``t_mask=1`` and
    ``border=False`` leaves ``R = 1`` (the accept part alone).

    On CPU one numba pass reads each row it needs once (:func:`maskbench.scorers._kernels.maskomaly_chunk`),
    from the shared σ(M) beside other scorers, else from the sigmoid of those rows alone. Elsewhere the same
    steps run as torch ops (:func:`_torch_chunk`); both give the same bits.
    """
    reject, reject_conf, border_ids = _rows(queries, ground, t_mask)
    check_query_ids("maskomaly accept", accept, queries.num_queries)
    accept = queries.ids(accept)
    accept_conf = queries.conf[accept]
    border_ids = border_ids if border else border_ids[:0]
    needed = torch.unique(torch.cat([reject, border_ids, accept]))  # sorted; the rows σ is taken of when alone
    shared_ids = [x.cpu().numpy() for x in (reject, border_ids, accept)]
    own_ids = [torch.searchsorted(needed, x).cpu().numpy() for x in (reject, border_ids, accept)]
    reject_w, accept_w = reject_conf.cpu().numpy(), accept_conf.cpu().numpy()
    t, w_r, w_a, one = (queries.scalar(v) for v in (t_border, w_reject, w_accept, 1.0))

    def score(px):
        if px.device.type != "cpu" or not CPU_KERNEL:
            return _torch_chunk(px, reject, reject_conf, border_ids, accept, accept_conf, t_border, border,
                                w_reject, w_accept)
        if px.sigmoid_is_shared:
            sig, (r, b, a) = px.sigmoid, shared_ids
        else:
            sig, (r, b, a) = px.sigmoid_rows(needed, "maskomaly.rows"), own_ids
        out = px.buffer("maskomaly")
        maskomaly_chunk(sig.numpy(), r, reject_w, b, a, accept_w, t, border, w_r, w_a, one,
                        px.buffer("maskomaly.best").numpy(), px.buffer("maskomaly.count", dtype=torch.int32).numpy(),
                        out.numpy())
        return out

    return score


def _torch_chunk(px, reject, reject_conf, border_ids, accept, accept_conf, t_border, border, w_reject, w_accept):
    """The steps of :func:`_algorithm_1` as torch ops on any device (σ > t_border as the reference compares)."""
    r = max_weighted(px.sigmoid_rows(reject, "maskomaly.reject_rows"), reject_conf, out=px.buffer("maskomaly"))
    one_minus(r, out=r)
    if border:  # 0/1 counted in floats: exact, never overflows
        above = torch.gt(px.sigmoid_rows(border_ids, "maskomaly.border_rows"), t_border,
                         out=px.buffer("maskomaly.above", len(border_ids)))
        count = torch.sum(above, dim=0, out=px.buffer("maskomaly.count_f"))
        r.masked_fill_(torch.ge(count, 2, out=px.buffer("maskomaly.border", dtype=torch.bool)), 0.0)
    accepted = max_weighted(px.sigmoid_rows(accept, "maskomaly.accept_rows"), accept_conf,
                            out=px.buffer("maskomaly.accepted"))
    return r.mul_(w_reject).add_(accepted.mul_(w_accept))


def maskomaly(
    queries: Queries,
    *,
    accept=SWIN_L_CITYSCAPES_ACCEPT,
    ground=SWIN_L_CITYSCAPES_GROUND,
    lam: float = 0.6,
    t_mask: float = 0.7,
    t_border: float = 0.1,
) -> ChunkScore:
    """``Maskomaly(x) = lam · R(x) + (1 − lam) · Acc(x)``: Maskomaly BMVC'23 Algorithm 1 (module docstring)."""
    return _algorithm_1(queries, ground=ground, accept=accept, t_mask=t_mask, t_border=t_border,
                        w_reject=lam, w_accept=1 - lam)


def maskomaly_reject(
    queries: Queries,
    *,
    ground=SWIN_L_CITYSCAPES_GROUND,
    t_mask: float = 0.7,
    t_border: float = 0.1,
    border: bool = True,
) -> ChunkScore:
    """``R(x)``: the rejection part of Maskomaly (Algorithm 1 reject + ground, + border unless ``border=False``).

    Paper Eq. 1; ``border=False`` and ``True`` are the "Reject" and "Reject + Borders" rows of Table 4.
    """
    return _algorithm_1(queries, ground=ground, t_mask=t_mask, t_border=t_border, border=border)


def maskomaly_accept(queries: Queries, *, accept=SWIN_L_CITYSCAPES_ACCEPT) -> ChunkScore:
    """``Acc(x)``: the acceptance part of Maskomaly (Algorithm 1 accept; paper Eq. 2 with ``conf_q``)."""
    return _algorithm_1(queries, accept=accept, t_mask=1.0, border=False, w_reject=0.0, w_accept=1.0)


def _check(params: dict) -> dict:
    for name in ("accept", "ground"):
        if name in params:
            params[name] = _params.ids("maskomaly", name, params[name])
    for name in ("lam", "t_mask"):
        if name in params:
            params[name] = _params.fraction("maskomaly", name, params[name])
    if "border" in params and not isinstance(params["border"], bool):
        raise InputError(f"maskomaly: border must be True or False, got {params['border']!r}")
    if "t_border" in params:
        params["t_border"] = _params.fraction("maskomaly", "t_border", params["t_border"], open_interval=True)
    return params


_REFERENCE = "jan-ackermann/Maskomaly maskomaly/model.py Maskomaly.get_soft_mask"
register_scorer("maskomaly", maskomaly, check=_check, reference=_REFERENCE)
register_scorer("maskomaly_reject", maskomaly_reject, check=_check, reference=_REFERENCE)
register_scorer("maskomaly_accept", maskomaly_accept, check=_check, reference=_REFERENCE)
