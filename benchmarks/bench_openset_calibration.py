"""DenseHybrid open-IoU threshold calibration: PixelAccumulator + tpr95_threshold vs the reference path.

    PYTHONPATH=. python benchmarks/bench_openset_calibration.py              # 40 half-resolution frames of 360x640
    PYTHONPATH=. python benchmarks/bench_openset_calibration.py --frames 8   # quick check

Reference (matejgrcic/DenseHybrid ``OODCalibration``, transcribed): concatenate the non-ignored scores and
labels of all calibration frames, ``sklearn.metrics.roc_curve`` (drop_intermediate=True) and a Python loop
to the first point with TPR > 0.95. Ours streams the frames into an exact float32 accumulator and reads the
same point off its curve. Both thresholds are checked equal. The machine is shared: ratios are indicative.
"""

import argparse
import time

import numpy as np
from sklearn.metrics import roc_curve

from maskbench.metrics.pixel import PixelAccumulator, tpr95_threshold


def frame(seed, h, w):
    r = np.random.default_rng(seed)
    labels = np.zeros((h, w), np.uint8)
    labels[h // 2: h // 2 + h // 8, w // 3: w // 3 + w // 10] = 1
    labels[: h // 12] = 255
    scores = r.random((h, w), dtype=np.float32)
    scores[labels == 1] = np.sqrt(scores[labels == 1])
    return scores, labels


def reference(frames):
    conf = np.concatenate([s[g != 255] for s, g in frames])
    gt = np.concatenate([g[g != 255] for s, g in frames])
    fpr, tpr, thr = roc_curve(gt, conf)
    for i, j, k in zip(tpr, fpr, thr):
        if i > 0.95:
            return float(k)
    return 0.0


def ours(frames):
    acc = PixelAccumulator("exact", fpr95_rule="strict_dropint")
    for s, g in frames:
        acc.update(s, g)
    return tpr95_threshold(acc)[0]


def best_of(fn, frames, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(frames)
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    frames = [frame(i, 360, 640) for i in range(args.frames)]
    ours(frames[:1])  # compile the kernels outside the timing
    t_ref, thr_ref = best_of(reference, frames, args.repeats)
    t_ours, thr_ours = best_of(ours, frames, args.repeats)
    assert thr_ref == thr_ours, (thr_ref, thr_ours)
    px = sum(int((g != 255).sum()) for _, g in frames)
    print(f"{args.frames} frames, {px / 1e6:.1f} Mpx; threshold {thr_ours!r} (identical)")
    print(f"reference (concat + roc_curve + loop): {t_ref:.2f} s")
    print(f"maskbench (PixelAccumulator exact + tpr95_threshold): {t_ours:.2f} s  ->  {t_ref / t_ours:.1f}x faster")


if __name__ == "__main__":
    main()
