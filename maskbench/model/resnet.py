"""ResNet-50/101 backbone in the detectron2 layout (``detectron2/modeling/backbone/resnet.py``).

Module names match detectron2 exactly (``stem.conv1``, ``stem.conv1.norm``, ``res2.0.conv1``,
``res2.0.shortcut``, ``res2.0.conv1.norm``) so model-zoo ``.pkl`` and trainer ``.pth`` weights load without
renaming. ``STRIDE_IN_1X1=False`` (the Mask2Former setting): a block's stride sits in its 3x3 ``conv2``.
Every convolution is bias-free and followed by a norm with eps 1e-5 (``BatchNorm2d``, or
``FrozenBatchNorm2d`` for ``FREEZE_AT 5`` checkpoints such as Mask2Anomaly; both compute the same function
in eval mode).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskbench.errors import InputError

BLOCKS_PER_STAGE = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters, all stored as buffers (detectron2).

    ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias``; there is no
    ``num_batches_tracked``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, fill in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((num_features,), fill))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False,
                            eps=self.eps)


def _norm(kind: str, channels: int) -> nn.Module:
    return FrozenBatchNorm2d(channels) if kind == "FrozenBN" else nn.BatchNorm2d(channels, eps=1e-5)


class Conv2dNorm(nn.Conv2d):
    """detectron2 ``Conv2d`` with a ``norm`` submodule: bias-free convolution followed by ``self.norm``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, norm: str) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.norm = _norm(norm, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``norm(conv(x))``; a BN with fixed statistics (frozen, or eval mode) is folded into the convolution:
        ``conv(x, W * s) + (beta - mean * s)`` with ``s = gamma / sqrt(var + eps)``, the same affine map with
        one pass over the output instead of two (equal up to float rounding)."""
        norm = self.norm
        if isinstance(norm, nn.BatchNorm2d) and (norm.training or norm.running_var is None):
            return norm(super().forward(x))
        scale = norm.weight * torch.rsqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        return self._conv_forward(x, self.weight * scale.view(-1, 1, 1, 1), shift)


class BasicStem(nn.Module):
    """7x7/2 convolution (pad 3) + norm + ReLU, then 3x3/2 max-pool (pad 1): stride 4."""

    def __init__(self, *, out_channels: int, norm: str) -> None:
        super().__init__()
        self.conv1 = Conv2dNorm(3, out_channels, 7, stride=2, padding=3, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(F.relu(self.conv1(x)), kernel_size=3, stride=2, padding=1)


class BottleneckBlock(nn.Module):
    """``relu(conv3(relu(conv2(relu(conv1(x))))) + shortcut(x))``; 1x1 -> 3x3 (strided) -> 1x1.

    ``shortcut`` (1x1 conv + norm, same stride) exists only when the channels or the stride change.
    """

    def __init__(self, *, in_channels: int, out_channels: int, bottleneck_channels: int, stride: int,
                 norm: str) -> None:
        super().__init__()
        if in_channels != out_channels or stride != 1:
            self.shortcut = Conv2dNorm(in_channels, out_channels, 1, stride=stride, norm=norm)
        else:
            self.shortcut = None
        self.conv1 = Conv2dNorm(in_channels, bottleneck_channels, 1, norm=norm)
        self.conv2 = Conv2dNorm(bottleneck_channels, bottleneck_channels, 3, stride=stride, padding=1, norm=norm)
        self.conv3 = Conv2dNorm(bottleneck_channels, out_channels, 1, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self.conv2(out))
        out = self.conv3(out)
        out += x if self.shortcut is None else self.shortcut(x)
        return F.relu_(out)


class ResNet(nn.Module):
    """detectron2 ResNet (``build_resnet_backbone``): ``[B, 3, H, W]`` -> ``{"res2": stride 4, ..., "res5": 32}``.

    depth: 50 (3/4/6/3 bottlenecks) or 101 (3/4/23/3).
    norm: ``"BN"`` (``nn.BatchNorm2d``) or ``"FrozenBN"`` (statistics as buffers, detectron2 ``FREEZE_AT``).
    stem_channels, res2_channels: widths of the stem and of ``res2``'s output (64 and 256 upstream); each
        later stage doubles the output width, and a bottleneck is a quarter of its stage's output width.
        Smaller values only serve fast tests.
    """

    def __init__(self, *, depth: int = 50, norm: str = "FrozenBN", stem_channels: int = 64,
                 res2_channels: int = 256) -> None:
        super().__init__()
        if depth not in BLOCKS_PER_STAGE:
            raise InputError(f"ResNet depth={depth!r}: expected one of {sorted(BLOCKS_PER_STAGE)}")
        if norm not in ("BN", "FrozenBN"):
            raise InputError(f"ResNet norm={norm!r}: expected 'BN' or 'FrozenBN'")
        if res2_channels % 4:
            raise InputError(f"ResNet res2_channels={res2_channels}: must be divisible by 4 (bottleneck ratio)")
        self.stem = BasicStem(out_channels=stem_channels, norm=norm)
        self.out_channels: dict[str, int] = {}
        in_channels = stem_channels
        for i, num_blocks in enumerate(BLOCKS_PER_STAGE[depth]):
            name, out_channels = f"res{i + 2}", res2_channels * 2**i
            blocks = []
            for b in range(num_blocks):
                blocks.append(BottleneckBlock(
                    in_channels=in_channels, out_channels=out_channels, bottleneck_channels=out_channels // 4,
                    stride=2 if b == 0 and i > 0 else 1, norm=norm,
                ))
                in_channels = out_channels
            self.add_module(name, nn.Sequential(*blocks))
            self.out_channels[name] = out_channels
        # channels-last convolutions are ~30% faster on CPU (oneDNN); copies keep this layout on load
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Computed and returned channels-last (``[B, C, H, W]`` maps with NHWC strides; the pixel decoder's
        convolutions keep that layout and flatten the maps to tokens without copies)."""
        x = self.stem(x.contiguous(memory_format=torch.channels_last))
        out = {}
        for name in self.out_channels:
            x = getattr(self, name)(x)
            out[name] = x
        return out
