"""Shared execution of the per-pixel scorers: the pixels in chunks, one worker thread per CPU thread.

Every per-pixel scorer reads the same chunk context (:class:`~maskbench.scorers._common.Pixels`), so P, σ(M)
and S are computed once per chunk for all of them; the chunks go to one worker thread per CPU thread (whole
chunks, so the result does not depend on the thread count). Each chunk's scores are checked as they are
copied out (shape, dtype, NaN/inf), for built-in and plug-in scorers alike.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait

import torch

from maskbench.errors import InputError
from maskbench.scorers._common import (
    CPU_CHUNK_ALIGN, CPU_CHUNK_PIXELS, ChunkScore, Pixels, Queries, check_finite, check_inputs, compute_dtype,
)

_pool_lock = threading.Lock()
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (process id, workers, executor)


def _single_threaded(ready: threading.Barrier) -> None:
    torch.set_num_threads(1)
    torch.get_num_threads()  # torch initialises a thread's setting on first use, from the default: do it now
    ready.wait()


def cpu_workers(n: int) -> ThreadPoolExecutor:
    """A pool of ``n`` threads whose torch ops run on one intra-op thread each (created once per process and size).

    With torch's OpenMP backend ``torch.set_num_threads`` binds the thread that calls it, but it also sets
    the default that threads start from, so the caller's setting is restored once every worker holds its own.
    Whole chunks on one thread each balance themselves (a worker takes the next chunk when it is free) and
    keep every op's floating-point path the same whatever the number of threads.
    """
    global _pool
    with _pool_lock:
        if _pool is None or _pool[:2] != (os.getpid(), n):
            ready = threading.Barrier(n + 1)
            executor = ThreadPoolExecutor(n, thread_name_prefix="maskbench-scorer")
            for _ in range(n):
                executor.submit(_single_threaded, ready)
            ready.wait()
            torch.set_num_threads(n)
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)
            _pool = (os.getpid(), n, executor)
        return _pool[2]


def check_outputs(given, names: Iterable[str], h: int, w: int, mask_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Flat views of the caller's output maps (checked: one contiguous float32 ``(h, w)`` map per name, on the
    logits' device, sharing memory with nothing), or new ones."""
    names = list(names)
    device = mask_logits.device
    if given is None:
        return {name: torch.empty(h * w, dtype=torch.float32, device=device) for name in names}
    if set(given) != set(names):
        raise InputError(f"out: expected one map for each of {sorted(names)}, got {sorted(given)}")
    flat = {}
    for name in names:
        m = given[name]
        if not isinstance(m, torch.Tensor) or m.dtype != torch.float32 or tuple(m.shape) != (h, w) \
                or m.device != device or not m.is_contiguous():
            got = f"{m.dtype} {tuple(m.shape)} on {m.device}" if isinstance(m, torch.Tensor) else type(m).__name__
            raise InputError(f"out[{name!r}]: expected a contiguous float32 ({h}, {w}) tensor on {device}, got {got}")
        flat[name] = m.view(h * w)
    storages = [m.untyped_storage().data_ptr() for m in flat.values()]
    if len(set(storages)) != len(storages):
        raise InputError("out: the maps must not share memory")
    if mask_logits.untyped_storage().data_ptr() in storages:
        raise InputError("out: a map shares memory with mask_logits")
    return flat


def check_scores(name: str, scores, n: int) -> torch.Tensor:
    """A scorer's output: a floating-point tensor of ``n`` finite scores (raises naming the scorer)."""
    if not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or tuple(scores.shape) != (n,):
        got = f"{scores.dtype} {tuple(scores.shape)}" if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise InputError(f"scorer {name!r}: expected a floating-point tensor of shape ({n},), one score per pixel "
                         f"of the chunk, got {got}")
    if not math.isfinite(torch.sum(scores)) and not bool(torch.isfinite(scores).all()):
        raise InputError(f"scorer {name!r}: produced NaN or infinite scores")
    return scores


@torch.no_grad()
def run_scorers(
    prepare: Mapping[str, Callable[[Queries], ChunkScore]],
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    *,
    chunk_pixels: int | None = None,
    out: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Run several scorers on one forward output, sharing P, σ(M) and S; returns float32 ``(H, W)`` maps.

    ``out``: optional ``name -> float32 (H, W)`` contiguous tensors on the logits' device, one per scorer,
    written and returned instead of new maps; a caller scoring frame after frame reuses them and saves the
    first-touch cost of fresh memory (page faults of 8 MB per map at 1024x2048).

    ``prepare[name](queries)`` does the per-image (query-level) work and returns the per-chunk function.
    The inputs are never modified. ``chunk_pixels`` defaults to :data:`CPU_CHUNK_PIXELS` on CPU and to
    the whole image on an accelerator. On CPU the chunks are shared out to ``torch.get_num_threads()``
    workers (:func:`cpu_workers`) that each compute a whole chunk on one thread, so every chunk is
    computed the same way and the maps do not depend on the number of threads.
    """
    check_inputs(class_logits, mask_logits)
    dtype = compute_dtype(mask_logits.dtype)
    queries = Queries(class_logits.to(dtype))
    chunk_fns = {name: fn(queries) for name, fn in prepare.items()}
    q, h, w = mask_logits.shape
    flat = mask_logits.reshape(q, h * w)
    on_cpu = flat.device.type == "cpu"
    if chunk_pixels is None:
        chunk_pixels = CPU_CHUNK_PIXELS if on_cpu else h * w
    if not isinstance(chunk_pixels, int) or isinstance(chunk_pixels, bool) or chunk_pixels < 1:
        raise InputError(f"chunk_pixels: expected a positive integer, got {chunk_pixels!r}")
    given, out = out, check_outputs(out, chunk_fns, h, w, mask_logits)
    starts: queue.SimpleQueue[int] = queue.SimpleQueue()
    for start in range(0, h * w, chunk_pixels):
        starts.put(start)

    @torch.no_grad()
    def work() -> None:
        """Score chunks until none is left."""
        pixels = Pixels(queries, share_sigmoid=len(chunk_fns) > 1)
        while True:
            try:
                start = starts.get_nowait()
            except queue.Empty:
                return
            chunk = flat[:, start : start + chunk_pixels]
            n = chunk.shape[1]
            if on_cpu and n % CPU_CHUNK_ALIGN:  # pad with zero logits; their scores are dropped
                chunk = torch.cat([chunk, chunk.new_zeros(q, -n % CPU_CHUNK_ALIGN)], dim=1)
            pixels.load(chunk)
            check_finite("mask_logits", pixels.logits)
            for name, fn in chunk_fns.items():
                out[name][start : start + n] = check_scores(name, fn(pixels), pixels.n)[:n]

    threads = torch.get_num_threads() if on_cpu else 1
    if threads == 1:
        work()
    else:
        jobs = [cpu_workers(threads).submit(work) for _ in range(min(threads, starts.qsize()))]
        wait(jobs)
        for job in jobs:
            job.result()  # raises a worker's error
    if given is not None:
        return {name: given[name] for name in out}
    return {name: o.view(h, w) for name, o in out.items()}
