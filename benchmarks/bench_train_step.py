"""One training step of the embedded tiny Mask2Former (``bench train``'s configuration) per deformable-attention
backend: ``"torch-bag"`` (embedding_bag, autograd backward; what training used before the numba backward) and
``"torch"`` (the upstream grid_sample reference) against ``"numba"`` (CUDA kernels' im2col/col2im ports, the
automatic choice on CPU), timed side by side in one process: the same batches, one step of each backend per
batch in rotating order (medians).

The step is forward, Hungarian matching and losses, backward and the AdamW update, at batch 8 of 128x256 crops
from rendered world frames, deterministic algorithms on (as in training). Prints seconds per step and the
ratios against numba.

    python benchmarks/bench_train_step.py [--steps 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskbench.datasets.world import render_scene  # noqa: E402
from maskbench.model.config import Mask2FormerConfig  # noqa: E402
from maskbench.train.loop import TrainConfig, build_trainable, random_batch, train_step  # noqa: E402
from maskbench.train.losses import SetCriterion  # noqa: E402
from maskbench.train.matcher import HungarianMatcher  # noqa: E402

BACKENDS = ("torch-bag", "torch", "numba")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per backend (after 2 warm-up steps)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    cfg = TrainConfig()
    scenes = [render_scene(seed) for seed in range(16)]
    images = np.stack([s.image for s in scenes])
    labels = np.stack([s.semantic for s in scenes])
    rng = np.random.default_rng(0)
    batches = [random_batch(rng, images, labels, cfg.batch_size, tuple(cfg.crop)) for _ in range(args.steps + 2)]

    runs = {}
    for backend in BACKENDS:
        model_cfg = Mask2FormerConfig(**{**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.model.items()},
                                         "msda_backend": backend})
        torch.manual_seed(0)
        model = build_trainable(model_cfg, cfg.backbone)
        criterion = SetCriterion(model_cfg.num_classes, HungarianMatcher(num_points=cfg.num_points),
                                 num_points=cfg.num_points)
        runs[backend] = (model, criterion, torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))

    def step(backend, batch_images, batch_labels):
        start = time.perf_counter()
        train_step(*runs[backend], batch_images, batch_labels, cfg.clip_grad)
        return time.perf_counter() - start

    samples = {b: [] for b in BACKENDS}
    for k, (batch_images, batch_labels) in enumerate(batches):  # interleaved, rotating order: same machine state
        order = BACKENDS[k % len(BACKENDS):] + BACKENDS[:k % len(BACKENDS)]
        for backend in order:
            seconds = step(backend, batch_images, batch_labels)
            if k >= 2:
                samples[backend].append(seconds)
    times = {b: statistics.median(v) for b, v in samples.items()}
    result = {"threads": args.threads, "steps": args.steps, "seconds_per_step": times,
              **{f"speedup_numba_vs_{b}": times[b] / times["numba"] for b in BACKENDS if b != "numba"}}
    for b in BACKENDS:
        print(f"{b:10s} {times[b]:.3f} s/step" + ("" if b == "numba" else f"   numba is {times[b] / times['numba']:.2f}x faster"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
