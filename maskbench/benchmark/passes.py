"""The two-pass metric pipeline of anomaly segmentation, shared by `bench run` and `bench evaluate`.

As the official SMIYC code: pass 1 accumulates the pixel curve of every scorer over the stored frames (AP,
AUROC, FPR95, MDM and the split's best-F1 threshold); pass 2 binarises every frame at its scorer's threshold
(strict ``s > t``, compared in the protocol's score dtype) and accumulates the component metrics (sIoU, PPV,
F1*). Frames come from a *reader*: a picklable callable ``reader(frame) -> (where, labels, {scorer: scores})``
(``where`` names the frame's files in errors). :func:`accumulate_frame` is the single step that feeds one
frame to the accumulators, so per-frame accumulator states (resampling, other aggregations) come from the same
stored frames. Chunks of frames run in worker processes through :func:`map_merge`; accumulators merge exactly
and order-independently, so neither the number of workers nor the number of torchrun ranks changes a number.
"""

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from maskbench.errors import InputError
from maskbench.metrics.components import ComponentAccumulator
from maskbench.metrics.pixel import PixelAccumulator

#: Metric keys of an anomaly-segmentation result (the `bench evaluate` JSON keys), in table order.
METRIC_KEYS = ("AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70", "threshold")
#: Below this many frames a process pool costs more than it saves.
MIN_FRAMES_PER_WORKER = 4


class PerScorer(dict):
    """``{scorer: accumulator}`` that merges key by key (so it can go through :func:`map_merge` and a gather)."""

    def merge(self, other):
        for name, acc in other.items():
            self[name].merge(acc)
        return self


def labelled(labels):
    """Pixels labelled 0 (inlier) or 1 (anomaly): the only ones whose scores any metric reads."""
    return (labels == 0) | (labels == 1)


def read_stored_frame(frame):
    """Reader of the frames `bench run` stores: ``(index, path)`` of an ``.npz`` with ``ood`` (the labels) and,
    per scorer, the scores of the labelled pixels; void pixels come back as 0 (never read by the metrics)."""
    index, path = frame
    with np.load(path, allow_pickle=False) as z:
        labels = z["ood"]
        roi = labelled(labels)
        maps = {}
        for name in z.files:
            if name != "ood":
                maps[name] = np.zeros(labels.shape, z[name].dtype)
                maps[name][roi] = z[name]
    return f"frame {index} ({path})", labels, maps


def accumulate_frame(accs, where, labels, maps):
    """Feed one frame to ``accs`` (``{scorer: accumulator}``); errors name the frame and, among several, the
    scorer."""
    for name, acc in accs.items():
        try:
            acc.update(maps[name], labels)
        except InputError as err:
            raise InputError(f"{where}, scorer {name}: {err}" if len(accs) > 1 else f"{where}: {err}") from err
    return accs


def _pixel_chunk(frames, reader, names, pixel_protocol, fpr95_rule):
    accs = PerScorer({n: PixelAccumulator(pixel_protocol, fpr95_rule=fpr95_rule) for n in names})
    for frame in frames:
        accumulate_frame(accs, *reader(frame))
    return accs


def _component_chunk(frames, reader, thresholds, track, score_dtype):
    accs = PerScorer({n: ComponentAccumulator(t, track=track, score_dtype=score_dtype) for n, t in thresholds.items()})
    for frame in frames:
        accumulate_frame(accs, *reader(frame))
    return accs


def map_merge(func, frames, args, workers, progress):
    """Run ``func(chunk, *args)`` over contiguous chunks of ``frames`` and merge the accumulators it returns.

    With ``workers > 1`` the chunks run in a process pool; merging is exact, so the result is the same.
    ``progress(n)`` is called with the size of each finished chunk.
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


def _one_process(acc):
    return acc


def two_pass(frames, reader, names, protocol, fpr95_rule, *, workers=1, progress=None, combine=_one_process):
    """Pixel and component results ``({scorer: PixelResult}, {scorer: ComponentResult})`` of ``frames``.

    ``protocol``: an :class:`~maskbench.benchmark.protocols.EvalProtocol`. ``progress(label, total)`` -> an
    object with ``update(n)`` and ``close()``, or None. ``combine(accumulators)`` merges this process's
    accumulators with those of the other torchrun ranks (all ranks call it; every rank gets the merge).
    Scorers without a best-F1 threshold (undefined pixel curve) get no component result.
    """
    score_dtype = protocol.score_dtype
    pixel_accs = _run_pass("pixel metrics", frames, _pixel_chunk, (reader, names, protocol.pixel, fpr95_rule),
                           PerScorer({n: PixelAccumulator(protocol.pixel, fpr95_rule=fpr95_rule) for n in names}),
                           workers, progress)
    pixel = {n: acc.compute() for n, acc in combine(pixel_accs).items()}
    thresholds = {n: pixel[n].threshold for n in names if pixel[n].threshold is not None}
    comp_accs = _run_pass("component metrics", frames, _component_chunk,
                          (reader, thresholds, protocol.track, score_dtype),
                          PerScorer({n: ComponentAccumulator(t, track=protocol.track, score_dtype=score_dtype)
                                     for n, t in thresholds.items()}), workers, progress)
    comp = {n: acc.compute() for n, acc in combine(comp_accs).items()}
    return pixel, comp


def _run_pass(label, frames, func, args, empty, workers, progress):
    if not frames:
        return empty
    bar = progress(label, len(frames)) if progress else None
    try:
        return map_merge(func, frames, args, workers, bar.update if bar else lambda n: None)
    finally:
        if bar:
            bar.close()


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


__all__ = ["METRIC_KEYS", "PerScorer", "accumulate_frame", "default_workers", "labelled", "map_merge",
           "metric_values", "read_stored_frame", "two_pass"]
