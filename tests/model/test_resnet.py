"""detectron2 ResNet layout: key names and shapes from the research notes' fixture (forward.md §3.2), published
parameter counts, stride placement. The forward itself is checked against HF's ResNet in test_hf.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskbench.errors import InputError
from maskbench.model import Mask2FormerConfig, build_model_with_backbone
from maskbench.model.resnet import FrozenBatchNorm2d, ResNet

# forward.md §3.2 (detectron2 R50, names and shapes)
R50_FIXTURE = {
    "backbone.stem.conv1.weight": (64, 3, 7, 7),
    "backbone.stem.conv1.norm.weight": (64,), "backbone.stem.conv1.norm.bias": (64,),
    "backbone.stem.conv1.norm.running_mean": (64,), "backbone.stem.conv1.norm.running_var": (64,),
    "backbone.res2.0.shortcut.weight": (256, 64, 1, 1), "backbone.res2.0.shortcut.norm.weight": (256,),
    "backbone.res2.0.conv1.weight": (64, 64, 1, 1), "backbone.res2.0.conv1.norm.running_var": (64,),
    "backbone.res2.0.conv2.norm.bias": (64,), "backbone.res2.0.conv3.norm.weight": (256,),
    "backbone.res3.0.conv2.weight": (128, 128, 3, 3), "backbone.res5.2.conv3.weight": (2048, 512, 1, 1),
    "sem_seg_head.pixel_decoder.input_proj.0.0.weight": (256, 2048, 1, 1),
    "sem_seg_head.pixel_decoder.input_proj.1.0.weight": (256, 1024, 1, 1),
    "sem_seg_head.pixel_decoder.input_proj.2.0.weight": (256, 512, 1, 1),
    "sem_seg_head.pixel_decoder.adapter_1.weight": (256, 256, 1, 1),
}


def _meta_model(norm: str, **cfg) -> nn.Module:
    with torch.device("meta"):
        return build_model_with_backbone(Mask2FormerConfig(**cfg), ResNet(depth=50, norm=norm))


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_r50_layout_matches_detectron2_fixture():
    state = _meta_model("FrozenBN").state_dict()
    for key, shape in R50_FIXTURE.items():
        assert tuple(state[key].shape) == shape, key
    assert len(state) == 557  # forward.md §3.2: "R50 model ... 557 tensors" (no num_batches_tracked)
    assert not any(k.startswith("backbone.") and k.endswith("num_batches_tracked") for k in state)
    bn_state = _meta_model("BN").state_dict()
    assert set(bn_state) - set(state) == {k.replace("running_var", "num_batches_tracked")
                                         for k in state if k.startswith("backbone.") and k.endswith("running_var")}


def test_parameter_counts_match_published_numbers():
    # torchvision resnet50 / resnet101 have 25,557,032 / 44,549,160 parameters, of which the fc is 2,049,000.
    with torch.device("meta"):
        r50, r101 = ResNet(depth=50, norm="BN"), ResNet(depth=101, norm="BN")
    assert _params(r50) == 25_557_032 - 2_049_000
    assert _params(r101) == 44_549_160 - 2_049_000
    # forward.md §1.1: R50 Mask2Former 44.008 M; Mask2Anomaly R50+GMA 46.557 M incl. 9 unused fusion layers.
    assert round(_params(_meta_model("BN")) / 1e3) == 44_008
    fusion = 9 * (100 * 200 + 100)
    assert round((_params(_meta_model("BN", gma=True)) + fusion) / 1e3) == 46_557


def test_strides_channels_and_stride_in_3x3():
    net = ResNet(depth=50, stem_channels=16, res2_channels=32).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "res2": (1, 32, 16, 24), "res3": (1, 64, 8, 12), "res4": (1, 128, 4, 6), "res5": (1, 256, 2, 3)}
    assert net.out_channels == {"res2": 32, "res3": 64, "res4": 128, "res5": 256}
    assert net.res2[0].shortcut.stride == (1, 1) and net.res2[1].shortcut is None
    for stage in (net.res3, net.res4, net.res5):
        first = stage[0]
        assert (first.conv1.stride, first.conv2.stride, first.conv3.stride) == ((1, 1), (2, 2), (1, 1))
        assert first.shortcut.stride == (2, 2) and all(b.shortcut is None for b in stage[1:])
    assert net.stem.conv1.stride == (2, 2) and net.stem.conv1.padding == (3, 3) and net.stem.conv1.bias is None


def test_frozen_batchnorm_formula_and_equivalence_with_batchnorm_eval():
    gen = torch.Generator().manual_seed(0)
    frozen, bn = FrozenBatchNorm2d(6), nn.BatchNorm2d(6).eval()
    stats = {"weight": torch.randn(6, generator=gen), "bias": torch.randn(6, generator=gen),
             "running_mean": torch.randn(6, generator=gen), "running_var": torch.rand(6, generator=gen) + 0.1}
    frozen.load_state_dict(stats)
    bn.load_state_dict(stats, strict=False)
    x = torch.randn(2, 6, 3, 4, generator=gen)
    literal = torch.empty_like(x)
    for c in range(6):
        literal[:, c] = (x[:, c] - stats["running_mean"][c]) / (stats["running_var"][c] + 1e-5) ** 0.5 \
            * stats["weight"][c] + stats["bias"][c]
    torch.testing.assert_close(frozen(x), literal, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(bn(x), literal, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"depth": 34}, {"norm": "GN"}, {"res2_channels": 30}])
def test_bad_arguments(kwargs):
    with pytest.raises(InputError, match="ResNet"):
        ResNet(**kwargs)


@pytest.mark.parametrize("norm,train", [("FrozenBN", False), ("BN", False), ("BN", True)])
def test_conv_norm_equals_conv_then_batch_norm(norm, train):
    """The folded eval path (and the unfolded training-mode BN) against conv2d followed by batch_norm."""
    from maskbench.model.resnet import Conv2dNorm

    gen = torch.Generator().manual_seed(3)
    layer = Conv2dNorm(5, 7, 3, stride=2, padding=1, norm=norm).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64))
        for name, offset in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.5)):
            getattr(layer.norm, name).copy_(torch.rand(7, generator=gen, dtype=torch.float64) + offset)
    layer.train(train)
    x = torch.randn(2, 5, 9, 11, generator=gen, dtype=torch.float64)
    bn = layer.norm
    expected = torch.nn.functional.batch_norm(
        torch.nn.functional.conv2d(x, layer.weight, stride=2, padding=1), bn.running_mean.clone(),
        bn.running_var.clone(), bn.weight, bn.bias, training=train, eps=1e-5)
    with torch.no_grad():
        got = layer(x)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
