"""Shared fixtures for tests/model: tiny configs and a stand-in backbone (no real weights needed)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from maskbench.model.config import Mask2FormerConfig, build_model_with_backbone


class TinyBackbone(nn.Module):
    """Stand-in with the backbone contract: ``[B, 3, H, W]`` -> res2..res5 at strides 4..32."""

    def __init__(self, channels: tuple[int, int, int, int] = (32, 48, 64, 96)) -> None:
        super().__init__()
        self.out_channels = {f"res{i + 2}": c for i, c in enumerate(channels)}
        self.stem = nn.Conv2d(3, channels[0], kernel_size=4, stride=4)
        self.stages = nn.ModuleList(
            nn.Conv2d(cin, cout, kernel_size=3, stride=2, padding=1) for cin, cout in zip(channels, channels[1:])
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = torch.relu(self.stem(x))
        out = {"res2": x}
        for i, stage in enumerate(self.stages):
            x = torch.relu(stage(x))
            out[f"res{i + 3}"] = x
        return out


def tiny_config(**changes) -> Mask2FormerConfig:
    """Small model: width 64, 2 heads, 1 encoder layer, 3 decoder layers, 8 queries, 5 classes."""
    base = dict(num_classes=5, num_queries=8, dec_layers=3, hidden_dim=64, nheads=2, dim_feedforward=96,
                conv_dim=64, mask_dim=64, enc_layers=1, enc_nheads=2, enc_dim_feedforward=80)
    base.update(changes)
    return Mask2FormerConfig(**base)


def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Overwrite every parameter with N(0, 0.2^2) (LayerNorm/GroupNorm weights around 1) so that no
    branch is trivially zero as after the upstream init."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * 0.2
            is_norm_scale = p.dim() == 1 and "norm" in name and name.endswith("weight")
            p.copy_(1.0 + noise if is_norm_scale else noise)
    return model


def build_tiny(seed: int = 0, **changes) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model_with_backbone(tiny_config(**changes), TinyBackbone())
    return randomize_(model, seed).eval()


@pytest.fixture
def tiny_model():
    return build_tiny(0)
