"""CPU deformable-attention core as a numba port of the CUDA im2col and col2im kernels (float32).

Port of ``ms_deformable_im2col_gpu_kernel`` / ``ms_deform_attn_im2col_bilinear`` (Mask2Former
``ops/src/cuda/ms_deform_im2col_cuda.cuh``): for every (batch, query, head) and channel,

    h = y H_l - 0.5,  w = x W_l - 0.5;  skip the point unless -1 < h < H_l and -1 < w < W_l
    val = w1 v(h0, w0) + w2 v(h0, w0+1) + w3 v(h0+1, w0) + w4 v(h0+1, w0+1)   (a corner outside the map is 0)
    out += A * val                                                          (levels, then points)

with the kernel's float32 arithmetic. One parallel iteration per (batch, query) writes only its own
output row and sums in the fixed order above, so the result is bit-identical run to run and for any
thread count.

The backward pass ports ``ms_deform_attn_col2im_bilinear``: for every point and channel, with
``g = dL/dout[c] * A``,

    dL/dA      += dL/dout[c] * val
    dL/dv(corner) += g * w_corner                                   (corners inside the map)
    dL/dx      += W * g * (-hh v1 + hh v2 - lh v3 + lh v4),   dL/dy += H * g * (-hw v1 - lw v2 + hw v3 + lw v4)

where the CUDA kernel scatters into ``dL/dv`` with atomics; here one parallel iteration per (batch, head) owns
that head's value rows and visits queries, levels and points in a fixed order, so the gradients too are
bit-identical run to run and for any thread count.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange
from torch import Tensor
from torch.autograd.function import once_differentiable

from maskbench.errors import InputError

_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@njit(cache=True, fastmath=False)
def _corners(x, y, height, width, start):  # pragma: no cover - compiled
    """Bilinear corners of the normalised point (``x``, ``y``) on a ``height`` x ``width`` level whose rows
    start at ``start``: ``(inside, hh, hw, lh, lw, rows, oks)`` with the corner rows (clamped into the map) and
    whether each corner lies in the map, in the order (low, low), (low, high), (high, low), (high, high).
    ``inside`` is False for points the CUDA kernel skips (outside ``(-1, H) x (-1, W)``)."""
    h_f = np.float32(height)
    w_f = np.float32(width)
    h_im = y * h_f - _HALF
    w_im = x * w_f - _HALF
    inside = h_im > -_ONE and w_im > -_ONE and h_im < h_f and w_im < w_f
    h_low_f = np.floor(h_im)
    w_low_f = np.floor(w_im)
    h_low = np.int64(h_low_f) if inside else np.int64(0)
    w_low = np.int64(w_low_f) if inside else np.int64(0)
    lh = h_im - h_low_f
    lw = w_im - w_low_f
    # an out-of-map corner reads a valid (clamped) row; its value is masked to 0 by the caller
    oks = (h_low >= 0 and w_low >= 0, h_low >= 0 and w_low + 1 <= width - 1,
           h_low + 1 <= height - 1 and w_low >= 0, h_low + 1 <= height - 1 and w_low + 1 <= width - 1)
    r_low = start + max(h_low, 0) * width
    r_high = start + min(h_low + 1, height - 1) * width
    c_low = max(w_low, 0)
    c_high = min(w_low + 1, width - 1)
    rows = (r_low + c_low, r_low + c_high, r_high + c_low, r_high + c_high)
    return inside, _ONE - lh, _ONE - lw, lh, lw, rows, oks


@njit(parallel=True, cache=True, fastmath=False)
def _msda_kernel(value, shapes, starts, loc, attn, out):  # pragma: no cover - compiled
    """value ``[N, S, M, D]``, shapes/starts int64, loc ``[N, Lq, M, L, P, 2]``, attn ``[N, Lq, M, L, P]``,
    out ``[N, Lq, M, D]`` zero-filled (float32 everywhere)."""
    n_batch, _, n_heads, depth = value.shape
    n_queries, n_levels, n_points = loc.shape[1], loc.shape[3], loc.shape[4]
    for bq in prange(n_batch * n_queries):
        b = bq // n_queries
        q = bq - b * n_queries
        for m in range(n_heads):
            acc = out[b, q, m]
            for lvl in range(n_levels):
                for p in range(n_points):
                    inside, hh, hw, lh, lw, rows, oks = _corners(
                        loc[b, q, m, lvl, p, 0], loc[b, q, m, lvl, p, 1], shapes[lvl, 0], shapes[lvl, 1], starts[lvl])
                    if not inside:
                        continue
                    a = attn[b, q, m, lvl, p]
                    w1 = hh * hw
                    w2 = hh * lw
                    w3 = lh * hw
                    w4 = lh * lw
                    v1 = value[b, rows[0], m]
                    v2 = value[b, rows[1], m]
                    v3 = value[b, rows[2], m]
                    v4 = value[b, rows[3], m]
                    for c in range(depth):
                        x1 = v1[c] if oks[0] else _ZERO
                        x2 = v2[c] if oks[1] else _ZERO
                        x3 = v3[c] if oks[2] else _ZERO
                        x4 = v4[c] if oks[3] else _ZERO
                        acc[c] += (w1 * x1 + w2 * x2 + w3 * x3 + w4 * x4) * a


@njit(parallel=True, cache=True, fastmath=False)
def _msda_backward_kernel(value, shapes, starts, loc, attn, grad_out, grad_value, grad_loc, grad_attn):  # pragma: no cover
    """Gradients of :func:`_msda_kernel` for ``grad_out`` ``[N, Lq, M, D]``: ``grad_value`` (zero-filled, like
    ``value``), ``grad_loc`` and ``grad_attn`` (zero-filled, like ``loc`` and ``attn``), all float32."""
    n_batch, _, n_heads, depth = value.shape
    n_queries, n_levels, n_points = loc.shape[1], loc.shape[3], loc.shape[4]
    for bm in prange(n_batch * n_heads):
        b = bm // n_heads
        m = bm - b * n_heads
        for q in range(n_queries):
            top = grad_out[b, q, m]
            for lvl in range(n_levels):
                for p in range(n_points):
                    inside, hh, hw, lh, lw, rows, oks = _corners(
                        loc[b, q, m, lvl, p, 0], loc[b, q, m, lvl, p, 1], shapes[lvl, 0], shapes[lvl, 1], starts[lvl])
                    if not inside:
                        continue
                    a = attn[b, q, m, lvl, p]
                    w1 = hh * hw
                    w2 = hh * lw
                    w3 = lh * hw
                    w4 = lh * lw
                    g_attn = _ZERO
                    g_x = _ZERO
                    g_y = _ZERO
                    for c in range(depth):
                        x1 = value[b, rows[0], m, c] if oks[0] else _ZERO
                        x2 = value[b, rows[1], m, c] if oks[1] else _ZERO
                        x3 = value[b, rows[2], m, c] if oks[2] else _ZERO
                        x4 = value[b, rows[3], m, c] if oks[3] else _ZERO
                        g = top[c] * a
                        g_attn += top[c] * (w1 * x1 + w2 * x2 + w3 * x3 + w4 * x4)
                        g_x += g * (hh * (x2 - x1) + lh * (x4 - x3))
                        g_y += g * (hw * (x3 - x1) + lw * (x4 - x2))
                        if oks[0]:
                            grad_value[b, rows[0], m, c] += w1 * g
                        if oks[1]:
                            grad_value[b, rows[1], m, c] += w2 * g
                        if oks[2]:
                            grad_value[b, rows[2], m, c] += w3 * g
                        if oks[3]:
                            grad_value[b, rows[3], m, c] += w4 * g
                    grad_attn[b, q, m, lvl, p] = g_attn
                    grad_loc[b, q, m, lvl, p, 0] = np.float32(shapes[lvl, 1]) * g_x
                    grad_loc[b, q, m, lvl, p, 1] = np.float32(shapes[lvl, 0]) * g_y


def numba_unsupported(value: Tensor, loc: Tensor, attn: Tensor) -> str | None:
    """Why the numba backend cannot take these tensors (None when it can)."""
    tensors = (value, loc, attn)
    if any(t.device.type != "cpu" for t in tensors):
        return "tensors are not on the CPU"
    if any(t.dtype != torch.float32 for t in tensors):
        return f"dtypes {[str(t.dtype) for t in tensors]} are not all float32"
    return None


class _NumbaThreads:
    """Run numba kernels on ``torch.get_num_threads()`` threads (capped at numba's pool) and give torch its thread
    count back: numba's OpenMP layer shares the runtime with torch and resets the count on launch."""

    def __enter__(self):
        self.torch_threads = torch.get_num_threads()
        numba.set_num_threads(max(1, min(self.torch_threads, numba.config.NUMBA_NUM_THREADS)))

    def __exit__(self, *exc):
        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)


