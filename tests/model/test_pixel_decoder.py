"""Sine position embedding and the MSDeformAttn pixel decoder against literal re-derivations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from maskbench.model import pixel_decoder
from maskbench.model.ms_deform_attn import ms_deform_attn
from maskbench.model.position_encoding import PositionEmbeddingSine


@pytest.mark.parametrize("h,w,feats", [(3, 5, 8), (7, 4, 128), (1, 1, 4)])
def test_position_embedding_matches_formula(helpers, h, w, feats):
    got = PositionEmbeddingSine(num_pos_feats=feats)(torch.zeros(2, 9, h, w))
    assert got.shape == (2, 2 * feats, h, w) and got.dtype == torch.float32
    expected = helpers.literal_sine_pos(h, w, feats)
    torch.testing.assert_close(got[1].double(), expected, rtol=0, atol=2e-6)
    # hand value: channel 0 is sin of the normalised row, channel F+1 cos of the normalised column / t_1
    assert got[0, 0, 0, 0].item() == pytest.approx(math.sin(2 * math.pi / (h + 1e-6)), abs=1e-6)
    assert got[0, feats + 1, h - 1, w - 1].item() == pytest.approx(math.cos(2 * math.pi * w / (w + 1e-6)), abs=1e-6)


def literal_pixel_decoder(pd, features):
    """Upstream MSDeformAttnPixelDecoder.forward_features re-derived step by step (forward.md §1.3)."""
    names = list(pd.transformer_in_features[::-1])  # coarsest first
    srcs, pos = [], []
    for i, name in enumerate(names):
        conv, gn = pd.input_proj[i][0], pd.input_proj[i][1]
        x = features[name]
        srcs.append(F.group_norm(F.conv2d(x, conv.weight, conv.bias), 32, gn.weight, gn.bias))
        # the sine embedding (tested against the formula above) of the raw map, plus this level's embedding
        pos.append(pd.pe_layer(x) + pd.transformer.level_embed[i].view(1, -1, 1, 1))
    shapes = [tuple(s.shape[-2:]) for s in srcs]
    n = srcs[0].shape[0]
    src = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
    lvl_pos = torch.cat([p.flatten(2).transpose(1, 2) for p in pos], 1)
    ref = torch.tensor([[(c + 0.5) / w, (r + 0.5) / h] for h, w in shapes for r in range(h) for c in range(w)])
    hw = torch.tensor(shapes)
    starts = torch.tensor([0] + [h * w for h, w in shapes][:-1]).cumsum(0)
    n_levels = len(shapes)
    for layer in pd.transformer.encoder.layers:
        att = layer.self_attn
        m, pts = att.n_heads, att.n_points
        q = src + lvl_pos
        value = F.linear(src, att.value_proj.weight, att.value_proj.bias).view(n, src.shape[1], m, -1)
        off = F.linear(q, att.sampling_offsets.weight, att.sampling_offsets.bias).view(n, -1, m, n_levels, pts, 2)
        logits = F.linear(q, att.attention_weights.weight, att.attention_weights.bias).view(n, -1, m, n_levels * pts)
        weights = logits.softmax(-1).view(n, -1, m, n_levels, pts)
        scale = torch.tensor([[w, h] for h, w in shapes], dtype=src.dtype)  # (x, y) / (W, H)
        loc = ref[None, :, None, None, None, :] + off / scale[None, None, None, :, None, :]
        core = ms_deform_attn(value, hw, starts, loc, weights, backend="torch")
        src = F.layer_norm(src + F.linear(core, att.output_proj.weight, att.output_proj.bias), (src.shape[-1],),
                           layer.norm1.weight, layer.norm1.bias)
        ffn = F.linear(F.relu(F.linear(src, layer.linear1.weight, layer.linear1.bias)), layer.linear2.weight, layer.linear2.bias)
        src = F.layer_norm(src + ffn, (src.shape[-1],), layer.norm2.weight, layer.norm2.bias)
    outs, start = [], 0
    for h, w in shapes:
        outs.append(src[:, start:start + h * w].transpose(1, 2).reshape(n, -1, h, w))
        start += h * w
    fpn_names = ["res2", "res3", "res4"][: pd.num_fpn_levels]
    for i in reversed(range(len(fpn_names))):  # coarse to fine; adapter_1 is res2
        adapter, out_conv = getattr(pd, f"adapter_{i + 1}"), getattr(pd, f"layer_{i + 1}")
        lateral = F.group_norm(F.conv2d(features[fpn_names[i]], adapter.weight), 32, adapter.norm.weight, adapter.norm.bias)
        y = lateral + F.interpolate(outs[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        y = F.relu(F.group_norm(F.conv2d(y, out_conv.weight, padding=1), 32, out_conv.norm.weight, out_conv.norm.bias))
        outs.append(y)
    mask = F.conv2d(outs[-1], pd.mask_features.weight, pd.mask_features.bias)
    return mask, outs[:n_levels]


@pytest.mark.parametrize("levels,token_chunk", [(("res3", "res4", "res5"), None), (("res3", "res4", "res5"), 50),
                                                (("res5",), None), (("res4", "res5"), 7)])
def test_pixel_decoder_matches_literal(helpers, monkeypatch, levels, token_chunk):
    """token_chunk: encoder layers run on slices of that many tokens (168 tokens here: 50 leaves a remainder)."""
    if token_chunk is not None:
        monkeypatch.setattr(pixel_decoder, "TOKEN_CHUNK", token_chunk)
    model = helpers.build_tiny(11, transformer_in_features=levels)
    pd = model.sem_seg_head.pixel_decoder
    assert pd.num_fpn_levels == {"res3": 1, "res4": 2, "res5": 3}[levels[0]]
    gen = torch.Generator().manual_seed(12)
    with torch.no_grad():
        features = model.backbone(torch.randn(2, 3, 64, 128, generator=gen))
        mask, multi = pd(features)
        exp_mask, exp_multi = literal_pixel_decoder(pd, features)
    assert mask.shape == (2, 64, 16, 32)
    assert [tuple(m.shape[-2:]) for m in multi] == [(64 // s, 128 // s) for s in (32, 16, 8)][: len(levels)]
    torch.testing.assert_close(mask, exp_mask, rtol=1e-4, atol=1e-4)
    for got, exp in zip(multi, exp_multi):
        torch.testing.assert_close(got, exp, rtol=1e-4, atol=1e-4)


def test_pixel_decoder_runs_fp32_under_autocast(helpers):
    model = helpers.build_tiny(13)
    pd = model.sem_seg_head.pixel_decoder
    gen = torch.Generator().manual_seed(14)
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 64, 64, generator=gen))
        plain_mask, plain_multi = pd(features)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto_mask, auto_multi = pd({k: v.bfloat16() for k, v in features.items()})
        expected, _ = pd({k: v.bfloat16().float() for k, v in features.items()})
    assert auto_mask.dtype == torch.float32 and all(m.dtype == torch.float32 for m in auto_multi)
    # inputs were rounded to bf16, the computation itself is fp32
    assert torch.equal(auto_mask, expected)
    assert (auto_mask - plain_mask).abs().max() < 0.1
