"""Mask2Anomaly global masked attention (GMA) decoder.

Oracle: Eq. 10 of Mask2Anomaly (TPAMI'24) ``X_out = softmax(M_F + QK^T) V + softmax(M_B + QK^T) V + X_in``
written per head in conftest.literal_decoder, with the reference code's additions (each branch has its own
in/out projections; one LayerNorm after the residual) and masks M_F blocked where p < 0.5, M_B where p > 0.5.
"""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("levels,layers", [(("res3", "res4", "res5"), 4), (("res5",), 2)])
def test_gma_decoder_matches_literal_eq10(helpers, levels, layers):
    dec = helpers.build_tiny(5, gma=True, transformer_in_features=levels, dec_layers=layers).sem_seg_head.predictor.double()
    feats, mask_features = helpers.decoder_inputs(dec, seed=6)
    dec.pe_layer.forward = helpers.literal_pos_forward
    stats = {}
    exp_cls, exp_masks = helpers.literal_decoder(dec, feats, mask_features, gma=True, stats=stats)
    with torch.no_grad():
        out = dec(feats, mask_features)
    assert stats["fg"] > 0 and stats["bg"] > 0, "the unblock rule must fire in both branches"
    torch.testing.assert_close(out["pred_logits"], exp_cls, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out["pred_masks"], exp_masks, rtol=1e-9, atol=1e-9)


def test_gma_differs_from_foreground_only(helpers):
    """Sanity: the background branch contributes (else the literal test above could not tell them apart)."""
    dec = helpers.build_tiny(5, gma=True).sem_seg_head.predictor.double()
    feats, mask_features = helpers.decoder_inputs(dec, seed=6)
    with torch.no_grad():
        full = dec(feats, mask_features)["pred_logits"]
        for layer in dec.transformer_cross_attention_layers:
            layer.multihead_attn_background.out_proj.weight.zero_()
            layer.multihead_attn_background.out_proj.bias.zero_()
        fg_only = dec(feats, mask_features)["pred_logits"]
    assert (full - fg_only).abs().max() > 1e-3


def test_gma_with_silenced_background_equals_masked_model(helpers):
    """forward.md §3.7 item 3: zero the background branch's out_proj (weight and bias); the GMA model must
    then equal the masked-attention model that uses the foreground weights."""
    gma = helpers.build_tiny(8, gma=True)
    masked = helpers.build_tiny(9, gma=False)
    state = {}
    for key, value in gma.state_dict().items():
        if "multihead_attn_background" in key:
            continue
        state[key.replace("multihead_attn_foreground", "multihead_attn")] = value
    masked.load_state_dict(state, strict=True)
    with torch.no_grad():
        for layer in gma.sem_seg_head.predictor.transformer_cross_attention_layers:
            layer.multihead_attn_background.out_proj.weight.zero_()
            layer.multihead_attn_background.out_proj.bias.zero_()
    pixels = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        a, b = gma(pixels), masked(pixels)
    assert torch.equal(a["pred_logits"], b["pred_logits"])
    assert torch.equal(a["pred_masks"], b["pred_masks"])
