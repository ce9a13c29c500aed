"""``MSDeformAttnPixelDecoder`` of Mask2Former (``mask2former/modeling/pixel_decoder/msdeformattn.py``).

Backbone maps -> deformable-attention encoder over ``transformer_in_features`` (levels ordered low to high
resolution: ``input_proj.0`` and ``level_embed[0]`` are the coarsest map) -> top-down FPN adapters down to
``common_stride`` -> ``mask_features`` (1x1 conv, no activation). Runs in fp32 with autocast disabled,
as upstream ("deformable detr does not support half precision"). No padding masks anywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskbench.model.config import FEATURE_STRIDES
from maskbench.model.ms_deform_attn import MSDeformAttn
from maskbench.model.position_encoding import PositionEmbeddingSine

#: Tokens per slice in the encoder layers (memory blocking only; every token is computed alike). Measured on
#: 2 shared CPU cores at 1024x2048 (43008 tokens): 16384 beat 2048-8192 (more, shorter parallel ops, each
#: waiting on a busy core) and unsliced layers (``[N, S, 1024]`` FFN buffers).
TOKEN_CHUNK = 16384


class Conv2dNorm(nn.Conv2d):
    """detectron2 ``Conv2d``: convolution, then ``self.norm`` and optional ReLU (keys ``w``, ``norm.*``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, padding: int = 0,
                 norm: nn.Module, relu: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.norm = norm
        self.relu = relu
        nn.init.kaiming_uniform_(self.weight, a=1)  # c2_xavier_fill

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(super().forward(x))
        return x.relu_() if self.relu else x


class MSDeformAttnTransformerEncoderLayer(nn.Module):
    """Post-norm layer: ``src = norm1(src + attn(src + pos, src))``; ``src = norm2(src + FFN(src))``."""

    def __init__(self, *, d_model: int, d_ffn: int, n_levels: int, n_heads: int, n_points: int,
                 msda_backend: str | None) -> None:
        super().__init__()
        self.self_attn = MSDeformAttn(d_model=d_model, n_levels=n_levels, n_heads=n_heads, n_points=n_points,
                                      backend=msda_backend)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, d_ffn)
        self.linear2 = nn.Linear(d_ffn, d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, src: Tensor, pos: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor) -> Tensor:
        """src, pos ``[N, S, C]``; reference_points ``[N, S, L, 2]`` -> ``[N, S, C]``.

        Only the value projection needs every token at once; the rest of the layer is per token, so it runs
        on slices of ``TOKEN_CHUNK`` tokens whose temporaries (e.g. the ``[N, chunk, d_ffn]`` FFN hidden
        layer) stay small and cache-resident instead of ``[N, S, .]`` buffers."""
        value = self.self_attn.project_value(src)
        out = torch.empty_like(src)
        for start in range(0, src.shape[1], TOKEN_CHUNK):
            sl = slice(start, start + TOKEN_CHUNK)
            x = src[:, sl]
            x = self.norm1(x + self.self_attn.attend(x + pos[:, sl], reference_points[:, sl], value, spatial_shapes,
                                                      level_start_index))
            out[:, sl] = self.norm2(x + self.linear2(self.linear1(x).relu_()))
        return out


