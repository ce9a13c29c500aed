"""Multi-scale deformable attention (Deformable DETR, Zhu et al. 2021, Eq. 3) with swappable backends.

``ms_deform_attn`` is the core op of ``MSDeformAttnFunction`` / ``ms_deform_attn_core_pytorch`` in
``facebookresearch/Mask2Former`` ``mask2former/modeling/pixel_decoder/ops``: for every query q, head m

    out[q, m] = sum_{l, p} A[q, m, l, p] * bilinear(V_l[m], loc[q, m, l, p] * (W_l, H_l) - 0.5)

with zero padding outside the map (``grid_sample(bilinear, zeros, align_corners=False)`` on
``grid = 2 loc - 1``, identical to the CUDA kernel's corner rule). Backends:

- ``"torch"``: the upstream reference, ``grid_sample`` per level then ``stack`` over levels (bit-for-bit
  the upstream summation order; materialises two ``[N*M, D, Lq, L*P]`` temporaries).
- ``"torch-bag"``: the bilinear corners of all points as one ``F.embedding_bag`` weighted sum per
  (query, head), chunked over queries (same function, CUDA-kernel coordinate arithmetic; about 2-3x
  faster than ``"torch"`` on CPU with about a third of its peak memory, see ``benchmarks/bench_msda.py``).
- ``"numba"``: float32 CPU port of the CUDA kernels (:mod:`maskbench.model.ms_deform_attn_numba`), forward
  parallel over (batch, query), backward over (batch, head), bit-identical for any thread count; about 3x
  faster than ``"torch-bag"`` at R50 Cityscapes shapes on 2 threads (``benchmarks/bench_msda.py``).
- ``"triton"``: forward-only Triton kernel (:mod:`maskbench.model.ms_deform_attn_triton`), CUDA tensors
  (or CPU tensors under ``TRITON_INTERPRET=1``).

Choice: the ``backend`` argument, else ``$MASKBENCH_MSDA_BACKEND``, else ``"triton"`` for CUDA tensors
when triton imports and ``"numba"`` otherwise (:func:`resolve_msda_backend`). The automatic ``"numba"``
choice falls back to ``"torch-bag"`` for inputs it cannot take (not float32), the automatic ``"triton"`` for
inputs that require grad (it has no backward); an explicit choice with such inputs is an
:class:`~maskbench.errors.InputError`.
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
from maskbench.model.ms_deform_attn_numba import ms_deform_attn_numba, numba_unsupported

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


def _axis_corners(coord: Tensor, size: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pixel coordinate -> (low index, high index) clamped into the map and their bilinear weights, zeroed
    where the corner falls outside ``[0, size)``. A point outside ``(-1, size)`` thus gets weight 0, the
    CUDA kernel's skip rule (at exactly -1 the only in-map corner has weight 0)."""
    low = coord.floor()
    frac = coord - low
    low = low.to(torch.int32)
    high = low + 1
    w_low = (1 - frac) * ((low >= 0) & (low < size))
    w_high = frac * ((high >= 0) & (high < size))
    last = size - 1
    return torch.minimum(low.clamp_(min=0), last), torch.minimum(high.clamp_(min=0), last), w_low, w_high


