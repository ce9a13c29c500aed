"""Maximum softmax probability over the aggregated class scores (a second softmax, over S)."""

import torch

from maskbench.scorers._common import ChunkScore, Queries, one_minus
from maskbench.scorers._registry import register_scorer


def softmax_msp(queries: Queries) -> ChunkScore:
    """``1 − max_k softmax_k(S(x)) = 1 − 1 / Σ_k exp(S_k(x) − max_k S_k(x))``.

    Reference: ``shyam671/Road-Obstacle-Video-Segmentation`` ``Image_Anomaly_Segmentation_Baselines/evaluate_ood.py``
    ``get_msp`` (``1 - sem_seg.softmax(dim=0).max(dim=0)``). A different score from our ``msp``
    (``1 − max_k S_k``, that harness's ``get_ml`` / ``get_m2a``).
    """

    def score(px):
        top = torch.reciprocal(px.exp_sum, out=px.buffer("softmax_msp"))
        return one_minus(top, out=top)

    return score


register_scorer("softmax_msp", softmax_msp,
                reference="shyam671/Road-Obstacle-Video-Segmentation Image_Anomaly_Segmentation_Baselines/"
                          "evaluate_ood.py get_msp")
