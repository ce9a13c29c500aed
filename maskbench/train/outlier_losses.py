"""Dense outlier losses of the outlier-exposure recipes, added to Mask2Former's set-prediction losses.

Both score the per-pixel class scores ``S = softmax(C)[:, :K]ᵀ σ(M)`` of a prediction set at the mask head's
resolution (1/4), resize the score bilinearly with ``align_corners=True`` to the label map and average
separately over inlier and outlier pixels; the references add them, weight 1, to the last prediction and to
every auxiliary one (deep supervision).

- :func:`rba_outlier_loss`: RbA ``mask2former/modeling/criterion.py`` ``SetCriterion.outlier_loss`` with the
  released OE configuration (``ckpts/swin_b_1dl_rba_ood_coco/config.yaml``: ``OUTLIER_LOSS_FUNC squared_hinge``,
  ``OUTLIER_LOSS_TARGET nls``, ``SCORE_NORM tanh``, ``INLIER_UPPER_THRESHOLD 0.0``, ``OUTLIER_LOWER_THRESHOLD 5.0``):
  ``s = −Σ_k tanh(S_k)``, ``relu(s_in − τ_in)²`` averaged over inliers (label map value 0), plus
  ``relu(τ_out − s_out)²`` over outliers (1) when there are any, then halved; void (255) pixels are left out.
- :func:`m2a_contrastive_loss`: Mask2Anomaly ``mask2former/modeling/criterion.py`` ``SetCriterion.loss_ood``
  ("margin", TPAMI'24 Eq. 12-13): ``s = −max_k S_k``, ``0.5·(mean(s_in²) + mean(relu(m − s_out)²))``, the
  outlier term only when there are outlier pixels. Its ``ood_mask`` is ``sem_seg == 254``
  (``mask_former_semantic_dataset_mapper.py``), so every other pixel, void included, counts as inlier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from maskbench.train.losses import SetCriterion

OUTLIER_LABEL = 254  # the pasted outliers' value in the label map (RbA OOD_LABEL, Mask2Anomaly mix_object)
IGNORE_LABEL = 255


def class_scores(pred_logits: Tensor, pred_masks: Tensor) -> Tensor:
    """``[B, Q, K+1]`` logits and ``[B, Q, h, w]`` mask logits -> ``[B, K, h, w]`` ``softmax(C)[..., :K]ᵀ σ(M)``."""
    return torch.einsum("bqc,bqhw->bchw", pred_logits.softmax(-1)[..., :-1], pred_masks.sigmoid())


def _to_labels(score: Tensor, size: tuple) -> Tensor:
    return F.interpolate(score[:, None], size=size, mode="bilinear", align_corners=True)[:, 0]


def _mean(values: Tensor) -> Tensor:
    # the references' mean of an empty selection is NaN; an empty inlier set contributes nothing instead
    return values.mean() if values.numel() else values.sum()


def rba_outlier_loss(pred_logits: Tensor, pred_masks: Tensor, labels: Tensor, *, inlier_upper: float = 0.0,
                     outlier_lower: float = 5.0) -> Tensor:
    """RbA's squared hinge on ``s = −Σ_k tanh(S_k)``; ``labels`` [B, H, W]: 254 outlier, 255 void, else inlier."""
    score = _to_labels(-class_scores(pred_logits, pred_masks).tanh().sum(1), labels.shape[-2:])
    outlier = labels == OUTLIER_LABEL
    inlier = ~outlier & (labels != IGNORE_LABEL)
    loss = _mean(F.relu(score[inlier] - inlier_upper).pow(2))
    if outlier.any():
        loss = 0.5 * (loss + F.relu(outlier_lower - score[outlier]).pow(2).mean())
    return loss


def m2a_contrastive_loss(pred_logits: Tensor, pred_masks: Tensor, labels: Tensor, *, margin: float = 1.0) -> Tensor:
    """Mask2Anomaly's mask contrastive loss on ``s = −max_k S_k``; ``labels`` [B, H, W]: 254 outlier, else inlier.

    With ``s`` in [−1, 0] the hinge ``relu(m − s_out)`` is never zero for ``m >= 0``: both terms lower
    ``max_k S_k``, the outlier term with the larger gradient ``2 (m − s_out)``, so ``m`` scales that gradient.
    """
    score = _to_labels(-class_scores(pred_logits, pred_masks).amax(1), labels.shape[-2:])
    outlier = labels == OUTLIER_LABEL
    loss = _mean(score[~outlier].pow(2))
    if outlier.any():
        loss = loss + torch.clamp(margin - score[outlier], min=0.0).pow(2).mean()
    return 0.5 * loss


DENSE_LOSSES = {"rba": rba_outlier_loss, "m2a": m2a_contrastive_loss}


class OutlierSetCriterion(SetCriterion):
    """:class:`SetCriterion` plus a dense outlier loss ``loss_outlier`` (weight ``weight_outlier``) on the last
    prediction and every auxiliary one; targets carry the label map under ``sem_seg``."""

    def __init__(self, num_classes: int, matcher, *, dense_loss: str, dense_params: dict | None = None,
                 weight_outlier: float = 1.0, **kwargs) -> None:
        super().__init__(num_classes, matcher, **kwargs)
        self.dense_loss = DENSE_LOSSES[dense_loss]
        self.dense_params = dict(dense_params or {})
        self.weight_outlier = weight_outlier

    def __call__(self, outputs: dict, targets: list[dict]) -> dict[str, Tensor]:
        losses = super().__call__(outputs, targets)
        labels = torch.stack([t["sem_seg"] for t in targets])
        sets = [("", outputs)] + [(f"_{i}", aux) for i, aux in enumerate(outputs.get("aux_outputs", []))]
        for suffix, out in sets:
            losses["loss_outlier" + suffix] = self.weight_outlier * self.dense_loss(
                out["pred_logits"], out["pred_masks"], labels, **self.dense_params)
        return losses
