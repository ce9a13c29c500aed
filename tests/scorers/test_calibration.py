"""Maskomaly query calibration on synthetic validation sets whose answer is constructed."""

import numpy as np
import pytest
import torch

from maskbench.errors import InputError
from maskbench.scorers import calibrate_maskomaly, street_prediction

H, W, Q = 20, 24, 8


def box(y0, y1, x0, x1):
    out = np.zeros((H, W), dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


def iou(a, b, valid):
    a, b = a & valid, b & valid
    return (a & b).sum() / (a | b).sum()


def validation_set():
    """Three images. Per image: anomaly box, street band, void strip at the bottom rows 18-19.

    query 2 = exactly the anomaly (IoU 1); query 4 = anomaly plus as much again (IoU 0.5);
    query 6 = a quarter of the anomaly (IoU 0.25: not above T_IoU); query 1 = the street (IoU 1);
    query 3 = the street plus the void strip (void ignored, so IoU 1 as well, listed after query 1);
    query 5 = the anomaly box only inside void + 1 px elsewhere; others empty.
    """
    images = []
    for i, (y0, x0) in enumerate([(2, 3), (4, 10), (6, 6)]):
        anomaly = box(y0, y0 + 4, x0, x0 + 4)
        street = box(12, 18, 0, W)
        void = box(18, 20, 0, W)
        gt = np.where(void, 255, np.where(anomaly, 1, 0)).astype(np.uint8)
        masks = np.zeros((Q, H, W), dtype=bool)
        masks[2] = anomaly
        masks[4] = anomaly | box(y0, y0 + 4, x0 + 4, x0 + 8)
        masks[6] = box(y0, y0 + 2, x0, x0 + 2)
        masks[1] = street
        masks[3] = street | void
        masks[5] = void | box(0, 1, 0, 1)
        probs = np.where(masks, 0.95, 0.02).astype(np.float32)
        images.append((torch.from_numpy(probs), gt, torch.from_numpy(street), masks, anomaly, street, gt != 255))
    return images


def test_accept_and_ground_are_ranked_by_mean_iou():
    images = validation_set()
    fit = calibrate_maskomaly((im[0] for im in images), (im[1] for im in images), (im[2] for im in images))
    assert fit.accept == (2, 4)
    assert fit.ground == (1, 3)
    assert fit.params() == {"accept": [2, 4], "ground": [1, 3]}
    for q in range(Q):  # independent IoU on the labelled pixels, averaged over the images
        expected_a = np.mean([iou(im[3][q], im[4], im[6]) for im in images])
        expected_g = np.mean([iou(im[3][q], im[5], im[6]) for im in images])
        assert fit.accept_iou[q] == pytest.approx(expected_a)
        assert fit.ground_iou[q] == pytest.approx(expected_g)
    assert fit.accept_iou[6] == pytest.approx(0.25)  # exactly T_IoU: not kept ("larger than")
    assert fit.images_with_anomalies == 3 and fit.images_with_street == 3
    assert fit.to_dict()["accept"] == (2, 4)


def test_images_without_anomalies_do_not_count():
    images = validation_set()
    empty_gt = np.zeros((H, W), dtype=np.uint8)
    probs = [im[0] for im in images] + [images[0][0]]
    gts = [im[1] for im in images] + [empty_gt]
    fit = calibrate_maskomaly(probs, gts)
    base = calibrate_maskomaly([im[0] for im in images], [im[1] for im in images])
    assert fit.accept_iou == base.accept_iou and fit.images_with_anomalies == 3
    assert fit.ground == () and fit.ground_iou is None


def test_thresholds_change_the_selection():
    images = validation_set()
    fit = calibrate_maskomaly([im[0] for im in images], [im[1] for im in images], t_iou=0.2)
    assert fit.accept == (2, 4, 6)
    # binarising above 0.95 keeps nothing
    fit = calibrate_maskomaly([im[0] for im in images], [im[1] for im in images], t_bin=0.95)
    assert fit.accept == () and max(fit.accept_iou) == 0


def test_ground_excludes_accept_queries():
    images = validation_set()
    # the street map equal to the anomaly makes query 2 the best ground query too: it stays in accept only
    fit = calibrate_maskomaly(
        [im[0] for im in images], [im[1] for im in images], [torch.from_numpy(im[4]) for im in images]
    )
    assert fit.accept == (2, 4) and 2 not in fit.ground and 4 not in fit.ground


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda p, g, s: (p, [gi * 0 + 7 for gi in g], s), "ood_gt\\[0\\]: labels must be 0"),
        (lambda p, g, s: (p, g[:2], s), "different numbers of images"),
        (lambda p, g, s: (p, g, s[:2]), "street: fewer maps than images"),
        (lambda p, g, s: (p, g, s + s), "street: more maps than images"),
        (lambda p, g, s: ([pi * 2 for pi in p], g, s), "mask_probs\\[0\\]: values must be sigmoid probabilities"),
        (lambda p, g, s: ([pi[0] for pi in p], g, s), "mask_probs\\[0\\]: expected floating \\(Q, H, W\\)"),
        (lambda p, g, s: (p, [gi[:5] for gi in g], s), "ood_gt\\[0\\]: shape"),
        (lambda p, g, s: ([p[0], p[1][:3], p[2]], g, s), "mask_probs\\[1\\]: 3 queries, earlier images had 8"),
        (lambda p, g, s: (p, g, [si.float() for si in s]), "street\\[0\\]: expected a boolean"),
        (lambda p, g, s: (p, [gi * 0 for gi in g], s), "no image has anomaly pixels"),
        (lambda p, g, s: (p, g, [si & False for si in s]), "no image has street pixels"),
    ],
)
def test_bad_calibration_inputs(mutate, message):
    images = validation_set()
    p, g, s = mutate([im[0] for im in images], [im[1] for im in images], [im[2] for im in images])
    with pytest.raises(InputError, match=message):
        calibrate_maskomaly(p, g, s)


def test_street_prediction_is_the_argmax_of_s(forward):
    c, m = forward(0, k=4, h=9, w=13, confident=((0, 0, 9.0), (1, 1, 9.0), (2, 3, 9.0)))
    P = torch.softmax(c.double(), dim=-1)[:, :4]
    label = torch.einsum("qk,qhw->khw", P, m.double().sigmoid()).argmax(dim=0)
    assert torch.equal(street_prediction(c, m), label == 0)
    assert torch.equal(street_prediction(c, m, classes=(0, 1)), (label == 0) | (label == 1))
    assert street_prediction(c, m).any() and not street_prediction(c, m).all()
