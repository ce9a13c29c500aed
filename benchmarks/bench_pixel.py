"""Pixel metrics: PixelAccumulator vs scikit-learn (average_precision_score + roc_curve), side by side.

    python benchmarks/bench_pixel.py               # 20 frames of 1024x2048 (4.2e7 pixels)
    python benchmarks/bench_pixel.py --frames 2    # quick check

Synthetic frames: float32 scores in [0, 1], ~1% anomaly pixels (rectangles, scored higher), ~10% void.
Times exclude frame generation; sklearn's time excludes pooling the non-void pixels into one array.
Memory: peak RSS above the phase's starting RSS (VmHWM reset through /proc/self/clear_refs) and, for the
accumulator, the tracemalloc peak after 1, F/4 and F frames (exact16: constant; exact counts worst-case
sized buffers whose untouched pages are never resident). The machine is shared: figures are indicative.
"""

import argparse
import gc
import time
import tracemalloc

import numpy as np
from sklearn.metrics import average_precision_score, roc_curve

from maskbench.metrics.pixel import PixelAccumulator


def make_frame(seed, h, w):
    r = np.random.default_rng(seed)
    gt = np.zeros((h, w), np.uint8)
    for _ in range(4):  # 4 rectangles of ~0.25% each
        bh, bw = h // 20, w // 20
        y, x = int(r.integers(h // 10, h - bh)), int(r.integers(0, w - bw))
        gt[y:y + bh, x:x + bw] = 1
    gt[: h // 10] = 255
    scores = r.random((h, w), dtype=np.float32)
    scores[gt == 1] = np.sqrt(scores[gt == 1])
    return scores, gt


def _rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


class Peak:
    """Peak RSS above the starting RSS of a phase."""

    def __enter__(self):
        gc.collect()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM
        except OSError:
            pass
        self.start = _rss_mb("VmRSS")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.mb = _rss_mb("VmHWM") - self.start


def run_accumulator(protocol, frames):
    # numba compile / cache load of every kernel outside the timing (state() sorts pending keys, so the
    # merge below also exercises the run merge of the exact protocol)
    warm, other = PixelAccumulator(protocol), PixelAccumulator(protocol)
    warm.update(*make_frame(0, 64, 64)).state()
    other.update(*make_frame(1, 64, 64)).state()
    warm.merge(other).compute()
    tracemalloc.start()
    with Peak() as p:
        acc = PixelAccumulator(protocol)
        peaks = []
        for scores, gt in frames:
            acc.update(scores, gt)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        res = acc.compute()
    tracemalloc.stop()
    return res, p, peaks


def run_sklearn(y_score, y_true):
    with Peak() as p:
        ap = average_precision_score(y_true, y_score)
        roc_curve(y_true, y_score)
    return ap, p


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--no-smiyc", action="store_true", help="skip timing the smiyc protocols")
    args = ap.parse_args()

    frames = [make_frame(1000 + i, args.height, args.width) for i in range(args.frames)]
    n_px = args.frames * args.height * args.width
    print(f"{args.frames} frames {args.height}x{args.width} = {n_px:.3g} pixels "
          f"(input frames {sum(s.nbytes + g.nbytes for s, g in frames) / 2**20:.0f} MB, held by the caller)")

    rows = []
    for protocol, cast in (("exact16", np.float16), ("exact", np.float32)):
        res, p_acc, peaks = run_accumulator(protocol, frames)
        y_score = np.concatenate([s.astype(cast)[g < 2] for s, g in frames]).astype(np.float32)
        y_true = np.concatenate([g[g < 2] for _, g in frames])
        sk_ap, p_sk = run_sklearn(y_score, y_true)
        del y_score, y_true
        rows.append((protocol, res, p_acc, peaks, sk_ap, p_sk))
    print(f"\n{'protocol':9} {'AP (ours)':>20} {'AP (sklearn)':>20} {'same':>5} {'ours s':>7} {'sklearn s':>9} "
          f"{'speedup':>8} {'ours peak MB':>12} {'sklearn peak MB':>15}")
    for protocol, res, p_acc, peaks, sk_ap, p_sk in rows:
        print(f"{protocol:9} {res.ap!r:>20} {sk_ap!r:>20} {str(res.ap == sk_ap):>5} {p_acc.seconds:7.2f} "
              f"{p_sk.seconds:9.2f} {p_sk.seconds / p_acc.seconds:7.1f}x {p_acc.mb:12.0f} {p_sk.mb:15.0f}")
    for protocol, res, p_acc, peaks, *_ in rows:
        quarter = peaks[max(0, len(peaks) // 4 - 1)]
        print(f"{protocol}: tracemalloc peak (allocated bytes) after frame 1 / {len(peaks) // 4 or 1} / "
              f"{len(peaks)}: {peaks[0]:.1f} / {quarter:.1f} / {peaks[-1]:.1f} MB; AUROC {res.auroc!r}, "
              f"FPR95 ({res.fpr95_rule}) {res.fpr95!r}, MDM60 {res.mdm_f1_60!r}")
    if not args.no_smiyc:
        for protocol in ("smiyc", "smiyc-legacy"):
            res, p_acc, _ = run_accumulator(protocol, frames)
            print(f"{protocol}: AP {res.ap!r} FPR95 {res.fpr95!r} in {p_acc.seconds:.2f} s, peak +{p_acc.mb:.0f} MB")


if __name__ == "__main__":
    main()
