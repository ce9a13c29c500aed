"""Hungarian matcher and point sampling against literal formulas and brute force."""

import itertools
import math

import numpy as np
import pytest
import torch

from maskbench.train.matcher import HungarianMatcher, pairwise_dice, pairwise_sigmoid_ce, point_sample


def bilinear_zero_pad(img, x, y):
    """Value of ``img`` [H, W] at normalised (x, y) in [0, 1], align_corners=False, zeros outside."""
    h, w = img.shape
    px, py = x * w - 0.5, y * h - 0.5
    x0, y0 = math.floor(px), math.floor(py)
    total = 0.0
    for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
        for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                total += wy * wx * float(img[yy, xx])
    return total


def test_point_sample_is_bilinear_with_align_corners_false():
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 1, 5, 7, generator=g, dtype=torch.float64)
    coords = torch.rand(1, 30, 2, generator=g, dtype=torch.float64)
    got = point_sample(img, coords)[0, 0]
    want = [bilinear_zero_pad(img[0, 0], float(x), float(y)) for x, y in coords[0]]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-12)


def literal_bce(logit, t):
    p = 1 / (1 + math.exp(-logit))
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_pairwise_costs_match_literal_formulas():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 9, generator=g, dtype=torch.float64) * 3
    targets = (torch.rand(3, 9, generator=g) > 0.5).double()
    ce, dice = pairwise_sigmoid_ce(logits, targets), pairwise_dice(logits, targets)
    for q in range(4):
        for t in range(3):
            bce = sum(literal_bce(float(logits[q, p]), float(targets[t, p])) for p in range(9)) / 9
            sig = [1 / (1 + math.exp(-float(v))) for v in logits[q]]
            inter = sum(s * float(v) for s, v in zip(sig, targets[t]))
            d = 1 - (2 * inter + 1) / (sum(sig) + float(targets[t].sum()) + 1)
            assert ce[q, t].item() == pytest.approx(bce, rel=1e-12)
            assert dice[q, t].item() == pytest.approx(d, rel=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_assignment_is_the_brute_force_minimum(seed):
    g = torch.Generator().manual_seed(seed)
    q, t = 5, 3
    outputs = {"pred_logits": torch.randn(1, q, 4, generator=g), "pred_masks": torch.randn(1, q, 6, 6, generator=g)}
    targets = [{"labels": torch.randint(0, 3, (t,), generator=g), "masks": (torch.rand(t, 12, 12, generator=g) > 0.5).float()}]
    matcher = HungarianMatcher(num_points=64)
    torch.manual_seed(seed)
    rows, cols = matcher(outputs, targets)[0]
    torch.manual_seed(seed)  # the same random points
    cost = matcher.cost_matrix(outputs["pred_logits"][0], outputs["pred_masks"][0], targets[0]["labels"],
                               targets[0]["masks"]).double().numpy()
    best = min(sum(cost[p[j], j] for j in range(t)) for p in itertools.permutations(range(q), t))
    assert sorted(cols.tolist()) == list(range(t))
    assert sum(cost[r, c] for r, c in zip(rows.tolist(), cols.tolist())) == pytest.approx(best, abs=1e-9)


def test_class_cost_is_minus_the_target_class_probability():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    masks = torch.zeros(2, 4, 4)
    target_masks = torch.zeros(2, 8, 8)
    m = HungarianMatcher(cost_class=1.0, cost_mask=0.0, cost_dice=0.0, num_points=16)
    cost = m.cost_matrix(logits, masks, torch.tensor([1, 0]), target_masks)
    probs = torch.softmax(logits, -1)
    torch.testing.assert_close(cost, -probs[:, [1, 0]], rtol=0, atol=0)


def test_image_without_targets_matches_nothing():
    out = {"pred_logits": torch.zeros(1, 3, 4), "pred_masks": torch.zeros(1, 3, 4, 4)}
    rows, cols = HungarianMatcher()(out, [{"labels": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 8, 8)}])[0]
    assert len(rows) == len(cols) == 0
