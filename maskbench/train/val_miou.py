"""Closed-set mIoU of the tiny model on the world's val frames (what ``bench train`` logs and records)."""

from __future__ import annotations

import numpy as np
import torch

from maskbench.model.predictor import Predictor


def confusion(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` counts (rows ground truth, columns prediction) over pixels with ``gt < K``."""
    valid = gt < num_classes
    return np.bincount(gt[valid].astype(np.int64) * num_classes + pred[valid], minlength=num_classes ** 2
                       ).reshape(num_classes, num_classes)


def miou(conf: np.ndarray) -> tuple[float, list]:
    """Mean over classes with ground-truth pixels of ``TP / (TP + FP + FN)``; also the per-class IoU (None if absent)."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = conf.sum(1) > 0
    ious = [float(tp[k] / union[k]) if present[k] else None for k in range(len(tp))]
    return float(np.mean([v for v in ious if v is not None])), ious


@torch.no_grad()
def evaluate_miou(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[float, list]:
    """Closed-set mIoU with the reference test-time path (:class:`~maskbench.model.predictor.Predictor`,
    native resolution, semantic scores argmax)."""
    was_training = model.training
    model.eval()
    predictor = Predictor(model)
    conf = np.zeros((num_classes, num_classes), np.int64)
    for img, lab in zip(images, labels):
        pred = predictor.semantic(img).argmax(0).numpy()
        conf += confusion(pred, lab, num_classes)
    model.train(was_training)
    return miou(conf)
