"""`bench evaluate`: score saved anomaly maps (``<stem>.npy``) against label PNGs (``<stem>.png``).

Two passes over the frames, as the official SMIYC code does: pass 1 accumulates the pixel curve (AP,
AUROC, FPR95, MDM and the split's best-F1 threshold); pass 2 binarises every frame at that threshold
(strict ``s > t``, compared in the protocol's score dtype) and accumulates the component metrics.
Frames are processed in parallel worker processes when there are enough of them; accumulators merge
exactly, so the result does not depend on the number of workers or the order of frames.
"""

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskbench.errors import InputError
from maskbench.fileio import read_label_png, read_npy
from maskbench.metrics.components import TRACKS, ComponentAccumulator
from maskbench.metrics.pixel import PixelAccumulator


@dataclass(frozen=True)
class EvalProtocol:
    """A named evaluation protocol: pixel-curve protocol + component track."""

    name: str
    pixel: str
    track: str
    description: str


EVAL_PROTOCOLS = {
    p.name: p
    for p in (
        EvalProtocol("smiyc-anomaly", "smiyc", "anomaly",
                     "official SMIYC AnomalyTrack: float16 scores, per-frame 768-quantile bins, "
                     "components >= 500 px, GT components >= 100 px"),
        EvalProtocol("smiyc-obstacle", "smiyc", "obstacle",
                     "official SMIYC ObstacleTrack: float16 scores, per-frame 768-quantile bins, "
                     "components >= 50 px, GT components >= 10 px"),
        EvalProtocol("exact", "exact", "anomaly",
                     "exact pooled curve on float32 scores (sklearn-identical); "
                     "anomaly-track component filters at the exact best-F1 threshold"),
        EvalProtocol("exact16", "exact16", "anomaly",
                     "exact pooled curve on float16 scores; "
                     "anomaly-track component filters at the exact best-F1 threshold"),
        EvalProtocol("exact-obstacle", "exact", "obstacle",
                     "exact pooled curve on float32 scores (sklearn-identical); "
                     "obstacle-track component filters at the exact best-F1 threshold"),
        EvalProtocol("exact16-obstacle", "exact16", "obstacle",
                     "exact pooled curve on float16 scores; "
                     "obstacle-track component filters at the exact best-F1 threshold"),
    )
}

#: Below this many frames a process pool costs more than it saves.
MIN_FRAMES_PER_WORKER = 4


def pair_frames(pred_dir, gt_dir):
    """Return ``[(stem, pred_path, gt_path)]`` sorted by stem; every stem must have both files."""
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for d, what in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not d.is_dir():
            raise InputError(f"{what} directory not found: {d}")
    preds = {p.stem: p for p in pred_dir.glob("*.npy")}
    gts = {p.stem: p for p in gt_dir.glob("*.png")}
    only_pred, only_gt = sorted(preds.keys() - gts.keys()), sorted(gts.keys() - preds.keys())
    if only_pred or only_gt:
        lines = []
        if only_pred:
            lines.append(f"{len(only_pred)} prediction(s) without a label in {gt_dir}: {_few(only_pred)}")
        if only_gt:
            lines.append(f"{len(only_gt)} label(s) without a prediction in {pred_dir}: {_few(only_gt)}")
        raise InputError("unpaired stems: " + "; ".join(lines))
    if not preds:
        raise InputError(f"no <stem>.npy files in {pred_dir}")
    return [(stem, preds[stem], gts[stem]) for stem in sorted(preds)]


def _few(stems, n=8):
    return ", ".join(stems[:n]) + (f", ... (+{len(stems) - n} more)" if len(stems) > n else "")


def load_frame(stem, pred_path, gt_path):
    """Read one (scores, labels) pair, with errors that name the files (formats checked by signature)."""
    scores, labels = read_npy(pred_path), read_label_png(gt_path, modes=("L", "P"))
    if labels.shape != np.shape(scores):
        raise InputError(f"stem {stem}: score map {pred_path.name} has shape {scores.shape} "
                         f"but label {gt_path.name} has shape {labels.shape}")
    return scores, labels


def _accumulate(acc, frames):
    """Feed frames to an accumulator; validation errors name the frame's files."""
    for stem, pred_path, gt_path in frames:
        scores, labels = load_frame(stem, pred_path, gt_path)
        try:
            acc.update(scores, labels)
        except InputError as err:
            raise InputError(f"{pred_path} / {gt_path.name}: {err}") from err
    return acc


def _pixel_pass(frames, pixel_protocol):
    return _accumulate(PixelAccumulator(pixel_protocol), frames)


def _component_pass(frames, threshold, track, score_dtype):
    return _accumulate(ComponentAccumulator(threshold, track=track, score_dtype=score_dtype), frames)


