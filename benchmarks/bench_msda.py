"""Deformable-attention core at Mask2Former R50 Cityscapes shapes (1024x2048 input): speed and peak memory.

Shapes: levels 1/32, 1/16, 1/8 = 32x64, 64x128, 128x256 (Lq = S = 43 008), batch 1, 8 heads x 32 channels,
4 points. Sampling locations are pixel-centre reference points plus N(0, 2 px) offsets; weights are a
softmax over levels x points (as in the encoder).

CPU (default 2 threads): the upstream grid_sample ``stack`` reference (``backend="torch"``) against the fast
paths (``"torch-bag"``, ``"numba"``; numba compiled/cache-loaded in the warm-up), timed side by side in one process, then the peak extra resident memory of one call
of each, measured in a fresh child process (Linux ``VmHWM`` before/after). On CUDA: ``"triton"`` against
``"torch"`` with CUDA events and ``torch.cuda.max_memory_allocated``.

    python benchmarks/bench_msda.py [--repeats 3] [--threads 2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskbench.model.ms_deform_attn import ms_deform_attn  # noqa: E402

SHAPES = ((32, 64), (64, 128), (128, 256))


def make_inputs(device: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    hw = torch.tensor(SHAPES, dtype=torch.int64)
    sizes = hw[:, 0] * hw[:, 1]
    starts = torch.cat((sizes.new_zeros(1), sizes.cumsum(0)[:-1]))
    s, m, d, levels, points = int(sizes.sum()), 8, 32, len(SHAPES), 4
    value = torch.randn(1, s, m, d, generator=gen)
    ref = torch.cat([
        torch.stack(torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")[::-1], -1)
        .reshape(-1, 2) for h, w in SHAPES
    ])
    scale = torch.tensor([[w, h] for h, w in SHAPES], dtype=torch.float32)
    offsets = torch.randn(1, s, m, levels, points, 2, generator=gen) * 2.0 / scale[None, None, None, :, None, :]
    loc = ref[None, :, None, None, None, :] + offsets
    attn = torch.randn(1, s, m, levels * points, generator=gen).softmax(-1).view(1, s, m, levels, points)
    return [t.to(device) for t in (value, hw, starts, loc, attn)]


def peak_rss_child(backend: str, threads: int) -> float:
    """Peak extra resident memory (MiB) of one call, in a fresh process."""
    code = (
        "import sys, torch; sys.path.insert(0, %r); torch.set_num_threads(%d)\n"
        "from benchmarks.bench_msda import make_inputs, hwm\n"
        "from maskbench.model.ms_deform_attn import ms_deform_attn\n"
        "args = make_inputs('cpu'); before = hwm(); ms_deform_attn(*args, backend=%r); print(hwm() - before)"
    ) % (str(Path(__file__).resolve().parents[1]), threads, backend)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1]) / 1024.0


def hwm() -> int:
    """Peak resident set size of this process so far, KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM not found in /proc/self/status (Linux only)")


def bench_cpu(repeats: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    args = make_inputs("cpu")
    backends = ("torch", "torch-bag", "numba")
    times = {b: [] for b in backends}
    outputs = {b: ms_deform_attn(*args, backend=b) for b in backends}  # warm-up
    for _ in range(repeats):
        for b in backends:  # interleaved, side by side
            t0 = time.perf_counter()
            ms_deform_attn(*args, backend=b)
            times[b].append(time.perf_counter() - t0)
    med = {b: statistics.median(v) for b, v in times.items()}
    return {
        "protocol": f"CPU, {threads} threads, median of {repeats} calls after 1 warm-up, R50 Cityscapes 1024x2048 shapes",
        "seconds": med,
        "speedup_vs_grid_sample": {b: med["torch"] / med[b] for b in backends[1:]},
        "speedup_numba_vs_torch_bag": med["torch-bag"] / med["numba"],
        "max_abs_diff_vs_grid_sample": {b: float((outputs["torch"] - outputs[b]).abs().max()) for b in backends[1:]},
        "peak_extra_rss_mib": {b: peak_rss_child(b, threads) for b in backends},
    }


def bench_cuda(repeats: int) -> dict:
    args = make_inputs("cuda")
    backends = ("torch", "triton")
    outputs = {b: ms_deform_attn(*args, backend=b) for b in backends}  # warm-up / JIT compile
    times, peaks = {b: [] for b in backends}, {}
    for b in backends:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        ms_deform_attn(*args, backend=b)
        torch.cuda.synchronize()
        peaks[b] = (torch.cuda.max_memory_allocated() - base) / 2**20
    for _ in range(repeats):
        for b in backends:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            ms_deform_attn(*args, backend=b)
            end.record()
            torch.cuda.synchronize()
            times[b].append(start.elapsed_time(end) / 1000.0)
    med = {b: statistics.median(v) for b, v in times.items()}
    return {
        "protocol": f"{torch.cuda.get_device_name()}, median of {repeats} calls after warm-up, fp32, "
                    f"tf32 matmul={torch.backends.cuda.matmul.allow_tf32}, R50 Cityscapes 1024x2048 shapes",
        "seconds": med,
        "speedup_triton_vs_grid_sample": med["torch"] / med["triton"],
        "max_abs_diff": float((outputs["torch"] - outputs["triton"]).abs().max()),
        "peak_extra_cuda_mib": peaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    opts = parser.parse_args()
    result = bench_cuda(opts.repeats) if opts.device == "cuda" else bench_cpu(opts.repeats, opts.threads)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