class MSDeformAttnEncoder(nn.Module):
    """Stack of encoder layers (attribute ``layers`` as upstream)."""

    def __init__(self, *, layers: list[MSDeformAttnTransformerEncoderLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    @staticmethod
    def get_reference_points(spatial_shapes: list[tuple[int, int]], device: torch.device) -> Tensor:
        """Pixel centres of every level, normalised: ``[1, S, 1, 2]`` in (x, y) (valid ratios are 1)."""
        refs = []
        for h, w in spatial_shapes:
            ref_y, ref_x = torch.meshgrid(
                torch.linspace(0.5, h - 0.5, h, dtype=torch.float32, device=device),
                torch.linspace(0.5, w - 0.5, w, dtype=torch.float32, device=device),
                indexing="ij",
            )
            refs.append(torch.stack((ref_x.reshape(-1)[None] / w, ref_y.reshape(-1)[None] / h), -1))
        return torch.cat(refs, 1)[:, :, None]

    def forward(self, src: Tensor, pos: Tensor, spatial_shapes: list[tuple[int, int]], shapes_t: Tensor,
                level_start_index: Tensor) -> Tensor:
        ref = self.get_reference_points(spatial_shapes, src.device)
        ref = ref.expand(src.shape[0], -1, len(spatial_shapes), -1)
        for layer in self.layers:
            src = layer(src, pos, ref, shapes_t, level_start_index)
        return src


class MSDeformAttnTransformerEncoderOnly(nn.Module):
    """Flattens the levels, adds ``level_embed[l]`` to the position embedding, runs the encoder."""

    def __init__(self, *, d_model: int, n_levels: int, encoder: MSDeformAttnEncoder) -> None:
        super().__init__()
        self.level_embed = nn.Parameter(torch.empty(n_levels, d_model))
        nn.init.normal_(self.level_embed)
        self.encoder = encoder

    def forward(self, srcs: list[Tensor], pos_embeds: list[Tensor]) -> tuple[Tensor, list[tuple[int, int]]]:
        """srcs, pos_embeds: per level ``[N, C, H_l, W_l]`` -> (``[N, S, C]``, [(H_l, W_l)])."""
        shapes = [(int(s.shape[2]), int(s.shape[3])) for s in srcs]
        src_flat = torch.cat([s.flatten(2).transpose(1, 2) for s in srcs], 1)
        pos_flat = torch.cat(
            [p.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1) for lvl, p in enumerate(pos_embeds)], 1
        )
        shapes_t = torch.as_tensor(shapes, dtype=torch.long, device=src_flat.device)
        level_start_index = torch.cat((shapes_t.new_zeros((1,)), shapes_t.prod(1).cumsum(0)[:-1]))
        return self.encoder(src_flat, pos_flat, shapes, shapes_t, level_start_index), shapes


class MSDeformAttnPixelDecoder(nn.Module):
    """Backbone features -> (mask_features ``[B, mask_dim, H/4, W/4]``, multi-scale features).

    ``multi_scale_features`` has one ``[B, conv_dim, h, w]`` map per encoder level, low to high resolution
    (1/32, 1/16, 1/8 upstream; only 1/32 for RbA).
    """

    def __init__(self, *, in_channels: dict[str, int], transformer_in_features: tuple[str, ...], conv_dim: int,
                 mask_dim: int, enc_layers: int, enc_nheads: int, enc_dim_feedforward: int, n_points: int,
                 common_stride: int, msda_backend: str | None = None) -> None:
        super().__init__()
        self.transformer_in_features = tuple(transformer_in_features)
        self.in_features = sorted(in_channels, key=FEATURE_STRIDES.__getitem__)  # res2..res5
        n_levels = len(self.transformer_in_features)
        self.input_proj = nn.ModuleList()
        for name in self.transformer_in_features[::-1]:
            conv = nn.Conv2d(in_channels[name], conv_dim, kernel_size=1)
            nn.init.xavier_uniform_(conv.weight, gain=1)
            nn.init.constant_(conv.bias, 0)
            self.input_proj.append(nn.Sequential(conv, nn.GroupNorm(32, conv_dim)))
        layers = [
            MSDeformAttnTransformerEncoderLayer(d_model=conv_dim, d_ffn=enc_dim_feedforward, n_levels=n_levels,
                                                n_heads=enc_nheads, n_points=n_points, msda_backend=msda_backend)
            for _ in range(enc_layers)
        ]
        self.transformer = MSDeformAttnTransformerEncoderOnly(
            d_model=conv_dim, n_levels=n_levels, encoder=MSDeformAttnEncoder(layers=layers)
        )
        self.pe_layer = PositionEmbeddingSine(num_pos_feats=conv_dim // 2)
        self.mask_features = nn.Conv2d(conv_dim, mask_dim, kernel_size=1)
        nn.init.kaiming_uniform_(self.mask_features.weight, a=1)
        nn.init.constant_(self.mask_features.bias, 0)
        finest = FEATURE_STRIDES[self.transformer_in_features[0]]
        self.num_fpn_levels = (finest // common_stride).bit_length() - 1
        # adapter_1/layer_1 take the finest FPN input (res2); applied coarse to fine in forward.
        for idx, name in enumerate(self.in_features[: self.num_fpn_levels]):
            adapter = Conv2dNorm(in_channels[name], conv_dim, 1, norm=nn.GroupNorm(32, conv_dim))
            layer = Conv2dNorm(conv_dim, conv_dim, 3, padding=1, norm=nn.GroupNorm(32, conv_dim), relu=True)
            self.add_module(f"adapter_{idx + 1}", adapter)
            self.add_module(f"layer_{idx + 1}", layer)

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """features: ``{"res2": [B, C2, H/4, W/4], ..., "res5": [B, C5, H/32, W/32]}``."""
        with torch.autocast(device_type=next(iter(features.values())).device.type, enabled=False):
            return self._forward_fp32({k: v.float() for k, v in features.items()})

    def _forward_fp32(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        srcs, pos = [], []
        for idx, name in enumerate(self.transformer_in_features[::-1]):
            x = features[name]
            srcs.append(self.input_proj[idx](x))
            pos.append(self.pe_layer(x))
        memory, shapes = self.transformer(srcs, pos)
        b = memory.shape[0]
        # channels-last views [B, C, h, w] of the tokens (strides that resizing and convolutions take as is)
        out = [
            z.view(b, h, w, -1).permute(0, 3, 1, 2)
            for z, (h, w) in zip(memory.split([h * w for h, w in shapes], dim=1), shapes)
        ]
        for idx in range(self.num_fpn_levels, 0, -1):  # coarse to fine: adapter_3 (res4) ... adapter_1 (res2)
            lateral = getattr(self, f"adapter_{idx}")(features[self.in_features[idx - 1]])
            y = lateral + F.interpolate(out[-1], size=lateral.shape[-2:], mode="bilinear", align_corners=False)
            out.append(getattr(self, f"layer_{idx}")(y))
        return self.mask_features(out[-1]), out[: len(shapes)]