def map_merge(func, frames, args, workers, progress):
    """Run ``func(chunk, *args)`` over contiguous chunks of frames and merge the accumulators.

    With ``workers > 1`` the chunks run in a process pool; merging is exact, so the result is the same.
    """
    size = 1 if workers <= 1 else max(1, len(frames) // (8 * workers))
    chunks = [frames[i:i + size] for i in range(0, len(frames), size)]
    merged = None
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        results = pool.map(func, chunks, *([a] * len(chunks) for a in args)) if pool else \
            (func(chunk, *args) for chunk in chunks)
        for chunk, acc in zip(chunks, results):
            merged = acc if merged is None else merged.merge(acc)
            progress(len(chunk))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return merged


def default_workers(n_frames):
    """Processes pay off only with several frames per worker and more than one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, n_frames // MIN_FRAMES_PER_WORKER))


def evaluate_dirs(pred_dir, gt_dir, protocol, *, workers=None, progress=None):
    """Evaluate every ``<stem>.npy`` in ``pred_dir`` against ``<stem>.png`` in ``gt_dir``.

    Returns the JSON-ready dict of `bench evaluate` (fractions; ``None`` where undefined).
    ``progress(n)`` is called once per processed frame of each pass.
    """
    if protocol not in EVAL_PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; choose one of {', '.join(EVAL_PROTOCOLS)}")
    proto = EVAL_PROTOCOLS[protocol]
    frames = pair_frames(pred_dir, gt_dir)
    workers = default_workers(len(frames)) if workers is None else max(1, workers)
    progress = progress or (lambda n: None)

    pixel = map_merge(_pixel_pass, frames, (proto.pixel,), workers, progress).compute()
    comp = None
    if pixel.threshold is not None:
        comp = map_merge(_component_pass, frames, (pixel.threshold, proto.track, pixel.score_dtype),
                         workers, progress).compute()
    return {"protocol": protocol, "protocol_details": protocol_details(proto, pixel), "images": len(frames),
            **metric_values(pixel, comp)}


def protocol_details(proto, pixel):
    """How the numbers of ``proto`` were computed (the ``protocol_details`` of every result)."""
    min_pred, min_gt = TRACKS[proto.track]
    return {
        "description": proto.description,
        "pixel_protocol": proto.pixel,
        "fpr95_rule": pixel.fpr95_rule,
        "score_dtype": np.dtype(pixel.score_dtype).name,
        "threshold_rule": "best pixel F1 of the split; components binarise with strict s > threshold "
                          "compared in the score dtype",
        "component_track": proto.track,
        "min_pred_component_px": min_pred,
        "min_gt_component_px": min_gt,
        "connectivity": 8,
        "resolution": "scores evaluated at label resolution (no resizing)",
    }


def metric_values(pixel, comp):
    """Metric keys of a result from the pixel pass and the component pass (``comp`` None: not run)."""
    notes = dict(pixel.notes)
    if comp is None:
        notes["components"] = "no best-F1 threshold (the pixel curve is undefined), component metrics not computed"
    else:
        notes.update({f"components.{k}": v for k, v in comp.notes.items()})
    return {
        "AP": pixel.ap,
        "AUROC": pixel.auroc,
        "FPR95": pixel.fpr95,
        "sIoU": comp.siou if comp else None,
        "PPV": comp.ppv if comp else None,
        "F1": comp.f1 if comp else None,
        "MDM_F1_60": pixel.mdm_f1_60,
        "MDM_F1_70": pixel.mdm_f1_70,
        "threshold": pixel.threshold,
        "n_pixels": pixel.n_pixels,
        "n_positive": pixel.n_positive,
        "notes": notes,
    }


def format_evaluation(result):
    """Readable summary of `evaluate_dirs` output; every number is labelled with its protocol."""
    d = result["protocol_details"]
    lines = [
        f"protocol {result['protocol']}: {d['description']}",
        f"{result['images']} images, {result['n_pixels']} non-void pixels ({result['n_positive']} anomalous); "
        f"scores {d['score_dtype']}; FPR95 rule {d['fpr95_rule']}; {d['resolution']}",
    ]
    rows = [("AP", "AP"), ("FPR95", "FPR95"), ("AUROC", "AUROC"), ("sIoU", "sIoU"), ("PPV", "PPV"),
            ("mean F1*", "F1"), ("MDM F1>0.6", "MDM_F1_60"), ("MDM F1>0.7", "MDM_F1_70")]
    for label, key in rows:
        value = result[key]
        lines.append(f"  {label:<11} {'-' if value is None else f'{100 * value:6.2f}'}")
    thr = result["threshold"]
    lines.append(f"  threshold   {'-' if thr is None else f'{thr:.6g}'}  ({d['threshold_rule']})")
    lines.append("  (values x100)")
    for key, reason in result["notes"].items():
        lines.append(f"  note: {key}: {reason}")
    return "\n".join(lines)
