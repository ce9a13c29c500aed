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
from maskbench.scorers._registry import register_scorer

SWIN_L_CITYSCAPES_ACCEPT = (49, 31, 83, 32)
SWIN_L_CITYSCAPES_GROUND = (19, 24)


def _reject(queries: Queries, ground, t_mask: float, t_border: float, border: bool = True) -> ChunkScore:
    """Steps 1-2: the rejection map ``R``, from one gather of the sigmoid rows it reads.

    The gathered rows are ordered [ground & void-labelled | rejecting | ground & inlier & not
    rejecting | other inliers], so that the rejecting queries (plus ground) and the border queries
    (all inliers) are two contiguous slices.
    """
    check_query_ids("maskomaly ground", ground, queries.num_queries)
    inlier = queries.label != queries.void
    rejecting = inlier & (queries.conf > t_mask)
    in_ground = torch.zeros_like(inlier)
    in_ground[queries.ids(ground)] = True
    blocks = [in_ground & ~inlier, rejecting, inlier & in_ground & ~rejecting, inlier & ~in_ground & ~rejecting]
    rows = torch.cat([queries.select(b) for b in blocks])
    void_ground, n_reject = int(blocks[0].sum()), int((blocks[0] | blocks[1] | blocks[2]).sum())
    reject_conf = queries.conf[rows[:n_reject]]

    def score(px):
        sigmoid = px.sigmoid_rows(rows, "maskomaly.rows")
        if border:  # σ > t_border as the reference compares; 0/1 counted in floats (exact, never overflows)
            above = torch.gt(sigmoid[void_ground:], t_border, out=px.buffer("maskomaly.above", len(rows) - void_ground))
            count = torch.sum(above, dim=0, out=px.buffer("maskomaly.count"))
            on_border = torch.ge(count, 2, out=px.buffer("maskomaly.border", dtype=torch.bool))
        r = max_weighted(sigmoid[:n_reject], reject_conf, out=px.buffer("maskomaly.reject"))
        one_minus(r, out=r)
        return r.masked_fill_(on_border, 0.0) if border else r

    return score


def _accept(queries: Queries, accept) -> ChunkScore:
    """Step 3: the acceptance map ``Acc``."""
    check_query_ids("maskomaly accept", accept, queries.num_queries)
    rows = queries.ids(accept)
    accept_conf = queries.conf[rows]

    def score(px):
        return max_weighted(px.sigmoid_rows(rows, "maskomaly.accept"), accept_conf, out=px.buffer("maskomaly.accepted"))

    return score


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
    reject, accepted = _reject(queries, ground, t_mask, t_border), _accept(queries, accept)
    return lambda px: reject(px).mul_(lam).add_(accepted(px).mul_(1 - lam))


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
    return _reject(queries, ground, t_mask, t_border, border)


def maskomaly_accept(queries: Queries, *, accept=SWIN_L_CITYSCAPES_ACCEPT) -> ChunkScore:
    """``Acc(x)``: the acceptance part of Maskomaly (Algorithm 1 accept; paper Eq. 2 with ``conf_q``)."""
    return _accept(queries, accept)


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


register_scorer("maskomaly", maskomaly, check=_check)
register_scorer("maskomaly_reject", maskomaly_reject, check=_check)
register_scorer("maskomaly_accept", maskomaly_accept, check=_check)
