"""Normalised entropy of the softmax over the aggregated class scores."""

import math

import torch

from maskbench.scorers._common import ChunkScore, Queries
from maskbench.scorers._registry import register_scorer


def entropy(queries: Queries) -> ChunkScore:
    """``H(x) = −Σ_k p_k log p_k / log K`` with ``p = softmax_k S_k(x)`` over the K known classes.

    Reference: ``shyam671/Road-Obstacle-Video-Segmentation`` ``Image_Anomaly_Segmentation_Baselines/evaluate_ood.py``
    ``get_entropy`` (softmax over the channels of ``sem_seg``, divided by ``log`` of their number). Computed as
    ``−Σ_k p_k (S_k − logsumexp_k S_k) / log K`` (``log p_k`` without taking the log of a rounded ``p_k``, so a
    ``p_k`` that underflows to 0 adds 0 where the reference's ``0 · log 0`` gives NaN). Range ``[0, 1]``.
    """
    scale = -1.0 / math.log(queries.void)

    def score(px):
        log_p = torch.sub(px.class_scores, px.log_sum_exp, out=px.buffer("entropy.log_p", queries.void))
        p_log_p = torch.exp(log_p, out=px.buffer("entropy.p", queries.void)).mul_(log_p)
        return torch.sum(p_log_p, dim=0, out=px.buffer("entropy")).mul_(scale)

    return score


register_scorer("entropy", entropy,
                reference="shyam671/Road-Obstacle-Video-Segmentation Image_Anomaly_Segmentation_Baselines/"
                          "evaluate_ood.py get_entropy")
