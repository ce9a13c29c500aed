"""Deformable-attention backends against a literal port of the CUDA kernel's semantics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskbench.errors import InputError
from maskbench.model.ms_deform_attn import MSDA_BACKEND_ENV, MSDA_BACKENDS, MSDeformAttn, ms_deform_attn, resolve_msda_backend


@pytest.mark.parametrize("backend", ["torch", "torch-bag"])
def test_torch_backends_match_literal_kernel_fp64(backend, helpers):
    args = helpers.msda_inputs(torch.float64)
    expected = helpers.literal_msda(*args)
    got = ms_deform_attn(*args, backend=backend)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_torch_bag_small_chunks_and_fp32_match_upstream(helpers):
    args = helpers.msda_inputs(torch.float32, seed=3, lq=40, points=4)
    ref = ms_deform_attn(*args, backend="torch")
    got = ms_deform_attn(*args, backend="torch-bag")
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    chunked = MSDA_BACKENDS["torch-bag"](*args, max_entries=50)  # many query chunks, ragged last one
    assert torch.equal(chunked, got)


def test_torch_bag_is_deterministic(helpers):
    args = helpers.msda_inputs(torch.float32, seed=5)
    assert torch.equal(ms_deform_attn(*args, backend="torch-bag"), ms_deform_attn(*args, backend="torch-bag"))


TRITON_SCRIPT = """
import sys, torch
from maskbench.model.ms_deform_attn_triton import ms_deform_attn_triton
cases = torch.load(sys.argv[1])
torch.save([ms_deform_attn_triton(*args, block_q=4) for args in cases], sys.argv[2])
"""


def test_triton_kernel_in_interpreter_matches_literal(tmp_path, helpers):
    """TRITON_INTERPRET must be set before ``import triton``, hence a fresh interpreter process."""
    pytest.importorskip("triton", reason="triton is in the [dev] extra")
    # D=6 exercises the padded channel block, lq=9 with block_q=4 a ragged last query block
    cases = [helpers.msda_inputs(dtype, seed=7, lq=9, d=6) for dtype in (torch.float32, torch.float64)]
    torch.save(cases, tmp_path / "in.pt")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    subprocess.run([sys.executable, "-c", TRITON_SCRIPT, str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                   check=True, env=env, timeout=600)
    outputs = torch.load(tmp_path / "out.pt")
    for args, got, tol in zip(cases, outputs, (2e-6, 1e-12)):
        assert got.dtype == args[0].dtype
        torch.testing.assert_close(got.double(), helpers.literal_msda(*args), rtol=tol, atol=tol)


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch, helpers):
    pytest.importorskip("triton", reason="triton is in the [dev] extra")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(InputError, match="CUDA"):
        ms_deform_attn(*helpers.msda_inputs(torch.float32), backend="triton")


def test_triton_is_never_used_for_inputs_that_require_grad(monkeypatch, helpers):
    """The Triton kernel has no backward: an explicit choice is an error, the automatic one (CUDA default) falls
    back to torch-bag, whose output carries the gradient (checked against the torch reference)."""
    import maskbench.model.ms_deform_attn as msda

    monkeypatch.delenv(MSDA_BACKEND_ENV, raising=False)
    value, hw, starts, loc, attn = helpers.msda_inputs(torch.float32)
    value.requires_grad_(True)
    with pytest.raises(InputError, match="forward-only.*require grad"):
        ms_deform_attn(value, hw, starts, loc, attn, backend="triton")
    monkeypatch.setattr(msda, "resolve_msda_backend", lambda backend, device: backend or "triton")  # automatic = triton, as on CUDA
    out = ms_deform_attn(value, hw, starts, loc, attn)
    out.sum().backward()
    ref_value = value.detach().clone().requires_grad_(True)
    ms_deform_attn(ref_value, hw, starts, loc, attn, backend="torch").sum().backward()
    torch.testing.assert_close(value.grad, ref_value.grad, rtol=1e-5, atol=1e-6)


def test_backend_resolution(monkeypatch):
    monkeypatch.delenv(MSDA_BACKEND_ENV, raising=False)
    assert resolve_msda_backend(None, torch.device("cpu")) == "numba"
    monkeypatch.setenv(MSDA_BACKEND_ENV, "torch")
    assert resolve_msda_backend(None, torch.device("cpu")) == "torch"
    assert resolve_msda_backend("torch-bag", torch.device("cpu")) == "torch-bag"  # argument wins
    monkeypatch.setenv(MSDA_BACKEND_ENV, "cuda-magic")
    with pytest.raises(InputError, match=MSDA_BACKEND_ENV):
        resolve_msda_backend(None, torch.device("cpu"))
    with pytest.raises(InputError, match="backend='nope'"):
        resolve_msda_backend("nope", torch.device("cpu"))


def test_bad_shapes_are_input_errors(helpers):
    value, hw, starts, loc, attn = helpers.msda_inputs(torch.float32)
    with pytest.raises(InputError, match="do not add up"):
        ms_deform_attn(value[:, :-1], hw, starts, loc, attn, backend="torch")
    with pytest.raises(InputError, match="expected value"):
        ms_deform_attn(value[0], hw, starts, loc, attn, backend="torch")


def test_module_projections_match_literal(helpers):
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
    core = helpers.literal_msda(value, hw, starts, loc, weights)
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
