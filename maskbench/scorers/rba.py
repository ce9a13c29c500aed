"""RbA (Nayal et al., ICCV'23): Rejected by All."""

import torch

from maskbench.scorers._common import ChunkScore, Queries
from maskbench.scorers._registry import register_scorer


def rba(queries: Queries) -> ChunkScore:
    """``RbA(x) = −Σ_k tanh(S_k(x))``: the RbA score as ``NazirNayal8/RbA`` ``evaluate_ood.py`` ``get_RbA`` runs it.

    tanh is applied to the aggregated class scores ``S_k`` (not to the class logits); the void column
    is not summed. Range ``(−K, 0]``: 0 where no known class claims the pixel.
    """

    def score(px):
        tanh = torch.tanh(px.class_scores, out=px.buffer("rba.tanh", queries.void))
        return torch.sum(tanh, dim=0, out=px.buffer("rba")).neg_()

    return score


register_scorer("rba", rba, reference="NazirNayal8/RbA evaluate_ood.py get_RbA")
