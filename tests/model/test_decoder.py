"""Masked-attention transformer decoder against a literal loop implementation (conftest.literal_decoder)."""

from __future__ import annotations

import pytest
import torch

from maskbench.model.transformer_decoder import CrossAttentionLayer, unblock_full_rows


@pytest.mark.parametrize("levels,layers", [(("res3", "res4", "res5"), 4), (("res5",), 1)])
def test_masked_decoder_matches_literal(helpers, levels, layers):
    dec = helpers.build_tiny(3, transformer_in_features=levels, dec_layers=layers).sem_seg_head.predictor.double()
    feats, mask_features = helpers.decoder_inputs(dec, seed=4)
    # the sine embedding is fp32 by design (tested in test_pixel_decoder); feed the fp64 formula here
    dec.pe_layer.forward = helpers.literal_pos_forward
    stats = {}
    exp_cls, exp_masks = helpers.literal_decoder(dec, feats, mask_features, gma=False, stats=stats)
    with torch.no_grad():
        out = dec(feats, mask_features)
    assert stats["fg"] > 0, "the fully-blocked-row rule must be exercised"
    torch.testing.assert_close(out["pred_logits"], exp_cls, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["pred_masks"], exp_masks, rtol=1e-9, atol=1e-9)


def test_masked_attention_blocks_keys_and_unblocks_full_rows(helpers):
    torch.manual_seed(0)
    layer = CrossAttentionLayer(d_model=16, nhead=2).double().eval()
    gen = torch.Generator().manual_seed(1)
    tgt = torch.randn(3, 1, 16, generator=gen, dtype=torch.float64)
    mem = torch.randn(5, 1, 16, generator=gen, dtype=torch.float64)
    pos = torch.randn(5, 1, 16, generator=gen, dtype=torch.float64)
    qpos = torch.randn(3, 1, 16, generator=gen, dtype=torch.float64)
    blocked = torch.tensor([[True, False, True, False, True],   # partly blocked
                            [True, True, True, True, True],     # fully blocked -> attends to all
                            [False, False, False, False, False]])
    mask = unblock_full_rows(blocked[None])  # [B, Q, S], shared by the heads
    assert not mask[:, 1].any() and torch.equal(mask[0, 0], blocked[0])
    with torch.no_grad():
        got = layer(tgt, mem, mask_fg=mask, mask_bg=None, pos=pos, query_pos=qpos)[:, 0]
    lit_blocked = blocked.clone()
    lit_blocked[1] = False
    attn = helpers.literal_mha(layer.multihead_attn, (tgt + qpos)[:, 0], (mem + pos)[:, 0], mem[:, 0], lit_blocked.expand(2, -1, -1))
    expected = helpers.literal_layer_norm(tgt[:, 0] + attn, layer.norm.weight, layer.norm.bias)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)
    # the mask matters: without it the output differs
    unmasked = helpers.literal_mha(layer.multihead_attn, (tgt + qpos)[:, 0], (mem + pos)[:, 0], mem[:, 0])
    assert not torch.allclose(attn[0], unmasked[0])


def test_threshold_at_one_half_blocks_nothing(helpers):
    """sigmoid(0) = 0.5 is neither < 0.5 (foreground blocked) nor > 0.5 (background blocked)."""
    dec = helpers.build_tiny(1, gma=True).sem_seg_head.predictor
    out = torch.randn(8, 1, 64)
    _, masks, fg, bg = dec.forward_prediction_heads(out, torch.zeros(1, 64, 16, 32), torch.zeros(1, 64, 32))
    assert torch.count_nonzero(masks) == 0
    assert not fg.any() and not bg.any()
    assert fg.shape == (1, 8, 32)
