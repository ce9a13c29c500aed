"""Predictor pre/post-processing against hand-computed cases and the naive upstream order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from maskbench.errors import InputError
from maskbench.model.predictor import (
    Predictor,
    postprocess_mask_logits,
    resize_shortest_edge_shape,
    semantic_inference,
)


def test_postprocess_hand_computed():
    """1/4 map [0, 8] -> padded width 8: [0, 0, 1, 3, 5, 7, 8, 8]; crop to 5: [0, 0, 1, 3, 5];
    bilinear to 10 (src = (j + 0.5) / 2 - 0.5, clamped): [0, 0, 0, .25, .75, 1.5, 2.5, 3.5, 4.5, 5]."""
    masks = torch.tensor([[[0.0, 8.0]]])  # [Q=1, 1, 2]
    cropped = postprocess_mask_logits(masks, image_size=(1, 5), output_size=(1, 5))
    assert cropped.tolist() == [[[0.0, 0.0, 1.0, 3.0, 5.0]]]
    resized = postprocess_mask_logits(masks, image_size=(1, 5), output_size=(1, 10))
    expected = [0.0, 0.0, 0.0, 0.25, 0.75, 1.5, 2.5, 3.5, 4.5, 5.0]
    assert resized.shape == (1, 1, 10)
    torch.testing.assert_close(resized[0, 0], torch.tensor(expected), rtol=0, atol=1e-6)


@pytest.mark.parametrize("image_size", [(64, 96), (50, 70), (33, 95), (1, 1), (61, 93)])
def test_postprocess_equals_full_upsample_then_crop(image_size):
    """Bit-identical to upstream: interpolate to the padded size, crop, (resize)."""
    gen = torch.Generator().manual_seed(1)
    h, w = image_size
    hp, wp = -(-h // 32) * 32, -(-w // 32) * 32
    masks = torch.randn(7, hp // 4, wp // 4, generator=gen)
    full = F.interpolate(masks[None], size=(hp, wp), mode="bilinear", align_corners=False)[0, :, :h, :w]
    assert torch.equal(postprocess_mask_logits(masks, (h, w), (h, w)), full)
    out_size = (2 * h + 1, 3 * w)
    expected = F.interpolate(full[None], size=out_size, mode="bilinear", align_corners=False)[0]
    assert torch.equal(postprocess_mask_logits(masks, (h, w), out_size), expected)


def test_semantic_inference_literal():
    gen = torch.Generator().manual_seed(2)
    cls = torch.randn(4, 4, generator=gen)  # Q=4, K=3 + void
    masks = torch.randn(4, 5, 6, generator=gen)
    got = semantic_inference(cls, masks, rows_per_chunk=2)
    expected = torch.zeros(3, 5, 6, dtype=torch.float64)
    for q in range(4):
        e = torch.exp(cls[q].double())
        p = e / e.sum()  # softmax over K+1, void dropped afterwards
        for k in range(3):
            expected[k] += p[k] * (1 / (1 + torch.exp(-masks[q].double())))
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-6)


def test_resize_shortest_edge_shape():
    assert resize_shortest_edge_shape(1024, 2048) == (1024, 2048)
    assert resize_shortest_edge_shape(720, 1280) == (1024, 1820)  # 1280 * 1024 / 720 = 1820.44
    assert resize_shortest_edge_shape(600, 1800) == (683, 2048)  # capped: 1024 * 2048 / 3072 = 682.67
    assert resize_shortest_edge_shape(1500, 1000) == (1536, 1024)


class ConstantModel(torch.nn.Module):
    """Records its input and returns fixed logits of the right shapes."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen = None

    def forward(self, pixels):
        self.seen = pixels.clone()
        b, _, hp, wp = pixels.shape
        gen = torch.Generator().manual_seed(0)
        masks = torch.randn(b, 3, hp // 4, wp // 4, generator=gen)
        return {"pred_logits": torch.randn(b, 3, 3, generator=gen), "pred_masks": masks}


def test_preprocess_normalises_then_zero_pads():
    model = ConstantModel()
    pred = Predictor(model, pixel_mean=(10.0, 20.0, 30.0), pixel_std=(2.0, 4.0, 5.0))
    image = np.zeros((33, 40, 3), dtype=np.uint8)
    image[0, 0] = (12, 24, 35)
    x, size = pred.preprocess(image)
    assert size == (33, 40) and x.shape == (1, 3, 64, 64)
    assert x[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert x[0, :, 1, 1].tolist() == [-5.0, -5.0, -6.0]
    assert torch.count_nonzero(x[0, :, 33:]) == 0 and torch.count_nonzero(x[0, :, :, 40:]) == 0


def test_predictor_output_sizes_and_resize_policy():
    model = ConstantModel()
    image = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    native = Predictor(model)(image)
    assert native.mask_logits.shape == (3, 30, 45) and native.class_logits.shape == (3, 3)
    assert native.protocol["resize"] == "native" and native.protocol["padded_size"] == [32, 64]
    assert native.protocol["msda_backend"] in ("torch-bag", "torch", "triton")
    resized = Predictor(model, resize="short1024")(image)
    assert resized.protocol["processed_size"] == [1024, 1536] and resized.mask_logits.shape == (3, 30, 45)
    # the model saw the PIL-bilinear resized image, normalised
    expected = np.asarray(Image.fromarray(image).resize((1536, 1024), Image.BILINEAR)).astype(np.float32)
    mean = np.array([123.675, 116.28, 103.53], dtype=np.float32)
    std = np.array([58.395, 57.12, 57.375], dtype=np.float32)
    seen = model.seen[0, :, :1024, :1536].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(seen, (expected - mean) / std, rtol=0, atol=1e-5)


def test_semantic_resizes_scores_after_inference():
    model = ConstantModel()
    image = np.zeros((30, 45, 3), dtype=np.uint8)
    pred = Predictor(model, resize="short1024")
    scores = pred.semantic(image)
    out = model(pred.preprocess(image)[0])
    full = F.interpolate(out["pred_masks"], size=(1024, 1536), mode="bilinear", align_corners=False)[0]
    sem = torch.einsum("qc,qhw->chw", out["pred_logits"][0].softmax(-1)[:, :-1], full.sigmoid())
    expected = F.interpolate(sem[None], size=(30, 45), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)


def test_bad_inputs():
    with pytest.raises(InputError, match="resize="):
        Predictor(ConstantModel(), resize="short800")
    with pytest.raises(InputError, match="image: expected"):
        Predictor(ConstantModel())(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(InputError, match="image: expected"):
        Predictor(ConstantModel())(np.zeros((10, 10), dtype=np.uint8))
