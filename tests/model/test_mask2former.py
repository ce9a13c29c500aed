"""Whole-model checks: detectron2 key layout (forward.md §3.2/§3.4/§3.5), sizes, determinism, config errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskbench.errors import InputError
from maskbench.model import Mask2FormerConfig, build_model, build_model_with_backbone


class ChannelsOnly(nn.Module):
    """Backbone stand-in that only declares its channels (the head is built, never run)."""

    def __init__(self, channels):
        super().__init__()
        self.out_channels = dict(zip(("res2", "res3", "res4", "res5"), channels))


def documented_head_keys(*, in_ch, levels, enc_layers, dec_layers, fpn, gma, classes=19, queries=100, c=256,
                         heads=8, points=4):
    """Key -> shape of ``sem_seg_head.*`` as listed in forward.md §3.2 (R50/Swin), §3.4 (GMA), §3.5 (RbA)."""
    pd, pr = "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor."
    keys = {}
    coarse_first = [in_ch[f] for f in levels][::-1]
    for i, ch in enumerate(coarse_first):
        keys.update({f"{pd}input_proj.{i}.0.weight": (c, ch, 1, 1), f"{pd}input_proj.{i}.0.bias": (c,),
                     f"{pd}input_proj.{i}.1.weight": (c,), f"{pd}input_proj.{i}.1.bias": (c,)})
    keys[f"{pd}transformer.level_embed"] = (len(levels), c)
    n_off = heads * len(levels) * points
    for k in range(enc_layers):
        p = f"{pd}transformer.encoder.layers.{k}."
        keys.update({p + "self_attn.sampling_offsets.weight": (2 * n_off, c), p + "self_attn.sampling_offsets.bias": (2 * n_off,),
                     p + "self_attn.attention_weights.weight": (n_off, c), p + "self_attn.attention_weights.bias": (n_off,),
                     p + "self_attn.value_proj.weight": (c, c), p + "self_attn.value_proj.bias": (c,),
                     p + "self_attn.output_proj.weight": (c, c), p + "self_attn.output_proj.bias": (c,),
                     p + "norm1.weight": (c,), p + "norm1.bias": (c,), p + "linear1.weight": (1024, c),
                     p + "linear1.bias": (1024,), p + "linear2.weight": (c, 1024), p + "linear2.bias": (c,),
                     p + "norm2.weight": (c,), p + "norm2.bias": (c,)})
    keys.update({f"{pd}mask_features.weight": (c, c, 1, 1), f"{pd}mask_features.bias": (c,)})
    for i, name in enumerate(["res2", "res3", "res4"][:fpn]):
        keys.update({f"{pd}adapter_{i + 1}.weight": (c, in_ch[name], 1, 1), f"{pd}adapter_{i + 1}.norm.weight": (c,),
                     f"{pd}adapter_{i + 1}.norm.bias": (c,), f"{pd}layer_{i + 1}.weight": (c, c, 3, 3),
                     f"{pd}layer_{i + 1}.norm.weight": (c,), f"{pd}layer_{i + 1}.norm.bias": (c,)})

    def mha(prefix):
        return {prefix + "in_proj_weight": (3 * c, c), prefix + "in_proj_bias": (3 * c,),
                prefix + "out_proj.weight": (c, c), prefix + "out_proj.bias": (c,)}

    for i in range(dec_layers):
        sa, ca, ff = (f"{pr}transformer_{n}_layers.{i}." for n in ("self_attention", "cross_attention", "ffn"))
        keys.update(mha(sa + "self_attn."))
        keys.update({sa + "norm.weight": (c,), sa + "norm.bias": (c,), ca + "norm.weight": (c,), ca + "norm.bias": (c,)})
        for branch in (("multihead_attn_foreground.", "multihead_attn_background.") if gma else ("multihead_attn.",)):
            keys.update(mha(ca + branch))
        keys.update({ff + "linear1.weight": (2048, c), ff + "linear1.bias": (2048,), ff + "linear2.weight": (c, 2048),
                     ff + "linear2.bias": (c,), ff + "norm.weight": (c,), ff + "norm.bias": (c,)})
    keys.update({f"{pr}decoder_norm.weight": (c,), f"{pr}decoder_norm.bias": (c,), f"{pr}query_feat.weight": (queries, c),
                 f"{pr}query_embed.weight": (queries, c), f"{pr}level_embed.weight": (len(levels), c),
                 f"{pr}class_embed.weight": (classes + 1, c), f"{pr}class_embed.bias": (classes + 1,)})
    for j in range(3):
        keys.update({f"{pr}mask_embed.layers.{j}.weight": (c, c), f"{pr}mask_embed.layers.{j}.bias": (c,)})
    return keys


R50 = (256, 512, 1024, 2048)
SWIN_L = (192, 384, 768, 1536)


@pytest.mark.parametrize("name,cfg,channels,expect", [
    ("r50", Mask2FormerConfig(), R50, dict(levels=("res3", "res4", "res5"), enc_layers=6, dec_layers=9, fpn=1, gma=False)),
    ("m2a-gma", Mask2FormerConfig(gma=True), R50, dict(levels=("res3", "res4", "res5"), enc_layers=6, dec_layers=9, fpn=1, gma=True)),
    ("rba-swinl", Mask2FormerConfig(backbone="swin", dec_layers=1, transformer_in_features=("res5",)), SWIN_L,
     dict(levels=("res5",), enc_layers=6, dec_layers=1, fpn=3, gma=False)),
])
def test_head_keys_and_shapes_match_documented_layout(name, cfg, channels, expect):
    model = build_model_with_backbone(cfg, ChannelsOnly(channels))
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = documented_head_keys(in_ch=dict(zip(("res2", "res3", "res4", "res5"), channels)), **expect)
    assert set(got) == set(expected), (sorted(set(got) - set(expected))[:5], sorted(set(expected) - set(got))[:5])
    assert got == expected


def learnable_count(model):
    """Parameters plus FrozenBN affine buffers (trainable BN weights upstream), without running stats."""
    return sum(v.numel() for k, v in model.state_dict().items() if not k.endswith(("running_mean", "running_var")))


def test_r50_parameter_counts_match_reference():
    """forward.md §1.1 [measured]: R50 44.008 M; R50+GMA 46.557 M including 9 unused fusion layers
    (Conv2d 200->100: 20 100 parameters each) that are not built here."""
    assert round(learnable_count(build_model(Mask2FormerConfig())) / 1e6, 3) == 44.008
    count_gma = learnable_count(build_model(Mask2FormerConfig(gma=True)))
    assert round((count_gma + 9 * 20_100) / 1e6, 3) == 46.557


def test_forward_shapes_and_determinism(helpers):
    model = helpers.build_tiny(21)
    pixels = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(22))
    with torch.no_grad():
        a = model(pixels)
        b = helpers.build_tiny(21)(pixels)
    assert a["pred_logits"].shape == (2, 8, 6) and a["pred_masks"].shape == (2, 8, 16, 24)
    assert torch.equal(a["pred_logits"], b["pred_logits"]) and torch.equal(a["pred_masks"], b["pred_masks"])
    # batch items are independent (no padding masks, no cross-batch ops)
    with torch.no_grad():
        single = model(pixels[1:])
    torch.testing.assert_close(single["pred_masks"][0], a["pred_masks"][1], rtol=1e-4, atol=1e-4)


def test_bad_pixels_are_input_errors(helpers):
    model = helpers.build_tiny(0)
    with pytest.raises(InputError, match="multiples of 32"):
        model(torch.zeros(1, 3, 60, 64))
    with pytest.raises(InputError, match="pixels"):
        model(torch.zeros(3, 64, 64))


@pytest.mark.parametrize("changes,field", [
    (dict(backbone="vit"), "backbone"),
    (dict(resnet_depth=34), "resnet_depth"),
    (dict(transformer_in_features=("res5", "res3")), "transformer_in_features"),
    (dict(transformer_in_features=("res6",)), "transformer_in_features"),
    (dict(transformer_in_features=()), "transformer_in_features"),
    (dict(conv_dim=128), "conv_dim"),
    (dict(num_queries=0), "num_queries"),
    (dict(msda_backend="cuda"), "msda_backend"),
    (dict(nheads=7), "hidden_dim"),
])
def test_config_rejects_bad_fields(changes, field):
    with pytest.raises(InputError, match=f"Mask2FormerConfig.{field}="):
        Mask2FormerConfig(**changes)


def test_config_fpn_levels():
    assert Mask2FormerConfig().num_fpn_levels == 1
    assert Mask2FormerConfig(transformer_in_features=("res5",)).num_fpn_levels == 3


def test_msda_backends_agree_end_to_end(helpers):
    """The whole forward with the upstream grid_sample reference and with the fast CPU backend."""
    pixels = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(23))
    with torch.no_grad():
        ref = helpers.build_tiny(24, msda_backend="torch")(pixels)
        fast = helpers.build_tiny(24, msda_backend="torch-bag")(pixels)
    torch.testing.assert_close(fast["pred_logits"], ref["pred_logits"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast["pred_masks"], ref["pred_masks"], rtol=1e-4, atol=1e-4)
