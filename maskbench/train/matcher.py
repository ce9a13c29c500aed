"""Hungarian matching of predicted masks to ground-truth segments (Mask2Former ``HungarianMatcher``).

Cost per (query, target) pair, on ``num_points`` points drawn uniformly once per image and shared by all
predictions and targets (Mask2Former ``matcher.py``):

``C = w_class * (-p_q[c_t]) + w_mask * BCE_pts(m_q, t) + w_dice * (1 - (2 sum σ(m_q) t + 1) / (sum σ(m_q) + sum t + 1))``

solved with :func:`scipy.optimize.linear_sum_assignment`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def point_sample(masks: Tensor, coords: Tensor) -> Tensor:
    """``[N, C, H, W]`` maps sampled bilinearly at ``[N, P, 2]`` (x, y) coordinates in [0, 1] -> ``[N, C, P]``
    (detectron2 ``point_sample``: ``grid_sample(2 * coords - 1, align_corners=False)``)."""
    return F.grid_sample(masks, 2.0 * coords[:, :, None, :] - 1.0, mode="bilinear", align_corners=False)[..., 0]


def pairwise_sigmoid_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """``[Q, P]`` logits, ``[T, P]`` 0/1 targets -> ``[Q, T]`` mean over points of sigmoid BCE."""
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[1]


def pairwise_dice(logits: Tensor, targets: Tensor) -> Tensor:
    """``[Q, P]`` logits, ``[T, P]`` targets -> ``[Q, T]`` dice loss ``1 - (2|σ(m) t| + 1) / (|σ(m)| + |t| + 1)``."""
    prob = logits.sigmoid()
    numerator = 2 * prob @ targets.T
    denominator = prob.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher:
    """``(outputs, targets) -> [(query indices, target indices)]`` per image, minimising the total cost.

    outputs: ``pred_logits [B, Q, K+1]``, ``pred_masks [B, Q, h, w]``; targets: per image ``labels [T]`` (long)
    and ``masks [T, H, W]`` (0/1 float). Weights default to Mask2Former's 2 / 5 / 5.
    """

    def __init__(self, *, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544) -> None:
        self.cost_class, self.cost_mask, self.cost_dice = cost_class, cost_mask, cost_dice
        self.num_points = num_points

    @torch.no_grad()
    def cost_matrix(self, logits: Tensor, masks: Tensor, labels: Tensor, target_masks: Tensor) -> Tensor:
        """One image: ``[Q, K+1]``, ``[Q, h, w]``, ``[T]``, ``[T, H, W]`` -> ``[Q, T]`` cost."""
        coords = torch.rand(1, self.num_points, 2, device=masks.device)
        tgt = point_sample(target_masks[:, None].to(masks.dtype), coords.expand(len(target_masks), -1, -1))[:, 0]
        out = point_sample(masks[:, None], coords.expand(len(masks), -1, -1))[:, 0]
        cost_class = -logits.softmax(-1)[:, labels]
        return (self.cost_mask * pairwise_sigmoid_ce(out, tgt) + self.cost_class * cost_class
                + self.cost_dice * pairwise_dice(out, tgt))

    @torch.no_grad()
    def __call__(self, outputs: dict, targets: list[dict]) -> list[tuple[Tensor, Tensor]]:
        indices = []
        for b, target in enumerate(targets):
            if len(target["labels"]) == 0:
                empty = torch.zeros(0, dtype=torch.long)
                indices.append((empty, empty))
                continue
            cost = self.cost_matrix(outputs["pred_logits"][b].float(), outputs["pred_masks"][b].float(),
                                    target["labels"], target["masks"])
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
        return indices


__all__ = ["HungarianMatcher", "pairwise_dice", "pairwise_sigmoid_ce", "point_sample"]
