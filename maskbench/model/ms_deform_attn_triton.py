"""Forward-only Triton kernel for multi-scale deformable attention (see :mod:`maskbench.model.ms_deform_attn`).

One program per (block of queries, head, batch item); static loops over levels and points; for each
sampling point the four bilinear corners are gathered as ``[BLOCK_Q, D]`` rows of the value tensor and
accumulated in fp32 (fp64 for fp64 input, as the CUDA kernel's ``scalar_t``), with the CUDA kernel's
rules (``h = y H - 0.5``, ``w = x W - 0.5``; the point is skipped unless ``-1 < h < H`` and ``-1 < w < W``;
an out-of-map corner contributes 0). No compile step: Triton JIT-compiles on first use. On CPU it runs
only under ``TRITON_INTERPRET=1`` (tests, tiny shapes).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from maskbench.errors import InputError


@triton.jit
def _msda_fwd_kernel(
    value_ptr, shapes_ptr, starts_ptr, loc_ptr, attn_ptr, out_ptr,
    S, LQ,
    M: tl.constexpr, D: tl.constexpr, L: tl.constexpr, P: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr, ACC: tl.constexpr,
):
    pid_q = tl.program_id(0)
    m = tl.program_id(1)
    n = tl.program_id(2)
    q = pid_q * BLOCK_Q + tl.arange(0, BLOCK_Q)
    d = tl.arange(0, BLOCK_D)
    q_ok = q < LQ
    d_ok = d < D
    acc = tl.zeros((BLOCK_Q, BLOCK_D), dtype=ACC)
    value_base = value_ptr + n * S * M * D + m * D  # value[n, s, m, :] at + s * M * D
    for lvl in tl.static_range(L):
        h_l = tl.load(shapes_ptr + 2 * lvl)
        w_l = tl.load(shapes_ptr + 2 * lvl + 1)
        start = tl.load(starts_ptr + lvl)
        h_f = h_l.to(ACC)
        w_f = w_l.to(ACC)
        for p in tl.static_range(P):
            # loc [N, Lq, M, L, P, 2], attn [N, Lq, M, L, P]
            idx = ((n * LQ + q) * M + m) * L * P + lvl * P + p
            x = tl.load(loc_ptr + 2 * idx, mask=q_ok, other=-2.0).to(ACC)
            y = tl.load(loc_ptr + 2 * idx + 1, mask=q_ok, other=-2.0).to(ACC)
            a = tl.load(attn_ptr + idx, mask=q_ok, other=0.0).to(ACC)
            h_im = y * h_f - 0.5
            w_im = x * w_f - 0.5
            inside = q_ok & (h_im > -1.0) & (w_im > -1.0) & (h_im < h_f) & (w_im < w_f)
            h_lo_f = tl.floor(h_im)
            w_lo_f = tl.floor(w_im)
            lh = h_im - h_lo_f
            lw = w_im - w_lo_f
            hh = 1.0 - lh
            hw = 1.0 - lw
            h_lo = h_lo_f.to(tl.int32)
            w_lo = w_lo_f.to(tl.int32)
            h_hi = h_lo + 1
            w_hi = w_lo + 1
            sample = tl.zeros((BLOCK_Q, BLOCK_D), dtype=ACC)
            for corner in tl.static_range(4):
                hy = h_lo if corner < 2 else h_hi
                wx = w_lo if corner % 2 == 0 else w_hi
                wy_ = hh if corner < 2 else lh
                wx_ = hw if corner % 2 == 0 else lw
                ok = inside & (hy >= 0) & (wx >= 0) & (hy < h_l) & (wx < w_l)
                s = start + hy * w_l + wx
                ptrs = value_base + s[:, None] * (M * D) + d[None, :]
                v = tl.load(ptrs, mask=ok[:, None] & d_ok[None, :], other=0.0).to(ACC)
                sample += (wy_ * wx_)[:, None] * v
            acc += a[:, None] * sample
    out_ptrs = out_ptr + ((n * LQ + q) * M + m)[:, None] * D + d[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=q_ok[:, None] & d_ok[None, :])


def ms_deform_attn_triton(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                          sampling_locations: Tensor, attention_weights: Tensor, block_q: int = 32) -> Tensor:
    """Same contract as :func:`maskbench.model.ms_deform_attn.ms_deform_attn` (returns ``[N, Lq, M*D]``)."""
    interpret = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if not value.is_cuda and not interpret:
        raise InputError(
            f"ms_deform_attn backend='triton': value is on {value.device}; the Triton kernel needs a CUDA "
            "tensor (or TRITON_INTERPRET=1 for the slow CPU interpreter). Use backend='torch-bag' on CPU."
        )
    n, s, m, d = value.shape
    _, lq, _, n_levels, n_points, _ = sampling_locations.shape
    value = value.contiguous()
    loc = sampling_locations.contiguous()
    attn = attention_weights.contiguous()
    shapes = spatial_shapes.to(device=value.device, dtype=torch.int32).contiguous()
    starts = level_start_index.to(device=value.device, dtype=torch.int32).contiguous()
    out = torch.empty((n, lq, m, d), dtype=value.dtype, device=value.device)
    grid = (triton.cdiv(lq, block_q), m, n)
    with torch.device(value.device) if not value.is_cuda else torch.cuda.device(value.device):
        _msda_fwd_kernel[grid](
            value, shapes, starts, loc, attn, out, s, lq,
            M=m, D=d, L=n_levels, P=n_points, BLOCK_Q=block_q, BLOCK_D=triton.next_power_of_2(d),
            ACC=tl.float64 if value.dtype == torch.float64 else tl.float32,
        )
    return out.view(n, lq, m * d)
