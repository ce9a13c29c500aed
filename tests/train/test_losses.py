"""Mask2Former losses against literal formulas."""

import math

import pytest
import torch

from maskbench.train.losses import SetCriterion, dice_loss, sigmoid_ce_loss, uncertain_point_coords
from maskbench.train.matcher import HungarianMatcher


def sig(v):
    return 1 / (1 + math.exp(-v))


def test_sigmoid_ce_and_dice_are_the_literal_sums_over_masks():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 7, generator=g, dtype=torch.float64) * 2
    t = (torch.rand(3, 7, generator=g) > 0.4).double()
    num_masks = 2.5
    bce = sum(sum(-(float(t[n, p]) * math.log(sig(float(logits[n, p])))
                    + (1 - float(t[n, p])) * math.log(1 - sig(float(logits[n, p])))) for p in range(7)) / 7
              for n in range(3)) / num_masks
    dice = 0.0
    for n in range(3):
        s = [sig(float(v)) for v in logits[n]]
        inter = sum(a * float(b) for a, b in zip(s, t[n]))
        dice += 1 - (2 * inter + 1) / (sum(s) + float(t[n].sum()) + 1)
    assert sigmoid_ce_loss(logits, t, num_masks).item() == pytest.approx(bce, rel=1e-12)
    assert dice_loss(logits, t, num_masks).item() == pytest.approx(dice / num_masks, rel=1e-12)


def test_class_loss_weights_no_object_by_eos_coef():
    crit = SetCriterion(3, HungarianMatcher(), eos_coef=0.1)
    logits = torch.tensor([[[1.0, 0.5, -0.5, 0.2], [0.1, 2.0, 0.3, -1.0], [0.0, 0.0, 0.0, 1.5]]], dtype=torch.float64)
    targets = [{"labels": torch.tensor([2, 0])}]
    indices = [(torch.tensor([2, 0]), torch.tensor([0, 1]))]  # query 2 -> class 2, query 0 -> class 0, query 1 void
    got = crit.loss_labels(logits, targets, indices).item()
    labels, weights = [0, 3, 2], [1.0, 0.1, 1.0]
    nll = [-math.log(math.exp(float(logits[0, q, labels[q]])) / sum(math.exp(float(v)) for v in logits[0, q]))
           for q in range(3)]
    # the weight vector is float32 (0.1 is not exact), hence rel 1e-8
    assert got == pytest.approx(sum(w * l for w, l in zip(weights, nll)) / sum(weights), rel=1e-8)


def test_uncertain_points_keep_the_smallest_abs_logits():
    torch.manual_seed(0)
    logits = torch.linspace(-4, 4, 64).view(1, 1, 8, 8)
    coords = uncertain_point_coords(logits, num_points=40, oversample_ratio=3.0, importance_sample_ratio=0.75)
    assert coords.shape == (1, 40, 2)
    torch.manual_seed(0)
    draws = torch.rand(1, 120, 2)
    from maskbench.train.matcher import point_sample
    uncertainty = -point_sample(logits, draws)[0, 0].abs()
    want = draws[0, uncertainty.argsort(descending=True)[:30]]
    assert sorted(map(tuple, coords[0, :30].tolist())) == sorted(map(tuple, want.tolist()))


def test_total_loss_has_every_set_weighted():
    torch.manual_seed(0)
    out = {"pred_logits": torch.randn(2, 4, 4), "pred_masks": torch.randn(2, 4, 8, 8)}
    out["aux_outputs"] = [{"pred_logits": torch.randn(2, 4, 4), "pred_masks": torch.randn(2, 4, 8, 8)}]
    targets = [{"labels": torch.tensor([0, 2]), "masks": (torch.rand(2, 16, 16) > 0.5).float()},
               {"labels": torch.tensor([1]), "masks": (torch.rand(1, 16, 16) > 0.5).float()}]
    losses = SetCriterion(3, HungarianMatcher(num_points=32), num_points=32)(out, targets)
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0", "loss_dice_0"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
