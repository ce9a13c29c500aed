"""UNO (Delić, Grcić, Šegvić, BMVC'24): known-class confidence against a trained negative class."""

import numbers

import torch

from maskbench.errors import InputError
from maskbench.scorers._common import ChunkScore, Queries
from maskbench.scorers._registry import register_scorer


def uno(queries: Queries, *, negative: int | None = None) -> ChunkScore:
    """``UNO(x) = −Σ_q (max_{k<n} P[q,k] − P[q,n]) σ(M_q(x))`` with ``n`` = the negative class column.

    Reference: ``matejgrcic/Open-set-M2F`` ``mask2former/evaluation/ood_detection_evaluation_UNO.py``
    ``DenseOODDetectionEvaluatorUNO.process``: softmax over all columns of a K+2 head (K known classes, the
    negative class ``n = K``, no-object last), ``s_q = max P[q, :-2] − P[q, -2]``, ``−Σ_q s_q σ(M_q)``.
    ``negative`` is required: the column of the negative class, from 1 to the last class column (the known
    classes are the columns below it; on a K+1 head the no-object column itself may serve). Without it the
    scorer refuses: the reference's fixed ``[:-2]`` / ``[-2]`` on a K+1 head silently takes class K−1 as the
    negative.
    """
    if not 1 <= negative <= queries.void:
        raise InputError(f"uno negative: column {negative} out of range for a head with {queries.void + 1} columns "
                         f"(need 1 <= negative <= {queries.void})")
    weights = (queries.probs[:, :negative].amax(dim=1) - queries.probs[:, negative])[None].contiguous()
    return lambda px: torch.mm(weights, px.sigmoid, out=px.buffer("uno", 1))[0].neg_()


def _check(params: dict) -> dict:
    n = params["negative"]
    if n is None:
        raise InputError("uno: hyperparameter 'negative' is required: the class column of the negative class "
                         "(the known classes are the columns below it), e.g. get_scorer('uno', negative=19) for a "
                         "19-class head trained with a negative class")
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise InputError(f"uno: negative must be a positive integer class column, got {n!r}")
    params["negative"] = int(n)
    return params


register_scorer("uno", uno, check=_check,
                reference="matejgrcic/Open-set-M2F mask2former/evaluation/ood_detection_evaluation_UNO.py")
