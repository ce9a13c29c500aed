"""Deformable-attention backends against a literal port of the CUDA kernel's semantics."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskbench.errors import InputError
from maskbench.model.ms_deform_attn import MSDA_BACKEND_ENV, MSDA_BACKENDS, MSDeformAttn, ms_deform_attn, resolve_msda_backend


def literal_msda(value, shapes, starts, loc, attn):
    """Per (n, q, m, l, p): h = y H - 0.5, w = x W - 0.5; skip unless -1 < h < H and -1 < w < W; bilinear
    over the 4 corners, a corner outside the map contributes 0; weight and sum (CUDA im2col kernel)."""
    n_, _, m_, d_ = value.shape
    _, lq, _, n_levels, n_points, _ = loc.shape
    out = torch.zeros(n_, lq, m_, d_, dtype=torch.float64)
    for n in range(n_):
        for q in range(lq):
            for m in range(m_):
                for lvl in range(n_levels):
                    hh_, ww_ = (int(v) for v in shapes[lvl])
                    start = int(starts[lvl])
                    for p in range(n_points):
                        x, y = (float(v) for v in loc[n, q, m, lvl, p].detach())
                        h, w = y * hh_ - 0.5, x * ww_ - 0.5
                        if not (-1 < h < hh_ and -1 < w < ww_):
                            continue
                        h0, w0 = math.floor(h), math.floor(w)
                        lh, lw = h - h0, w - w0
                        sample = torch.zeros(d_, dtype=torch.float64)
                        for yy, xx, wt in ((h0, w0, (1 - lh) * (1 - lw)), (h0, w0 + 1, (1 - lh) * lw),
                                           (h0 + 1, w0, lh * (1 - lw)), (h0 + 1, w0 + 1, lh * lw)):
                            if 0 <= yy < hh_ and 0 <= xx < ww_:
                                sample += wt * value[n, start + yy * ww_ + xx, m].double()
                        out[n, q, m] += float(attn[n, q, m, lvl, p].detach()) * sample
    return out.reshape(n_, lq, m_ * d_)


def make_inputs(dtype, seed=0, n=2, m=2, d=8, lq=11, points=3, shapes=((3, 5), (6, 10), (1, 2))):
    gen = torch.Generator().manual_seed(seed)
    hw = torch.tensor(shapes, dtype=torch.int64)
    sizes = hw[:, 0] * hw[:, 1]
    starts = torch.cat((sizes.new_zeros(1), sizes.cumsum(0)[:-1]))
    value = torch.randn(n, int(sizes.sum()), m, d, generator=gen, dtype=dtype)
    # locations in [-0.3, 1.3]: many points partly or fully outside the map
    loc = torch.rand(n, lq, m, len(shapes), points, 2, generator=gen, dtype=dtype) * 1.6 - 0.3
    # exact edge cases: far outside, on the skip boundary (h = -1, h = H) and on pixel centres
    loc[0, 0, 0, 0, 0] = torch.tensor([-5.0, 7.0], dtype=dtype)
    loc[0, 1, 0, 0, 0] = torch.tensor([0.5, -0.5 / shapes[0][0]], dtype=dtype)
    loc[0, 2, 0, 1, 1] = torch.tensor([(shapes[1][1] + 0.5) / shapes[1][1], 0.25], dtype=dtype)
    loc[1, 3, 1, 1, 2] = torch.tensor([0.5 / shapes[1][1], 1.5 / shapes[1][0]], dtype=dtype)
    attn = torch.rand(n, lq, m, len(shapes), points, generator=gen, dtype=dtype)
    return value, hw, starts, loc, attn


@pytest.mark.parametrize("backend", ["torch", "torch-bag"])
def test_torch_backends_match_literal_kernel_fp64(backend):
    args = make_inputs(torch.float64)
    expected = literal_msda(*args)
    got = ms_deform_attn(*args, backend=backend)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_torch_bag_small_chunks_and_fp32_match_upstream():
    args = make_inputs(torch.float32, seed=3, lq=40, points=4)
    ref = ms_deform_attn(*args, backend="torch")
    got = ms_deform_attn(*args, backend="torch-bag")
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    chunked = MSDA_BACKENDS["torch-bag"](*args, max_entries=50)  # many query chunks, ragged last one
    assert torch.equal(chunked, got)


def test_torch_bag_is_deterministic():
    args = make_inputs(torch.float32, seed=5)
    assert torch.equal(ms_deform_attn(*args, backend="torch-bag"), ms_deform_attn(*args, backend="torch-bag"))


TRITON_SCRIPT = """
import sys, torch
from maskbench.model.ms_deform_attn_triton import ms_deform_attn_triton
cases = torch.load(sys.argv[1])
torch.save([ms_deform_attn_triton(*args, block_q=4) for args in cases], sys.argv[2])
"""


def test_triton_kernel_in_interpreter_matches_literal(tmp_path):
    """TRITON_INTERPRET must be set before ``import triton``, hence a fresh interpreter process."""
    pytest.importorskip("triton", reason="triton is in the [dev] extra")
    # D=6 exercises the padded channel block, lq=9 with block_q=4 a ragged last query block
    cases = [make_inputs(dtype, seed=7, lq=9, d=6) for dtype in (torch.float32, torch.float64)]
    torch.save(cases, tmp_path / "in.pt")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", TRITON_SCRIPT, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                   check=True, env=env, timeout=600)
    outputs = torch.load(tmp_path / "out.pt")
    for args, got, tol in zip(cases, outputs, (2e-6, 1e-12)):
        assert got.dtype == args[0].dtype
        torch.testing.assert_close(got.double(), literal_msda(*args), rtol=tol, atol=tol)


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    pytest.importorskip("triton", reason="triton is in the [dev] extra")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(InputError, match="CUDA"):
        ms_deform_attn(*make_inputs(torch.float32), backend="triton")


def test_backend_resolution(monkeypatch):
    monkeypatch.delenv(MSDA_BACKEND_ENV, raising=False)
    assert resolve_msda_backend(None, torch.device("cpu")) == "torch-bag"
    monkeypatch.setenv(MSDA_BACKEND_ENV, "torch")
    assert resolve_msda_backend(None, torch.device("cpu")) == "torch"
    assert resolve_msda_backend("torch-bag", torch.device("cpu")) == "torch-bag"  # argument wins
    monkeypatch.setenv(MSDA_BACKEND_ENV, "cuda-magic")
    with pytest.raises(InputError, match=MSDA_BACKEND_ENV):
        resolve_msda_backend(None, torch.device("cpu"))
    with pytest.raises(InputError, match="backend='nope'"):
        resolve_msda_backend("nope", torch.device("cpu"))


def test_bad_shapes_are_input_errors():
    value, hw, starts, loc, attn = make_inputs(torch.float32)
    with pytest.raises(InputError, match="do not add up"):
        ms_deform_attn(value[:, :-1], hw, starts, loc, attn, backend="torch")
    with pytest.raises(InputError, match="expected value"):
        ms_deform_attn(value[0], hw, starts, loc, attn, backend="torch")


def test_module_projections_match_literal():
    """MSDeformAttn: offsets viewed (M, L, P, xy) and divided by (W_l, H_l); softmax over L*P jointly."""
    torch.manual_seed(0)
    c, m_, n_levels, points = 16, 2, 2, 3
    attn_mod = MSDeformAttn(d_model=c, n_levels=n_levels, n_heads=m_, n_points=points, backend="torch").double()
    with torch.no_grad():
        for p in attn_mod.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    hw = torch.tensor([[2, 3], [4, 5]])
    starts = torch.tensor([0, 6])
    s, lq = 26, 5
    src = torch.randn(1, s, c, dtype=torch.float64)
    query = torch.randn(1, lq, c, dtype=torch.float64)
    ref = torch.rand(1, lq, n_levels, 2, dtype=torch.float64)
    got = attn_mod(query, ref, src, hw, starts)

    d = c // m_
    value = (src @ attn_mod.value_proj.weight.T + attn_mod.value_proj.bias).view(1, s, m_, d)
    loc = torch.empty(1, lq, m_, n_levels, points, 2, dtype=torch.float64)
    weights = torch.empty(1, lq, m_, n_levels, points, dtype=torch.float64)
    w_off, b_off = attn_mod.sampling_offsets.weight, attn_mod.sampling_offsets.bias
    w_att, b_att = attn_mod.attention_weights.weight, attn_mod.attention_weights.bias
    for q in range(lq):
        off = query[0, q] @ w_off.T + b_off
        logits = query[0, q] @ w_att.T + b_att
        for m in range(m_):
            e = torch.exp(logits[m * n_levels * points:(m + 1) * n_levels * points])
            e = e / e.sum()
            for lvl in range(n_levels):
                for p in range(points):
                    k = ((m * n_levels + lvl) * points + p) * 2
                    loc[0, q, m, lvl, p, 0] = ref[0, q, lvl, 0] + off[k] / hw[lvl, 1]
                    loc[0, q, m, lvl, p, 1] = ref[0, q, lvl, 1] + off[k + 1] / hw[lvl, 0]
                    weights[0, q, m, lvl, p] = e[lvl * points + p]
    core = literal_msda(value, hw, starts, loc, weights)
    expected = core @ attn_mod.output_proj.weight.T + attn_mod.output_proj.bias
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_triton_kernel_compiles_for_sm90():
    """Ahead-of-time compile (fp32, the pixel decoder's dtype) to an sm_90 cubin, the H200 target of the
    CUDA box, without a GPU: catches code the interpreter accepts but the compiler rejects."""
    triton = pytest.importorskip("triton", reason="triton is in the [dev] extra")
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from maskbench.model.ms_deform_attn_triton import _msda_fwd_kernel

    ptr = "*fp32"
    signature = {"value_ptr": ptr, "shapes_ptr": "*i32", "starts_ptr": "*i32", "loc_ptr": ptr, "attn_ptr": ptr,
                 "out_ptr": ptr, "S": "i32", "LQ": "i32"}
    consts = {"M": 8, "D": 32, "L": 3, "P": 4, "BLOCK_Q": 32, "BLOCK_D": 32, "ACC": tl.float32}
    signature.update({name: "constexpr" for name in consts})
    names = list(signature)
    source = ASTSource(fn=_msda_fwd_kernel, signature=signature,
                       constexprs={(names.index(k),): v for k, v in consts.items()})
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32))
    assert compiled.asm["cubin"]
