"""Normalised entropy of the softmax over the aggregated class scores."""

import math

import torch

from maskbench.scorers._common import ChunkScore, Queries
from maskbench.scorers._registry import register_scorer


def entropy(queries: Queries) -> ChunkScore:
    """``H(x) = −Σ_k p_k log p_k / log K`` with ``p = softmax_k S_k(x)`` over the K known classes.

    Reference: ``shyam671/Road-Obstacle-Video-Segmentation`` ``Image_Anomaly_Segmentation_Baselines/evaluate_ood.py``
    ``get_entropy`` (softmax over the channels of ``sem_seg``, divided by ``log`` of their number). Computed from
    the shared exponential pass as ``(log Σ_k e_k − Σ_k e_k d_k / Σ_k e_k) / log K`` with
    ``d_k = S_k − max_k S_k``, ``e_k = exp d_k`` (two non-negative terms, no log of a rounded ``p_k``: where
    ``p_k`` underflows to 0 it adds 0, where the reference's ``0 · log 0`` gives NaN). Range ``[0, 1]``.
    """
    scale = 1.0 / math.log(queries.void)

    def score(px):
        weighted = torch.mul(px.exp_shifted, px.shifted_scores, out=px.buffer("entropy.e_d", queries.void))
        mean_d = torch.sum(weighted, dim=0, out=px.buffer("entropy")).div_(px.exp_sum)
        return torch.log(px.exp_sum, out=px.buffer("entropy.log")).sub_(mean_d).mul_(scale)

    return score


register_scorer("entropy", entropy,
                reference="shyam671/Road-Obstacle-Video-Segmentation Image_Anomaly_Segmentation_Baselines/"
                          "evaluate_ood.py get_entropy")
