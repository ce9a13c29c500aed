"""Swin Transformer backbone in the layout of Mask2Former's ``D2SwinTransformer``
(``facebookresearch/Mask2Former`` ``mask2former/modeling/backbone/swin.py``).

Module names match upstream (``patch_embed``, ``layers.{s}.blocks.{b}.{norm1,attn,norm2,mlp}``,
``layers.{s}.downsample``, ``norm0..norm3``), so detectron2 ``.pkl``/``.pth`` weights load unchanged.
Behaviour copied from upstream (research notes ``forward.md`` §1.2), which differs from timm's Swin:

* each block pads its token grid to a multiple of the window **after** ``norm1`` (zeros) and crops back;
* the shifted-window mask is computed on the padded grid with fill ``-100.0`` (not ``-inf``), and padded
  tokens are not masked as keys;
* the shift is ``window_size // 2`` on odd blocks whatever the grid size;
* ``relative_position_index`` is a persistent buffer (it is in the checkpoints; loaders may drop it since
  it is recomputed here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskbench.errors import InputError


def relative_position_index(window_size: int) -> Tensor:
    """``[ws*ws, ws*ws]`` int64: row of ``relative_position_bias_table`` for each (query, key) pair.

    ``index = (dy + ws - 1) * (2 ws - 1) + (dx + ws - 1)`` with ``(dy, dx)`` the query-minus-key offset.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij"))
    flat = coords.flatten(1)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return rel[..., 0] * (2 * window_size - 1) + rel[..., 1]


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """``[B, H, W, C]`` -> ``[B, nW, ws*ws, C]`` (windows in row-major order)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window_size, window_size, w // window_size, window_size, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, -1, window_size * window_size, c)


def window_token_index(h: int, w: int, window_size: int, shift: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Token indices that replace upstream's pad -> roll -> partition -> reverse -> roll back -> crop copies.

    ``gather`` ``[nW*N]``: for each window slot (windows row-major, tokens row-major inside), the index of the
    token of the ``h x w`` grid it holds after zero-padding the grid to window multiples and rolling it by
    ``-shift``; ``h*w`` marks a padding slot (a zero row appended to the tokens). ``inverse`` ``[h*w]``: the
    slot of each real token, so ``windows[:, inverse]`` undoes the gather.
    """
    hp, wp = -(-h // window_size) * window_size, -(-w // window_size) * window_size
    rows = (torch.arange(hp, device=device) + shift) % hp  # torch.roll(-shift): rolled[i] = padded[(i + shift) % hp]
    cols = (torch.arange(wp, device=device) + shift) % wp
    real = (rows[:, None] < h) & (cols[None, :] < w)
    grid = torch.where(real, rows[:, None] * w + cols[None, :], h * w)
    gather = grid.view(hp // window_size, window_size, wp // window_size, window_size).permute(0, 2, 1, 3).reshape(-1)
    inverse = torch.empty(h * w + 1, dtype=torch.int64, device=device)
    inverse[gather] = torch.arange(gather.numel(), device=device)  # padding slots all land on the extra entry
    return gather, inverse[: h * w]


def shifted_window_mask(hp: int, wp: int, window_size: int, shift: int, device: torch.device) -> Tensor:
    """``[nW, N, N]`` additive mask: ``-100.0`` between tokens from different regions of the rolled grid.

    Regions are the 3x3 slices ``(0:-ws, -ws:-shift, -shift:)`` of the padded ``hp x wp`` grid (upstream
    ``BasicLayer.forward``).
    """
    img = torch.zeros(1, hp, wp, 1, device=device)
    slices = (slice(0, -window_size), slice(-window_size, -shift), slice(-shift, None))
    region = 0
    for hs in slices:
        for ws in slices:
            img[:, hs, ws, :] = region
            region += 1
    windows = window_partition(img, window_size)[0, :, :, 0]  # [nW, N]
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside each window with a learned relative position bias.

    ``softmax((q / sqrt(d)) k^T + B[index] + mask) v`` then ``proj``; ``qkv`` packs ``[q; k; v]`` rows.
    """

    def __init__(self, *, dim: int, window_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """x ``[B, nW, N, C]``, mask ``[nW, N, N]`` or None -> ``[B, nW, N, C]``."""
        b, nw, n, c = x.shape
        qkv = self.qkv(x).view(b, nw, n, 3, self.num_heads, c // self.num_heads).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.unbind(0)  # [B, nW, heads, N, d]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = torch.matmul(q * (c // self.num_heads) ** -0.5, k.transpose(-2, -1))  # [B, nW, heads, N, N]
        attn += bias.view(n, n, self.num_heads).permute(2, 0, 1)  # upstream order: + bias, then + mask
        if mask is not None:
            attn += mask[:, None]
        return self.proj(torch.matmul(attn.softmax(-1), v).transpose(2, 3).reshape(b, nw, n, c))


class Mlp(nn.Module):
    """``fc2(gelu(fc1(x)))`` (exact GELU, no dropout at inference)."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class SwinTransformerBlock(nn.Module):
    """``x + W-MSA(pad(norm1(x)))`` then ``x + MLP(norm2(x))``; odd blocks roll the grid by ``-shift``."""

    def __init__(self, *, dim: int, num_heads: int, window_size: int, shift_size: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim=dim, window_size=window_size, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio))

    def forward(self, x: Tensor, h: int, w: int, shift_mask: Tensor) -> Tensor:
        """x ``[B, H*W, C]``; shift_mask from :func:`shifted_window_mask` on the padded grid.

        Padding (after norm1), rolling and window partitioning are one gather (:func:`window_token_index`)."""
        b, _, c = x.shape
        n = self.window_size**2
        gather, inverse = window_token_index(h, w, self.window_size, self.shift_size, x.device)
        y = self.norm1(x)
        if gather.numel() > h * w:  # the grid needs padding: index h*w reads an appended zero token
            y = torch.cat((y, y.new_zeros(b, 1, c)), 1)
        windows = y[:, gather].view(b, -1, n, c)
        out = self.attn(windows, shift_mask if self.shift_size else None).view(b, -1, c)
        x = x + out[:, inverse]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat ``(x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2])`` (odd sizes
    zero-padded) -> LayerNorm(4C) -> Linear(4C -> 2C, no bias)."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, _, c = x.shape
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat((x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]), -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class BasicLayer(nn.Module):
    """One stage: ``depth`` blocks (shift ``ws // 2`` on odd ones) and an optional ``downsample``."""

    def __init__(self, *, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float,
                 downsample: bool) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim=dim, num_heads=num_heads, window_size=window_size,
                                 shift_size=0 if i % 2 == 0 else self.shift_size, mlp_ratio=mlp_ratio)
            for i in range(depth)
        )
        self.downsample = PatchMerging(dim=dim) if downsample else None

    def forward(self, x: Tensor, h: int, w: int) -> tuple[Tensor, Tensor | None]:
        """-> (stage output ``[B, H*W, C]``, downsampled input of the next stage or None)."""
        ws = self.window_size
        hp, wp = -(-h // ws) * ws, -(-w // ws) * ws
        mask = shifted_window_mask(hp, wp, ws, self.shift_size, x.device).to(x.dtype)
        for block in self.blocks:
            x = block(x, h, w, mask)
        return x, (self.downsample(x, h, w) if self.downsample is not None else None)


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` convolution (input zero-padded to a multiple of it) + LayerNorm."""

    def __init__(self, *, patch_size: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, 3, H, W]`` -> ``[B, C, H/p, W/p]``."""
        p = self.patch_size
        x = self.proj(F.pad(x, (0, (p - x.shape[3] % p) % p, 0, (p - x.shape[2] % p) % p)))
        b, c, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).view(b, c, h, w)


class SwinTransformer(nn.Module):
    """``D2SwinTransformer``: ``[B, 3, H, W]`` -> ``{"res2": stride 4, ..., "res5": stride 32}`` (NCHW).

    embed_dim, depths, num_heads, window_size: ``MODEL.SWIN.*`` (Swin-L: 192, (2, 2, 18, 2),
        (6, 12, 24, 48), 12; Swin-B: 128, (2, 2, 18, 2), (4, 8, 16, 32), 12).
    pretrain_img_size: ``MODEL.SWIN.PRETRAIN_IMG_SIZE``; upstream uses it only to size the absolute
        position embedding, which every Mask2Former config disables (``APE False``), so it is recorded
        and has no effect on the forward.
    mlp_ratio: MLP hidden width over the stage width (4 upstream). Patch size 4, ``qkv`` with bias,
        patch LayerNorm on; dropout and drop-path are inference no-ops and are not built.
    """

    def __init__(self, *, embed_dim: int = 192, depths: tuple[int, ...] = (2, 2, 18, 2),
                 num_heads: tuple[int, ...] = (6, 12, 24, 48), window_size: int = 12,
                 pretrain_img_size: int = 384, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if len(depths) != 4 or len(num_heads) != 4:
            raise InputError(f"SwinTransformer depths={depths!r}, num_heads={num_heads!r}: expected four stages")
        if window_size < 2:
            raise InputError(f"SwinTransformer window_size={window_size}: must be at least 2")
        dims = [embed_dim * 2**i for i in range(4)]
        for dim, heads in zip(dims, num_heads):
            if dim % heads:
                raise InputError(f"SwinTransformer: stage width {dim} is not divisible by {heads} heads")
        self.pretrain_img_size = pretrain_img_size
        self.patch_embed = PatchEmbed(patch_size=4, embed_dim=embed_dim)
        self.layers = nn.ModuleList(
            BasicLayer(dim=dims[i], depth=depths[i], num_heads=num_heads[i], window_size=window_size,
                       mlp_ratio=mlp_ratio, downsample=i < 3)
            for i in range(4)
        )
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))
        self.out_channels = {f"res{i + 2}": dim for i, dim in enumerate(dims)}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.patch_embed(x)
        b, _, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        out = {}
        for i, layer in enumerate(self.layers):
            stage, x = layer(x, h, w)
            stage = getattr(self, f"norm{i}")(stage)
            out[f"res{i + 2}"] = stage.view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()
            h, w = (h + 1) // 2, (w + 1) // 2
        return out
