"""Mask2Former set-prediction losses (``mask2former/modeling/criterion.py``, ``SetCriterion``).

For every prediction set (the last decoder layer and each auxiliary one), after Hungarian matching:

- ``loss_ce``: cross-entropy over K+1 classes, unmatched queries labelled "no object" (index K), class
  weights 1 except ``eos_coef`` (0.1) on no-object, averaged with those weights (``F.cross_entropy`` weight).
- ``loss_mask``: sigmoid BCE of matched masks on ``num_points`` points per mask, chosen by importance
  sampling (``oversample_ratio`` x points drawn uniformly, the ``importance_sample_ratio`` most uncertain
  ones, i.e. smallest ``|logit|``, kept, the rest uniform), mean over points, summed over masks / num_masks.
- ``loss_dice``: ``1 - (2 sum σ(m) t + 1) / (sum σ(m) + sum t + 1)`` on the same points, summed / num_masks.

Total = ``2 * ce + 5 * mask + 5 * dice`` per set, summed over sets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from maskbench.train.matcher import HungarianMatcher, point_sample


def sigmoid_ce_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """``[N, P]`` logits and 0/1 targets -> ``sum_n mean_p BCE(σ(logit), t) / num_masks``."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).sum() / num_masks


def dice_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """``[N, P]`` logits and targets -> ``sum_n (1 - (2 sum σ t + 1) / (sum σ + sum t + 1)) / num_masks``."""
    prob = logits.sigmoid()
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


def uncertain_point_coords(logits: Tensor, num_points: int, oversample_ratio: float,
                           importance_sample_ratio: float) -> Tensor:
    """``[N, 1, h, w]`` mask logits -> ``[N, num_points, 2]`` coordinates in [0, 1]: the
    ``importance_sample_ratio * num_points`` most uncertain (smallest ``|logit|``) of
    ``oversample_ratio * num_points`` uniform draws, plus uniform draws for the rest
    (detectron2 ``get_uncertain_point_coords_with_randomness``)."""
    n = logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=logits.device)
    uncertainty = -point_sample(logits, coords)[:, 0].abs()
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = torch.topk(uncertainty, k=num_uncertain, dim=1)[1]
    chosen = torch.gather(coords, 1, idx[:, :, None].expand(-1, -1, 2))
    rest = torch.rand(n, num_points - num_uncertain, 2, device=logits.device)
    return torch.cat([chosen, rest], dim=1)


class SetCriterion:
    """``(outputs, targets) -> {loss name: weighted loss}`` over the last and the auxiliary predictions."""

    def __init__(self, num_classes: int, matcher: HungarianMatcher, *, eos_coef: float = 0.1,
                 weight_ce: float = 2.0, weight_mask: float = 5.0, weight_dice: float = 5.0,
                 num_points: int = 12544, oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75) -> None:
        self.num_classes = num_classes
        self.matcher = matcher
        self.weights = {"loss_ce": weight_ce, "loss_mask": weight_mask, "loss_dice": weight_dice}
        self.empty_weight = torch.ones(num_classes + 1)
        self.empty_weight[-1] = eos_coef
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    def loss_labels(self, logits: Tensor, targets: list[dict], indices) -> Tensor:
        target_classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.long, device=logits.device)
        for b, (src, tgt) in enumerate(indices):
            target_classes[b, src] = targets[b]["labels"][tgt]
        return F.cross_entropy(logits.transpose(1, 2), target_classes, self.empty_weight.to(logits.device, logits.dtype))

    def loss_masks(self, masks: Tensor, targets: list[dict], indices, num_masks: float) -> tuple[Tensor, Tensor]:
        src = torch.cat([masks[b, s] for b, (s, _) in enumerate(indices)])
        if src.shape[0] == 0:
            zero = masks.sum() * 0.0
            return zero, zero
        tgt = torch.cat([targets[b]["masks"][t] for b, (_, t) in enumerate(indices)]).to(src.dtype)
        with torch.no_grad():
            coords = uncertain_point_coords(src[:, None], self.num_points, self.oversample_ratio,
                                            self.importance_sample_ratio)
            point_labels = point_sample(tgt[:, None], coords)[:, 0]
        point_logits = point_sample(src[:, None], coords)[:, 0]
        return sigmoid_ce_loss(point_logits, point_labels, num_masks), dice_loss(point_logits, point_labels, num_masks)

    def __call__(self, outputs: dict, targets: list[dict]) -> dict[str, Tensor]:
        num_masks = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
        losses = {}
        sets = [("", outputs)] + [(f"_{i}", aux) for i, aux in enumerate(outputs.get("aux_outputs", []))]
        for suffix, out in sets:
            indices = self.matcher(out, targets)
            ce = self.loss_labels(out["pred_logits"], targets, indices)
            mask, dice = self.loss_masks(out["pred_masks"], targets, indices, num_masks)
            for name, value in (("loss_ce", ce), ("loss_mask", mask), ("loss_dice", dice)):
                losses[name + suffix] = self.weights[name] * value
        return losses
