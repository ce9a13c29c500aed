"""Sine position embedding of DETR as used by Mask2Former (``PositionEmbeddingSine(128, normalize=True)``).

For a map of size H x W without padding mask, with y = 1..H and x = 1..W (cumulative sums of ones):

    y' = y / (H + 1e-6) * 2pi,   x' = x / (W + 1e-6) * 2pi,   t_i = 10000 ** (2 floor(i / 2) / F)
    pos[2k] = sin(y' / t_2k), pos[2k+1] = cos(y' / t_2k+1)  (k < F/2), then the same for x',

channels ordered (y, x): ``F`` channels of y followed by ``F`` channels of x.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PositionEmbeddingSine(nn.Module):
    """``x [B, C, H, W]`` (only its shape, device and batch size are used) -> ``pos [B, 2F, H, W]`` fp32."""

    def __init__(self, *, num_pos_feats: int = 128, temperature: float = 10000.0) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = 2 * math.pi

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        not_mask = torch.ones((b, h, w), dtype=torch.bool, device=x.device)
        y_embed = not_mask.cumsum(1, dtype=torch.float32)
        x_embed = not_mask.cumsum(2, dtype=torch.float32)
        eps = 1e-6
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * self.scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32, device=x.device)
        dim_t = self.temperature ** (2 * (dim_t // 2) / self.num_pos_feats)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)
