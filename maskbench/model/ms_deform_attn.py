"""Multi-scale deformable attention (Deformable DETR, Zhu et al. 2021, Eq. 3) with swappable backends.

``ms_deform_attn`` is the core op of ``MSDeformAttnFunction`` / ``ms_deform_attn_core_pytorch`` in
``facebookresearch/Mask2Former`` ``mask2former/modeling/pixel_decoder/ops``: for every query q, head m

    out[q, m] = sum_{l, p} A[q, m, l, p] * bilinear(V_l[m], loc[q, m, l, p] * (W_l, H_l) - 0.5)

with zero padding outside the map (``grid_sample(bilinear, zeros, align_corners=False)`` on
``grid = 2 loc - 1``, identical to the CUDA kernel's corner rule). Backends:

- ``"torch"``: the upstream reference, ``grid_sample`` per level then ``stack`` over levels (bit-for-bit
  the upstream summation order; materialises two ``[N*M, D, Lq, L*P]`` temporaries).
- ``"torch-levels"``: ``grid_sample`` per level and point, accumulated into one ``[N*M, D, Lq]`` buffer
  (same function, different summation order; much less memory and faster on CPU).
- ``"triton"``: forward-only Triton kernel (:mod:`maskbench.model.ms_deform_attn_triton`), CUDA tensors
  (or CPU tensors under ``TRITON_INTERPRET=1``).

Choice: the ``backend`` argument, else ``$MASKBENCH_MSDA_BACKEND``, else ``"triton"`` for CUDA tensors
when triton imports and ``"torch-levels"`` otherwise (:func:`resolve_msda_backend`).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskbench.errors import InputError

MSDA_BACKEND_ENV = "MASKBENCH_MSDA_BACKEND"


def _core_torch(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, loc: Tensor, attn: Tensor) -> Tensor:
    """Upstream ``ms_deform_attn_core_pytorch``: per-level grid_sample, ``stack`` over levels, weighted sum."""
    n, _, m, d = value.shape
    _, lq, _, n_levels, n_points, _ = loc.shape
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    value_list = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * loc - 1
    sampled = []
    for lvl, (h, w) in enumerate(shapes):
        # [N, HW, M, D] -> [N*M, D, H, W]; grid [N, Lq, M, P, 2] -> [N*M, Lq, P, 2]
        value_l = value_list[lvl].flatten(2).transpose(1, 2).reshape(n * m, d, h, w)
        grid_l = grids[:, :, :, lvl].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(value_l, grid_l, mode="bilinear", padding_mode="zeros", align_corners=False))
    weights = attn.transpose(1, 2).reshape(n * m, 1, lq, n_levels * n_points)
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1).view(n, m * d, lq)
    return out.transpose(1, 2).contiguous()


def _core_torch_levels(
    value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, loc: Tensor, attn: Tensor
) -> Tensor:
    """Same op, one ``grid_sample`` per (level, point) accumulated in place: peak extra memory is one
    ``[N*M, D, Lq]`` sample instead of two ``[N*M, D, Lq, L*P]`` stacks."""
    n, _, m, d = value.shape
    _, lq, _, n_levels, n_points, _ = loc.shape
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    value_list = value.split([h * w for h, w in shapes], dim=1)
    # [N, Lq, M, L, P, 2] -> [L, P, N*M, Lq, 1, 2]; weights [N, Lq, M, L, P] -> [L, P, N*M, 1, Lq]
    grids = (2 * loc - 1).permute(3, 4, 0, 2, 1, 5).reshape(n_levels, n_points, n * m, lq, 1, 2)
    weights = attn.permute(3, 4, 0, 2, 1).reshape(n_levels, n_points, n * m, 1, lq)
    out = value.new_zeros(n * m, d, lq)
    for lvl, (h, w) in enumerate(shapes):
        value_l = value_list[lvl].flatten(2).transpose(1, 2).reshape(n * m, d, h, w)
        for p in range(n_points):
            sample = F.grid_sample(value_l, grids[lvl, p], mode="bilinear", padding_mode="zeros", align_corners=False)
            out.addcmul_(sample.squeeze(-1), weights[lvl, p])
    return out.view(n, m * d, lq).transpose(1, 2).contiguous()


def _core_triton(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, loc: Tensor, attn: Tensor) -> Tensor:
    from maskbench.model.ms_deform_attn_triton import ms_deform_attn_triton

    return ms_deform_attn_triton(value, spatial_shapes, level_start_index, loc, attn)


MSDA_BACKENDS: dict[str, Callable[..., Tensor]] = {
    "torch": _core_torch,
    "torch-levels": _core_torch_levels,
    "triton": _core_triton,
}


def triton_available() -> bool:
    """True when the ``triton`` package can be imported (no import side effects)."""
    return importlib.util.find_spec("triton") is not None


def resolve_msda_backend(backend: str | None, device: torch.device) -> str:
    """Backend name actually used: ``backend``, else ``$MASKBENCH_MSDA_BACKEND``, else automatic
    (``"triton"`` on CUDA when importable, otherwise ``"torch-levels"``)."""
    name = backend if backend is not None else (os.environ.get(MSDA_BACKEND_ENV) or None)
    if name is None:
        return "triton" if device.type == "cuda" and triton_available() else "torch-levels"
    if name not in MSDA_BACKENDS:
        source = "backend" if backend is not None else f"${MSDA_BACKEND_ENV}"
        raise InputError(f"{source}={name!r}: unknown deformable-attention backend, expected one of {sorted(MSDA_BACKENDS)}")
    return name


def ms_deform_attn(
    value: Tensor,
    spatial_shapes: Tensor,
    level_start_index: Tensor,
    sampling_locations: Tensor,
    attention_weights: Tensor,
    backend: str | None = None,
) -> Tensor:
    """Multi-scale deformable attention core (no projections).

    Args:
        value: ``[N, S, M, D]``, levels concatenated along S (S = sum H_l W_l).
        spatial_shapes: int64 ``[L, 2]`` rows ``(H_l, W_l)``.
        level_start_index: int64 ``[L]`` offsets of each level in S.
        sampling_locations: ``[N, Lq, M, L, P, 2]`` normalised ``(x, y)`` in [0, 1] (may fall outside).
        attention_weights: ``[N, Lq, M, L, P]``.
        backend: see module docstring; None = automatic.
    Returns:
        ``[N, Lq, M*D]``.
    """
    if value.dim() != 4 or sampling_locations.dim() != 6 or attention_weights.dim() != 5:
        raise InputError(
            "ms_deform_attn: expected value [N,S,M,D], sampling_locations [N,Lq,M,L,P,2], attention_weights "
            f"[N,Lq,M,L,P]; got {tuple(value.shape)}, {tuple(sampling_locations.shape)}, {tuple(attention_weights.shape)}"
        )
    hw = spatial_shapes.to(torch.int64)
    if int((hw[:, 0] * hw[:, 1]).sum()) != value.shape[1]:
        raise InputError(f"ms_deform_attn: spatial_shapes {hw.tolist()} do not add up to value length {value.shape[1]}")
    name = resolve_msda_backend(backend, value.device)
    return MSDA_BACKENDS[name](value, spatial_shapes, level_start_index, sampling_locations, attention_weights)


class MSDeformAttn(nn.Module):
    """Deformable attention module (upstream ``ops/modules/ms_deform_attn.py``, same parameter names).

    ``sampling_offsets`` is ``Linear(C, M*L*P*2)`` viewed as ``[N, Lq, M, L, P, 2]`` in (x, y) pixels of
    each level; ``attention_weights`` is ``Linear(C, M*L*P)``, softmax over L*P jointly.
    """

    def __init__(self, *, d_model: int = 256, n_levels: int = 3, n_heads: int = 8, n_points: int = 4,
                 backend: str | None = None) -> None:
        super().__init__()
        if d_model % n_heads:
            raise InputError(f"MSDeformAttn: d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model, self.n_levels, self.n_heads, self.n_points = d_model, n_levels, n_heads, n_points
        self.backend = backend
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Upstream init: zero offset weights, offset bias on a ring of directions, xavier projections."""
        nn.init.constant_(self.sampling_offsets.weight, 0.0)
        thetas = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.n_heads, 1, 1, 2)
        grid = grid.repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.constant_(self.attention_weights.weight, 0.0)
        nn.init.constant_(self.attention_weights.bias, 0.0)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.constant_(lin.bias, 0.0)

    def forward(self, query: Tensor, reference_points: Tensor, input_flatten: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor) -> Tensor:
        """query ``[N, Lq, C]``, reference_points ``[N, Lq, L, 2]`` normalised (x, y), input_flatten
        ``[N, S, C]`` -> ``[N, Lq, C]``."""
        n, lq, _ = query.shape
        s = input_flatten.shape[1]
        m, lv, p = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(input_flatten).view(n, s, m, self.d_model // m)
        offsets = self.sampling_offsets(query).view(n, lq, m, lv, p, 2)
        weights = F.softmax(self.attention_weights(query).view(n, lq, m, lv * p), -1).view(n, lq, m, lv, p)
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
        loc = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        out = ms_deform_attn(value, spatial_shapes, level_start_index, loc, weights, backend=self.backend)
        return self.output_proj(out)
