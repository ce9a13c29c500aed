"""Component metrics (sIoU / PPV / F1*): maskbench's contingency-table path vs the literal official algorithm.

Run from the repository root:  python benchmarks/bench_components.py [--frames 4] [--track both|anomaly|obstacle]
                                [--score-dtype float16|float32]

Synthetic 1920x1080 float16 frames (road ROI ~45 %, the rest void; obstacles of 15-150 px side; shifted and
partial detections, false-positive blobs, speckle noise), about 5-60 predicted components per frame after the
size filter. Both paths run side by side on the same frames; per-component values are checked bit-identical and the
dataset figures equal, then ms/frame and the speed-up are printed.
"""

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import label

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from maskbench.metrics.component_frame import TAUS, TRACKS, frame_component_stats  # noqa: E402
from maskbench.metrics.components import ComponentAccumulator  # noqa: E402

_spec = importlib.util.spec_from_file_location("_official_components", ROOT / "benchmarks" / "_official_components.py")
official = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(official)


def synthetic_frame(rng, height=1080, width=1920):
    """(float16 scores, uint8 labels 0/1/255, number of obstacles)."""
    gt = np.full((height, width), 255, dtype=np.uint8)
    road_top = int(height * 0.45)
    yy, xx = np.mgrid[0:height, 0:width]
    road = (yy >= road_top) & (np.abs(xx - width / 2) <= (yy - road_top) * 1.6 + 150)
    gt[road] = 0
    scores = rng.normal(0.2, 0.05, size=(height, width))
    scores += 0.1 * np.sin(xx / 97.0) * np.cos(yy / 61.0)  # smooth clutter
    n_obj = int(rng.integers(3, 30))
    for _ in range(n_obj):
        h, w = int(rng.integers(15, 150)), int(rng.integers(15, 150))
        y = int(rng.integers(road_top, height - h))
        x = int(rng.integers(0, width - w))
        ellipse = ((yy[y:y + h, x:x + w] - y - h / 2) / (h / 2)) ** 2 + ((xx[y:y + h, x:x + w] - x - w / 2) / (w / 2)) ** 2 <= 1
        gt[y:y + h, x:x + w][ellipse & road[y:y + h, x:x + w]] = 1
        if rng.random() < 0.85:  # detected, shifted and partly
            dy, dx = int(rng.integers(-h // 4, h // 4 + 1)), int(rng.integers(-w // 4, w // 4 + 1))
            ys, xs = slice(max(y + dy, 0), min(y + dy + h, height)), slice(max(x + dx, 0), min(x + dx + w, width))
            scores[ys, xs] += rng.uniform(0.3, 0.7) * rng.random((ys.stop - ys.start, xs.stop - xs.start)) ** 0.3
    for _ in range(int(rng.integers(2, 120))):  # false positives
        h, w = int(rng.integers(5, 90)), int(rng.integers(5, 90))
        y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
        scores[y:y + h, x:x + w] += rng.uniform(0.3, 0.6)
    return np.clip(scores, 0, 1).astype(np.float16), gt, n_obj


def run(frames, track, threshold, score_dtype, repeats):
    """Both paths on ``frames`` for one track; checks identical results, prints and returns mean ms/frame."""
    min_pred, min_gt = TRACKS[track]
    frames = [(scores.astype(score_dtype), gt) for scores, gt, _ in frames]
    t_off, t_fast, refs = [], [], []
    acc = ComponentAccumulator(threshold, track=track, score_dtype=score_dtype)
    acc.update(*frames[0])  # warm-up (numba cache load)
    acc = ComponentAccumulator(threshold, track=track, score_dtype=score_dtype)
    print(f"track={track} (min pred {min_pred} px, min GT {min_gt} px), threshold={threshold}, "
          f"{np.dtype(score_dtype).name} scores, 1920x1080")
    for k, (scores, gt) in enumerate(frames):
        t0 = time.perf_counter()
        ref = official.official_frame(scores, gt, threshold, min_pred, min_gt)
        t_off.append(time.perf_counter() - t0)
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            ours = frame_component_stats(scores, gt, threshold, track=track, score_dtype=score_dtype)
            best = min(best, time.perf_counter() - t0)
        t_fast.append(best)
        acc.update(scores, gt)
        refs.append(ref)
        same = (np.array_equal(ours.siou_gt, ref["sIoU_gt"]) and np.array_equal(ours.ppv, ref["prec_pred"])
                and np.array_equal(ours.siou_pred, ref["sIoU_pred"])
                and ours.fp.tolist() == [ref[f"fp_{int(t * 100)}"] for t in TAUS]
                and ours.tp.tolist() == [ref[f"tp_{int(t * 100)}"] for t in TAUS])
        if not same:
            raise SystemExit(f"frame {k}: per-component values differ from the official algorithm")
        n_raw = label((scores > scores.dtype.type(threshold)) & (gt != 255), np.ones((3, 3)))[1]
        print(f"  frame {k}: {ours.siou_gt.size:3d} GT / {ours.ppv.size:3d} predicted components "
              f"({n_raw:4d} before the size filter)   official {t_off[-1] * 1e3:7.1f} ms   "
              f"maskbench {t_fast[-1] * 1e3:6.2f} ms   x{t_off[-1] / t_fast[-1]:6.1f}")
    res, expected = acc.compute(), official.official_aggregate(refs)
    assert res.tp == expected["tp"] and res.fn == expected["fn"] and res.fp == expected["fp"]
    assert res.f1 == expected["f1_mean"]
    assert abs(res.siou - expected["sIoU_gt"]) <= 1e-14 * abs(expected["sIoU_gt"])
    assert abs(res.ppv - expected["prec_pred"]) <= 1e-14 * abs(expected["prec_pred"])
    off, fast = 1e3 * np.mean(t_off), 1e3 * np.mean(t_fast)
    print(f"  dataset: sIoU {res.siou:.6f}  PPV {res.ppv:.6f}  F1* {res.f1:.6f} (official {expected['sIoU_gt']:.6f} / "
          f"{expected['prec_pred']:.6f} / {expected['f1_mean']:.6f}); per-component values bit-identical")
    print(f"  mean ms/frame: official algorithm {off:.1f}, maskbench {fast:.2f}, speed-up x{off / fast:.1f}")
    return off, fast


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="frames per track")
    parser.add_argument("--track", choices=sorted(TRACKS) + ["both"], default="both")
    parser.add_argument("--score-dtype", choices=["float16", "float32"], default="float16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3, help="maskbench repeats per frame (best kept)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    frames = [synthetic_frame(rng) for _ in range(args.frames)]
    print(f"seed={args.seed}; one run, both paths on the same frames")
    totals = [run(frames, track, args.threshold, np.dtype(args.score_dtype), args.repeats)
              for track in (sorted(TRACKS) if args.track == "both" else [args.track])]
    off, fast = np.mean(totals, axis=0)
    print(f"overall mean ms/frame: official algorithm {off:.1f}, maskbench {fast:.2f}, speed-up x{off / fast:.1f}")


if __name__ == "__main__":
    main()