def _core_embedding_bag(
    value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, loc: Tensor, attn: Tensor,
    max_entries: int = 1 << 24,
) -> Tensor:
    """Same op as one fused gather-and-weighted-sum: every (query, head) is a bag of L*P*4 value rows
    (the bilinear corners) with weights ``A * corner weight``, reduced by ``F.embedding_bag(mode="sum")``.
    Coordinates follow the CUDA kernel (``x W - 0.5``). Queries are processed in chunks of at most
    ``max_entries`` corners (int32 indices, 12 bytes per corner)."""
    n, s, m, d = value.shape
    _, lq, _, n_levels, n_points, _ = loc.shape
    if n * m * s >= 2**31:
        raise InputError(f"ms_deform_attn backend='torch-bag': value has {n * m * s} rows, more than int32 indexes")
    table = value.permute(0, 2, 1, 3).reshape(n * m * s, d)  # row (n, m, s)
    dev = loc.device
    h_i = spatial_shapes[:, 0].to(dev, torch.int32).view(n_levels, 1)
    w_i = spatial_shapes[:, 1].to(dev, torch.int32).view(n_levels, 1)
    heads = torch.arange(m, device=dev, dtype=torch.int32).view(1, 1, m, 1, 1)
    batch = torch.arange(n, device=dev, dtype=torch.int32).view(n, 1, 1, 1, 1)
    base = (batch * m + heads) * s + level_start_index.to(dev, torch.int32).view(1, 1, 1, n_levels, 1)
    out = value.new_empty(n, lq, m, d)
    chunk = max(1, max_entries // max(1, n * m * n_levels * n_points * 4))
    for q0 in range(0, lq, chunk):
        sl = slice(q0, q0 + chunk)
        loc_x, loc_y = loc[:, sl].unbind(-1)  # [N, q, M, L, P]
        x_lo, x_hi, wx_lo, wx_hi = _axis_corners(loc_x * w_i.to(loc.dtype) - 0.5, w_i)
        y_lo, y_hi, wy_lo, wy_hi = _axis_corners(loc_y * h_i.to(loc.dtype) - 0.5, h_i)
        a = attn[:, sl]
        rows = [base + y * w_i for y in (y_lo, y_hi)]
        wys = [a * wy_lo, a * wy_hi]
        indices = torch.stack([r + x for r in rows for x in (x_lo, x_hi)], -1)
        weights = torch.stack([wy * wx for wy in wys for wx in (wx_lo, wx_hi)], -1)
        bags = loc_x.shape[0] * loc_x.shape[1] * m
        out[:, sl] = F.embedding_bag(
            indices.view(bags, -1), table, per_sample_weights=weights.view(bags, -1), mode="sum"
        ).view(n, -1, m, d)
    return out.view(n, lq, m * d)


def _core_numba(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, loc: Tensor, attn: Tensor) -> Tensor:
    return ms_deform_attn_numba(value, spatial_shapes, level_start_index, loc, attn)


def _core_triton(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, loc: Tensor, attn: Tensor) -> Tensor:
    from maskbench.model.ms_deform_attn_triton import ms_deform_attn_triton

    return ms_deform_attn_triton(value, spatial_shapes, level_start_index, loc, attn)


MSDA_BACKENDS: dict[str, Callable[..., Tensor]] = {
    "torch": _core_torch,
    "torch-bag": _core_embedding_bag,
    "numba": _core_numba,
    "triton": _core_triton,
}


def triton_available() -> bool:
    """True when the ``triton`` package can be imported (no import side effects)."""
    return importlib.util.find_spec("triton") is not None


def resolve_msda_backend(backend: str | None, device: torch.device) -> str:
    """Backend name actually used: ``backend``, else ``$MASKBENCH_MSDA_BACKEND``, else automatic
    (``"triton"`` on CUDA when importable, otherwise ``"numba"``)."""
    name = backend if backend is not None else (os.environ.get(MSDA_BACKEND_ENV) or None)
    if name is None:
        if device.type == "cuda":
            return "triton" if triton_available() else "torch-bag"
        return "numba"
    if name not in MSDA_BACKENDS:
        source = "backend" if backend is not None else f"${MSDA_BACKEND_ENV}"
        raise InputError(
            f"{source}={name!r}: unknown deformable-attention backend, expected one of {sorted(MSDA_BACKENDS)}"
        )
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
            f"[N,Lq,M,L,P]; got {tuple(value.shape)}, {tuple(sampling_locations.shape)}, "
            f"{tuple(attention_weights.shape)}"
        )
    hw = spatial_shapes.to(torch.int64)
    if int((hw[:, 0] * hw[:, 1]).sum()) != value.shape[1]:
        raise InputError(f"ms_deform_attn: spatial_shapes {hw.tolist()} do not add up to value length {value.shape[1]}")
    name = resolve_msda_backend(backend, value.device)
    automatic = backend is None and not os.environ.get(MSDA_BACKEND_ENV)
    if name == "triton" and torch.is_grad_enabled() and any(
            t.requires_grad for t in (value, sampling_locations, attention_weights)):
        if not automatic:  # the Triton kernel has no backward: its output would carry no gradient
            raise InputError("ms_deform_attn backend='triton' is forward-only and the inputs require grad; "
                             "use backend='torch-bag' or 'torch' to train")
        name = "torch-bag"
    if name == "numba" and automatic:
        if numba_unsupported(value, sampling_locations, attention_weights) is not None:
            name = "torch-bag"  # automatic choice only; an explicit "numba" raises on such input
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
        value = self.project_value(input_flatten)
        return self.attend(query, reference_points, value, spatial_shapes, level_start_index)

    def project_value(self, input_flatten: Tensor) -> Tensor:
        """``value_proj(input_flatten)`` ``[N, S, C]`` viewed per head ``[N, S, M, C/M]``."""
        n, s, _ = input_flatten.shape
        return self.value_proj(input_flatten).view(n, s, self.n_heads, self.d_model // self.n_heads)

    def attend(self, query: Tensor, reference_points: Tensor, value: Tensor, spatial_shapes: Tensor,
               level_start_index: Tensor) -> Tensor:
        """The attention of queries ``[N, Lq, C]`` over a projected ``value`` ``[N, S, M, C/M]``: queries are
        independent, so callers may run it on any slice of the queries."""
        n, lq, _ = query.shape
        m, lv, p = self.n_heads, self.n_levels, self.n_points
        # sampling_offsets and attention_weights in one matmul (their rows concatenated)
        n_off = self.sampling_offsets.out_features
        proj = F.linear(query, torch.cat((self.sampling_offsets.weight, self.attention_weights.weight)),
                        torch.cat((self.sampling_offsets.bias, self.attention_weights.bias)))
        offsets = proj[..., :n_off].view(n, lq, m, lv, p, 2)
        weights = F.softmax(proj[..., n_off:].view(n, lq, m, lv * p), -1).view(n, lq, m, lv, p)
        normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
        loc = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        out = ms_deform_attn(value, spatial_shapes, level_start_index, loc, weights, backend=self.backend)
        return self.output_proj(out)
