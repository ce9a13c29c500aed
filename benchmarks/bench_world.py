"""Generation speed of the miniature world (no reference implementation exists to compare against).

Measures, in one run on this machine: CPU and wall time per rendered frame (inliers, anomaly and obstacle modes),
the wall time of the four evaluation splits into a fresh cache (what a first ``bench run`` pays once), and the
training split's throughput with 1 and 2 writer processes, extrapolated to the default size.

    python benchmarks/bench_world.py [--train-frames 60]
"""

import argparse
import os
import tempfile
import time
from dataclasses import replace

from maskbench.datasets.world import EVAL_SPLITS, WorldConfig, ensure_world, render_scene


def render_cost(mode, frames):
    cpu, wall = time.process_time(), time.perf_counter()
    for seed in range(frames):
        render_scene(1000 + seed, mode=mode)
    return (time.process_time() - cpu) / frames * 1e3, (time.perf_counter() - wall) / frames * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20, help="frames per render mode")
    parser.add_argument("--train-frames", type=int, default=60, help="training frames to time per worker count")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (timings scale with load)")
    for mode in (None, "anomaly", "obstacle"):
        cpu, wall = render_cost(mode, args.frames)
        print(f"render 256x512 mode={str(mode):<8}  {cpu:6.1f} ms CPU/frame  {wall:6.1f} ms wall/frame")
    config = WorldConfig()
    with tempfile.TemporaryDirectory() as cache:
        start, cpu = time.perf_counter(), time.process_time()
        ensure_world(EVAL_SPLITS, config=config, cache=cache)
        n = sum(config.frames(s) for s in EVAL_SPLITS)
        print(f"evaluation splits ({n} frames: {', '.join(f'{s} {config.frames(s)}' for s in EVAL_SPLITS)}): "
              f"{time.perf_counter() - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, first use only")
    for workers in (1, 2):
        small = replace(config, train=args.train_frames)
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            ensure_world(("train",), config=small, cache=cache, workers=workers)
            per_frame = (time.perf_counter() - start) / args.train_frames
        print(f"train split, {workers} worker(s): {1 / per_frame:5.1f} frames/s -> default {config.train} frames "
              f"in ~{per_frame * config.train:.0f} s")


if __name__ == "__main__":
    main()
