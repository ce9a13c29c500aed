"""Energy (the ``pebal`` score of RbA's harness): minus the log-sum-exp of the aggregated class scores."""

import torch

from maskbench.scorers._common import ChunkScore, Queries
from maskbench.scorers._registry import register_scorer


def energy(queries: Queries) -> ChunkScore:
    """``E(x) = −log Σ_k exp S_k(x)``: energy on the aggregated class scores ``S`` (not on the class logits).

    Reference: ``NazirNayal8/RbA`` ``evaluate_ood.py`` ``get_energy`` (``--score_func pebal``) and
    ``shyam671/Road-Obstacle-Video-Segmentation`` ``Image_Anomaly_Segmentation_Baselines/evaluate_ood.py``
    ``get_energy``: ``-torch.logsumexp(sem_seg, dim=0)`` over the K known classes (void dropped after softmax).
    """
    return lambda px: torch.neg(px.log_sum_exp, out=px.buffer("energy"))


register_scorer("energy", energy, reference="NazirNayal8/RbA evaluate_ood.py get_energy (pebal)")
