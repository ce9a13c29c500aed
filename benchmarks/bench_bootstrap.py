"""Bootstrap intervals (maskbench.metrics.bootstrap) against a naive re-evaluation of every replicate.

Data: a synthetic Lost & Found-sized run (obstacle track): ``--frames`` frames (default 1203, LAF's test split)
of ``--size`` pixels (default 512 x 1024, LAF's 1024 x 2048 halved per side to fit 2 shared cores; 24 GB are
not the limit), a road trapezoid labelled 0 (about a quarter of the frame), one to three disc obstacles labelled
1 on it, everything else void (255); a smooth logistic score field plus noise, obstacles lifted. Stored as
``bench run`` stores a frame: the label map and the float16 scores of the pixels labelled 0 / 1.

``--protocol exact`` stores float32 scores (``bench run`` does under ``exact``): the float16 scores plus N(0, 1e-4)
noise, so nearly every pixel has its own score, the worst case of the exact protocol.

Engine: pass 1 over the frames (per-frame state), all ``--replicates`` replicates' pixel metrics, pass 2 over
the frames (components at every distinct replicate threshold), then every replicate's component metrics.
Naive: for ``--naive`` replicates, the literal definition: PixelAccumulator over the replicate's drawn frames
(each rebuilt as a full map, as the runner's metric passes read them), then ComponentAccumulator at its
threshold; its time per replicate times ``--replicates`` is the naive cost (extrapolated: printed as such). The
naive replicates' metrics are checked equal to the engine's.

    python benchmarks/bench_bootstrap.py [--frames 1203] [--size 512 1024] [--replicates 1000] [--naive 2]
                                         [--protocol smiyc exact16 [exact]]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import zoom

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from maskbench.metrics.bootstrap import METRICS, BootstrapPixels, replicate_counts  # noqa: E402
from maskbench.metrics.components import ComponentAccumulator  # noqa: E402
from maskbench.metrics.pixel import PixelAccumulator  # noqa: E402


def synthetic_run(n_frames, h, w, seed=0):
    """``[(labels (h, w) uint8, float16 scores of the pixels labelled 0 / 1)]``, LAF-like (module docstring)."""
    rng = np.random.default_rng(seed)
    rr, cc = np.mgrid[0:h, 0:w]
    road = (rr > h * 0.55) & (np.abs(cc - w / 2) < (rr - h * 0.45) * 0.8 * w / h)
    fields = [zoom(rng.normal(size=(h // 16 + 2, w // 16 + 2)).astype(np.float32), 16, order=1)[:h, :w]
              for _ in range(8)]
    run = []
    for _ in range(n_frames):
        labels = np.where(road, 0, 255).astype(np.uint8)
        for _ in range(rng.integers(1, 4)):
            r, c = rng.integers(int(h * 0.6), h - 8), rng.integers(w // 4, 3 * w // 4)
            s = int(rng.integers(3, max(4, h // 25)))
            r0, r1, c0, c1 = max(r - s, 0), min(r + s, h), max(c - s, 0), min(c + s, w)
            disc = (rr[r0:r1, c0:c1] - r) ** 2 + (cc[r0:r1, c0:c1] - c) ** 2 < s * s
            labels[r0:r1, c0:c1][disc & road[r0:r1, c0:c1]] = 1
        roi = labels <= 1
        base = np.roll(fields[rng.integers(8)], (rng.integers(h), rng.integers(w)), axis=(0, 1))[roi]
        scores = 1 / (1 + np.exp(-(1.5 * base - 2.5))) + (labels[roi] == 1) * rng.uniform(0.2, 0.6)
        scores += rng.normal(scale=0.03, size=scores.shape)
        run.append((labels, np.clip(scores, 0, 1).astype(np.float16)))
    return run


def full_map(labels, stored):
    scores = np.zeros(labels.shape, stored.dtype)
    scores[labels <= 1] = stored
    return scores


def engine(run, protocol, n_replicates, seed):
    t0 = time.perf_counter()
    pixels = BootstrapPixels(protocol)
    for i, (labels, stored) in enumerate(run):
        pixels.update(i, stored, labels)
    t1 = time.perf_counter()
    reps = pixels.replicates(n_replicates, seed)
    t2 = time.perf_counter()
    comps = reps.components("obstacle")
    for i, (labels, stored) in enumerate(run):
        comps.update(i, stored, labels)
    t3 = time.perf_counter()
    result = reps.finish(comps)
    t4 = time.perf_counter()
    return result, dict(pass1=t1 - t0, pixel_replicates=t2 - t1, pass2=t3 - t2, component_replicates=t4 - t3,
                        total=t4 - t0, thresholds=len(reps.thresholds()))


def naive(run, protocol, counts, b):
    """Replicate ``b`` by the literal definition (frames with multiplicity)."""
    drawn = [i for i in range(len(run)) for _ in range(counts[b, i])]
    acc = PixelAccumulator(protocol)
    for i in drawn:
        acc.update(full_map(*run[i]), run[i][0])
    px = acc.compute()
    values = dict(AP=px.ap, AUROC=px.auroc, FPR95=px.fpr95, MDM_F1_60=px.mdm_f1_60, MDM_F1_70=px.mdm_f1_70)
    comp = ComponentAccumulator(px.threshold, track="obstacle", score_dtype=px.score_dtype)
    for i in drawn:
        comp.update(full_map(*run[i]), run[i][0])
    c = comp.compute()
    values.update(sIoU=c.siou, PPV=c.ppv, F1=c.f1)
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1203)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 1024), metavar=("H", "W"))
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=2, help="replicates re-evaluated naively (timed, checked)")
    parser.add_argument("--protocol", nargs="+", default=["smiyc", "exact16"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    h, w = args.size
    t = time.perf_counter()
    run = synthetic_run(args.frames, h, w)
    n_lab = sum(s.size for _, s in run)
    print(f"synthetic LAF-like obstacle run: {args.frames} frames of {h}x{w}, {n_lab / args.frames:.0f} labelled "
          f"pixels per frame ({sum((g == 1).sum() for g, _ in run) / n_lab:.2%} obstacle), generated in "
          f"{time.perf_counter() - t:.1f} s; B = {args.replicates}, seed {args.seed}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    counts = replicate_counts(args.frames, args.replicates, args.seed)
    noise = np.random.default_rng(1)
    float32_run = None
    for protocol in args.protocol:
        if protocol == "exact":
            float32_run = float32_run or [(g, (s + noise.normal(scale=1e-4, size=s.shape)).astype(np.float32))
                                          for g, s in run]
        run_p = float32_run if protocol == "exact" else run
        result, times = engine(run_p, protocol, args.replicates, args.seed)
        print(f"[{protocol} pixel curve, obstacle-track components] engine {times['total']:.1f} s: pass 1 "
              f"{times['pass1']:.1f} s, {args.replicates} replicates' pixel metrics {times['pixel_replicates']:.1f} s, "
              f"pass 2 {times['pass2']:.1f} s ({times['thresholds']} distinct thresholds), component metrics "
              f"{times['component_replicates']:.1f} s")
        t = time.perf_counter()
        for b in range(args.naive):
            values = naive(run_p, protocol, counts, b)
            for m in METRICS:
                v = np.nan if values[m] is None else values[m]
                assert np.array_equal(v, result.values[m][b], equal_nan=True), (protocol, b, m)
        per = (time.perf_counter() - t) / max(args.naive, 1)
        print(f"  naive re-evaluation: {per:.1f} s per replicate (mean of {args.naive}, equal to the engine's "
              f"values), so {per * args.replicates:.0f} s for {args.replicates} (extrapolated): the engine is "
              f"{per * args.replicates / times['total']:.0f}x faster")
        ci = result.intervals()
        print("  95 % intervals: " + ", ".join(f"{m} [{100 * ci[m]['low']:.1f}, {100 * ci[m]['high']:.1f}]"
                                               for m in ("AP", "FPR95", "sIoU", "PPV", "F1")))


if __name__ == "__main__":
    main()