class _MSDeformAttnNumba(torch.autograd.Function):
    """Forward :func:`_msda_kernel`, backward :func:`_msda_backward_kernel` (gradients for value, loc, attn)."""

    @staticmethod
    def forward(ctx, value, spatial_shapes, level_start_index, loc, attn):
        value, loc, attn = (t.detach().contiguous() for t in (value, loc, attn))
        shapes = spatial_shapes.detach().to("cpu", torch.int64).contiguous().numpy()
        starts = level_start_index.detach().to("cpu", torch.int64).contiguous().numpy()
        n, _, m, d = value.shape
        out = np.zeros((n, loc.shape[1], m, d), dtype=np.float32)
        with _NumbaThreads():
            _msda_kernel(value.numpy(), shapes, starts, loc.numpy(), attn.numpy(), out)
        ctx.save_for_backward(value, loc, attn)
        ctx.levels = (shapes, starts)
        return torch.from_numpy(out).view(n, loc.shape[1], m * d)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        value, loc, attn = (t.numpy() for t in ctx.saved_tensors)
        grads = (np.zeros_like(value), np.zeros_like(loc), np.zeros_like(attn))
        top = grad_out.to(torch.float32).contiguous().numpy().reshape(value.shape[0], loc.shape[1], *value.shape[2:])
        with _NumbaThreads():
            _msda_backward_kernel(value, *ctx.levels, loc, attn, top, *grads)
        grad_value, grad_loc, grad_attn = (torch.from_numpy(g) for g in grads)
        return grad_value, None, None, grad_loc, grad_attn


def ms_deform_attn_numba(value: Tensor, spatial_shapes: Tensor, level_start_index: Tensor, loc: Tensor,
                         attn: Tensor) -> Tensor:
    """``[N, S, M, D]`` value etc. (see :func:`maskbench.model.ms_deform_attn.ms_deform_attn`) -> ``[N, Lq, M*D]``.

    Differentiable in ``value``, ``loc`` and ``attn``. Runs on ``torch.get_num_threads()`` numba threads
    (capped at numba's pool size) and leaves torch's thread count as it found it."""
    reason = numba_unsupported(value, loc, attn)
    if reason is not None:
        raise InputError(f"ms_deform_attn backend='numba': {reason}; use backend='torch-bag' or 'torch'")
    return _MSDeformAttnNumba.apply(value, spatial_shapes, level_start_index, loc, attn)
