"""numba deformable-attention backend against the literal fp64 port of the CUDA kernel (conftest.literal_msda)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskbench.errors import InputError
from maskbench.model.ms_deform_attn import MSDA_BACKEND_ENV, ms_deform_attn


def assert_matches_literal(helpers, args):
    got = ms_deform_attn(*args, backend="numba")
    expected = helpers.literal_msda(*(t.double() if t.is_floating_point() else t for t in args))
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shapes", [((3, 5), (6, 10), (1, 2)), ((7, 3),), ((1, 1), (5, 9), (2, 11))])
def test_numba_matches_literal_kernel(helpers, shapes):
    """1 and 3 levels, odd and 1-pixel maps, points outside, on the skip boundary and on pixel centres."""
    args = helpers.msda_inputs(torch.float32, seed=11, shapes=shapes, d=5, lq=13)
    assert_matches_literal(helpers, args)


def test_numba_exact_edges(helpers):
    """Points exactly on the map border and on the skip boundary h = -1 / h = H (x likewise)."""
    value, hw, starts, loc, attn = helpers.msda_inputs(torch.float32, seed=2, n=1, m=1, lq=8, points=1,
                                                       shapes=((4, 8),))
    h, w = 4, 8
    edges = [(0.0, 0.0), (1.0, 1.0), (-0.5 / w, 0.5), (0.5, -0.5 / h), ((w + 0.5) / w, 0.5),
             (0.5, (h + 0.5) / h), (0.5 / w, 0.5 / h), ((w - 0.5) / w, (h - 0.5) / h)]
    for q, xy in enumerate(edges):
        loc[0, q, 0, 0, 0] = torch.tensor(xy)
    assert_matches_literal(helpers, (value, hw, starts, loc, attn))
    out = ms_deform_attn(value, hw, starts, loc, attn, backend="numba")
    assert torch.equal(out[0, 2:6], torch.zeros_like(out[0, 2:6]))  # on the skip boundary: no contribution
    # exactly on a pixel centre the sample is that pixel's value
    torch.testing.assert_close(out[0, 6], attn[0, 6, 0, 0, 0] * value[0, 0, 0], rtol=0, atol=1e-7)
    torch.testing.assert_close(out[0, 7], attn[0, 7, 0, 0, 0] * value[0, h * w - 1, 0], rtol=0, atol=1e-7)


def test_numba_matches_torch_bag_larger(helpers):
    args = helpers.msda_inputs(torch.float32, seed=4, n=2, m=4, d=32, lq=300, points=4,
                               shapes=((16, 24), (8, 12), (4, 6)))
    ref = ms_deform_attn(*args, backend="torch")
    torch.testing.assert_close(ms_deform_attn(*args, backend="numba"), ref, rtol=1e-5, atol=1e-5)


THREADS_SCRIPT = """
import sys, torch
from maskbench.model.ms_deform_attn import ms_deform_attn
torch.set_num_threads(int(sys.argv[3]))
args = torch.load(sys.argv[1])
torch.save([ms_deform_attn(*args, backend="numba") for _ in range(2)], sys.argv[2])
assert torch.get_num_threads() == int(sys.argv[3]), "the numba call changed torch's thread count"
"""


def _run_with_threads(script, args, tmp_path, threads):
    """Run ``script`` (argv: input file, output file, torch threads) on ``args`` in a fresh interpreter."""
    torch.save(args, tmp_path / "in.pt")
    out = tmp_path / f"out{threads}.pt"
    root = str(Path(__file__).resolve().parents[2])
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "in.pt"), str(out), str(threads)], check=True,
                   cwd=root, env={**os.environ, "NUMBA_NUM_THREADS": "2", "PYTHONPATH": root}, timeout=300)
    return torch.load(out)


def test_numba_bit_identical_across_runs_and_thread_counts(helpers, tmp_path):
    """Each output row is summed in a fixed order by one thread: 1 and 2 threads give the same bits."""
    args = helpers.msda_inputs(torch.float32, seed=9, n=2, m=4, d=16, lq=257, points=4)
    outs = [o for threads in (1, 2) for o in _run_with_threads(THREADS_SCRIPT, args, tmp_path, threads)]
    assert all(torch.equal(o, outs[0]) for o in outs[1:])
    assert torch.equal(ms_deform_attn(*args, backend="numba"), outs[0])


def test_numba_unsupported_inputs(helpers, monkeypatch):
    monkeypatch.delenv(MSDA_BACKEND_ENV, raising=False)
    args64 = helpers.msda_inputs(torch.float64)
    with pytest.raises(InputError, match="backend='numba'.*float32"):
        ms_deform_attn(*args64, backend="numba")
    monkeypatch.setenv(MSDA_BACKEND_ENV, "numba")
    with pytest.raises(InputError, match="backend='numba'"):
        ms_deform_attn(*args64)
    monkeypatch.delenv(MSDA_BACKEND_ENV)
    # automatic choice: float64 inputs fall back to torch-bag
    torch.testing.assert_close(ms_deform_attn(*args64), helpers.literal_msda(*args64), rtol=1e-12, atol=1e-12)


def test_whole_model_numba_vs_torch(helpers):
    pixels = torch.randn(1, 3, 96, 128, generator=torch.Generator().manual_seed(23))
    with torch.no_grad():
        ref = helpers.build_tiny(24, msda_backend="torch")(pixels)
        fast = helpers.build_tiny(24, msda_backend="numba")(pixels)
    torch.testing.assert_close(fast["pred_logits"], ref["pred_logits"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast["pred_masks"], ref["pred_masks"], rtol=1e-4, atol=1e-4)


def _gradients(args, backend, weights):
    """(out, dL/dvalue, dL/dloc, dL/dattn) of L = sum(out * weights)."""
    value, hw, starts, loc, attn = (t.detach().clone().requires_grad_(t.is_floating_point()) for t in args)
    out = ms_deform_attn(value, hw, starts, loc, attn, backend=backend)
    (out * weights.to(out.dtype)).sum().backward()
    return out.detach(), value.grad, loc.grad, attn.grad


@pytest.mark.parametrize("shapes", [((3, 5), (6, 10), (1, 2)), ((16, 24), (8, 12), (4, 6))])
def test_numba_gradients_match_upstream_grid_sample_in_float64(helpers, shapes):
    """Backward (col2im port) against autograd through the upstream grid_sample formulation in float64.

    Locations are random in [-0.3, 1.3] (many points partly or wholly outside the maps; none exactly on the
    skip boundary, where the CUDA kernel's zero gradient and grid_sample's one-sided one differ by design)."""
    value, hw, starts, _, attn = helpers.msda_inputs(torch.float32, seed=5, n=2, m=3, d=7, lq=29, points=4, shapes=shapes)
    gen = torch.Generator().manual_seed(6)
    loc = torch.rand(2, 29, 3, len(shapes), 4, 2, generator=gen) * 1.6 - 0.3
    weights = torch.randn(2, 29, 3 * 7, generator=gen)
    args = (value, hw, starts, loc, attn)
    got = _gradients(args, "numba", weights)
    ref = _gradients(tuple(t.double() if t.is_floating_point() else t for t in args), "torch", weights)
    for name, g, r in zip(("out", "value", "loc", "attn"), got, ref):
        assert g.dtype == torch.float32 and g.shape == r.shape, name
        scale = float(r.abs().max())
        torch.testing.assert_close(g.double(), r, rtol=1e-5, atol=1e-6 * scale, msg=name)
    assert float(got[2].abs().max()) > 0 and bool((got[2] == 0).any())  # points outside get no gradient


GRAD_THREADS_SCRIPT = """
import sys, torch
from maskbench.model.ms_deform_attn import ms_deform_attn
torch.set_num_threads(int(sys.argv[3]))
value, hw, starts, loc, attn = (t.requires_grad_(t.is_floating_point()) for t in torch.load(sys.argv[1]))
(ms_deform_attn(value, hw, starts, loc, attn, backend="numba").square().sum()).backward()
torch.save([value.grad, loc.grad, attn.grad], sys.argv[2])
"""


def test_numba_gradients_bit_identical_across_thread_counts(helpers, tmp_path):
    """Each (batch, head) owns its value rows: 1 and 2 threads give the same gradient bits."""
    args = helpers.msda_inputs(torch.float32, seed=3, n=2, m=4, d=16, lq=257, points=4)
    grads = [_run_with_threads(GRAD_THREADS_SCRIPT, args, tmp_path, threads) for threads in (1, 2)]
    assert all(torch.equal(a, b) for a, b in zip(*grads))
