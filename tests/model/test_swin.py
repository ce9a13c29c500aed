"""D2SwinTransformer layout (forward.md §3.3) and a literal, loop-based Swin block as an oracle for the
pad-after-norm1 / -100 shift-mask behaviour (forward.md §1.2). The whole backbone is also checked against
HF's Swin in test_hf.py."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from maskbench.errors import InputError
from maskbench.model import Mask2FormerConfig, build_model_with_backbone
from maskbench.model.swin import (
    SwinTransformer,
    SwinTransformerBlock,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_token_index,
)

SWIN_L_FIXTURE = {  # forward.md §3.3 (Swin-L, detectron2 names)
    "backbone.patch_embed.proj.weight": (192, 3, 4, 4), "backbone.patch_embed.norm.weight": (192,),
    "backbone.layers.0.blocks.0.attn.qkv.weight": (576, 192),
    "backbone.layers.0.blocks.0.attn.relative_position_bias_table": (529, 6),
    "backbone.layers.3.blocks.1.attn.relative_position_bias_table": (529, 48),
    "backbone.layers.2.blocks.17.attn.relative_position_index": (144, 144),
    "backbone.layers.1.blocks.1.mlp.fc1.weight": (1536, 384), "backbone.layers.1.blocks.1.mlp.fc2.weight": (384, 1536),
    "backbone.layers.0.downsample.reduction.weight": (384, 768), "backbone.layers.2.downsample.norm.bias": (3072,),
    "backbone.norm0.weight": (192,), "backbone.norm3.bias": (1536,),
    "sem_seg_head.pixel_decoder.input_proj.0.0.weight": (256, 1536, 1, 1),
    "sem_seg_head.pixel_decoder.input_proj.2.0.weight": (256, 384, 1, 1),
    "sem_seg_head.pixel_decoder.adapter_1.weight": (256, 192, 1, 1),
}


def test_swin_l_layout_and_parameter_count():
    with torch.device("meta"):
        model = build_model_with_backbone(Mask2FormerConfig(backbone="swin"), SwinTransformer())
    state = model.state_dict()
    for key, shape in SWIN_L_FIXTURE.items():
        assert tuple(state[key].shape) == shape, key
    assert state["backbone.layers.0.blocks.0.attn.relative_position_index"].dtype == torch.int64
    assert "backbone.layers.3.downsample.reduction.weight" not in state
    assert sum(len(model.backbone.layers[s].blocks) for s in range(4)) == 24
    # forward.md §1.1: Swin-L model with 100 queries has 215.46 M parameters (HF build)
    assert round(sum(p.numel() for p in model.parameters()) / 1e4) == 21_546


def test_relative_position_index_literal():
    ws = 3
    index = relative_position_index(ws)
    for i in range(ws * ws):
        for j in range(ws * ws):
            dy, dx = i // ws - j // ws, i % ws - j % ws
            assert index[i, j] == (dy + ws - 1) * (2 * ws - 1) + (dx + ws - 1)


def _region(coord: int, size: int, ws: int, shift: int) -> int:
    return 0 if coord < size - ws else (1 if coord < size - shift else 2)


def test_shifted_window_mask_literal():
    hp, wp, ws, shift = 6, 9, 3, 1
    mask = shifted_window_mask(hp, wp, ws, shift, torch.device("cpu"))
    windows = [(r, c) for r in range(0, hp, ws) for c in range(0, wp, ws)]
    assert mask.shape == (len(windows), ws * ws, ws * ws)
    for w, (r0, c0) in enumerate(windows):
        tokens = [(r0 + t // ws, c0 + t % ws) for t in range(ws * ws)]
        for i, (yi, xi) in enumerate(tokens):
            for j, (yj, xj) in enumerate(tokens):
                same = (_region(yi, hp, ws, shift), _region(xi, wp, ws, shift)) == \
                    (_region(yj, hp, ws, shift), _region(xj, wp, ws, shift))
                assert mask[w, i, j] == (0.0 if same else -100.0)


@pytest.mark.parametrize("h,w,shift", [(5, 7, 1), (6, 9, 1), (4, 4, 0)])
def test_window_token_index_equals_pad_roll_partition(h, w, shift):
    ws = 3
    ids = torch.arange(1, h * w + 1, dtype=torch.float64).view(1, h, w, 1)  # token t carries value t + 1
    padded = F.pad(ids, (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
    expected = window_partition(torch.roll(padded, (-shift, -shift), (1, 2)), ws).reshape(-1)
    gather, inverse = window_token_index(h, w, ws, shift, torch.device("cpu"))
    table = torch.cat((ids.reshape(-1), torch.zeros(1, dtype=torch.float64)))  # index h*w = zero padding
    assert torch.equal(table[gather], expected)
    assert torch.equal(table[gather][inverse], ids.reshape(-1))


def literal_block(block: SwinTransformerBlock, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Upstream SwinTransformerBlock for batch 1 with explicit loops over windows, heads and token pairs:
    norm1 -> zero-pad to a window multiple -> roll by -shift -> per window softmax(qk/sqrt(d) + bias + mask) v
    -> proj -> roll back -> crop -> residual; then x + fc2(gelu(fc1(norm2(x))))."""
    ws, shift = block.window_size, block.shift_size
    attn = block.attn
    c = x.shape[-1]
    heads, d = attn.num_heads, c // attn.num_heads
    hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
    grid = torch.zeros(hp, wp, c, dtype=torch.float64)
    grid[:h, :w] = F.layer_norm(x[0], (c,), block.norm1.weight, block.norm1.bias).view(h, w, c).double()
    grid = torch.roll(grid, (-shift, -shift), (0, 1))
    out = torch.zeros_like(grid)
    table = attn.relative_position_bias_table.double()
    wq, bq = attn.qkv.weight.double(), attn.qkv.bias.double()
    for r0 in range(0, hp, ws):
        for c0 in range(0, wp, ws):
            coords = [(r0 + t // ws, c0 + t % ws) for t in range(ws * ws)]
            tok = torch.stack([grid[y, xx] for y, xx in coords])
            qkv = tok @ wq.T + bq
            merged = torch.zeros(ws * ws, c, dtype=torch.float64)
            for hd in range(heads):
                q = qkv[:, hd * d:(hd + 1) * d]
                k = qkv[:, c + hd * d:c + (hd + 1) * d]
                v = qkv[:, 2 * c + hd * d:2 * c + (hd + 1) * d]
                logits = torch.empty(ws * ws, ws * ws, dtype=torch.float64)
                for i, (yi, xi) in enumerate(coords):
                    for j, (yj, xj) in enumerate(coords):
                        bias = table[(yi - yj + ws - 1) * (2 * ws - 1) + (xi - xj + ws - 1), hd]
                        same = (_region(yi, hp, ws, shift), _region(xi, wp, ws, shift)) == \
                            (_region(yj, hp, ws, shift), _region(xj, wp, ws, shift))
                        masked = 0.0 if (shift == 0 or same) else -100.0
                        logits[i, j] = q[i] @ k[j] / math.sqrt(d) + bias + masked
                merged[:, hd * d:(hd + 1) * d] = torch.softmax(logits, -1) @ v
            projected = merged @ attn.proj.weight.double().T + attn.proj.bias.double()
            for t, (y, xx) in enumerate(coords):
                out[y, xx] = projected[t]
    out = torch.roll(out, (shift, shift), (0, 1))[:h, :w].reshape(1, h * w, c)
    y = x.double() + out
    normed = F.layer_norm(y, (c,), block.norm2.weight.double(), block.norm2.bias.double())
    hidden = F.gelu(normed @ block.mlp.fc1.weight.double().T + block.mlp.fc1.bias.double())
    return y + hidden @ block.mlp.fc2.weight.double().T + block.mlp.fc2.bias.double()


@pytest.mark.parametrize("shift", [0, 1])
def test_block_matches_literal_upstream_semantics(shift):
    torch.manual_seed(0)
    h, w, ws = 5, 7, 3
    block = SwinTransformerBlock(dim=8, num_heads=2, window_size=ws, shift_size=shift, mlp_ratio=2.0).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.3)
        x = torch.randn(1, h * w, 8)
        mask = shifted_window_mask(6, 9, ws, 1, x.device)
        got = block(x, h, w, mask)
        expected = literal_block(block, x, h, w)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


def test_backbone_output_strides_and_channels():
    net = SwinTransformer(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=3).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "res2": (1, 16, 16, 24), "res3": (1, 32, 8, 12), "res4": (1, 64, 4, 6), "res5": (1, 128, 2, 3)}
    assert net.out_channels == {"res2": 16, "res3": 32, "res4": 64, "res5": 128}


@pytest.mark.parametrize("kwargs", [{"depths": (2, 2, 2)}, {"window_size": 1}, {"embed_dim": 10, "num_heads": (3, 3, 3, 3)}])
def test_bad_arguments(kwargs):
    with pytest.raises(InputError, match="SwinTransformer"):
        SwinTransformer(**kwargs)
