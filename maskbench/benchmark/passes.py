"""The two-pass metric pipeline of anomaly segmentation, shared by `bench run` and `bench evaluate`.

As the official SMIYC code: pass 1 accumulates the pixel curve of every scorer over the stored frames (AP,
AUROC, FPR95, MDM and the split's best-F1 threshold); pass 2 binarises every frame at its scorer's threshold
(strict ``s > t``, compared in the protocol's score dtype) and accumulates the component metrics (sIoU, PPV,
F1*). Frames come from a *reader*: a picklable callable ``reader(frame) -> (where, labels, {scorer: scores})``
(``where`` names the frame's files in errors). :func:`accumulate_frame` is the single step that feeds one
frame to the accumulators, so per-frame accumulator states (resampling, other aggregations) come from the same
stored frames. Chunks of frames run in worker processes through :func:`maskbench.workers.map_merge` (workers
ignore Ctrl-C and die with the main process); accumulators merge exactly and order-independently, so neither the
number of workers nor the number of torchrun ranks changes a number.

:func:`two_pass_bootstrap` adds the percentile bootstrap of :mod:`maskbench.metrics.bootstrap` to the same two
reads of every frame: each frame's mergeable state is kept under its position in the resampling order, so the
replicates (the same draws for every scorer) do not depend on how frames were split among workers or ranks.
"""

import os
from dataclasses import dataclass

import numpy as np

from maskbench.errors import InputError
from maskbench.fileio import read_npz
from maskbench.metrics.bootstrap import BootstrapComponents, BootstrapPixels
from maskbench.metrics.components import ComponentAccumulator
from maskbench.metrics.pixel import PixelAccumulator
from maskbench.workers import map_merge

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
    arrays = read_npz(path)
    labels = arrays.pop("ood")
    roi = labelled(labels)
    maps = {}
    for name, scores in arrays.items():
        maps[name] = np.zeros(labels.shape, scores.dtype)
        maps[name][roi] = scores
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


@dataclass(frozen=True)
class Resampling:
    """Bootstrap settings of :func:`two_pass_bootstrap`: ``n_replicates`` (B) and ``seed`` of the draws."""

    n_replicates: int
    seed: int


class ComponentPass(PerScorer):
    """Component accumulators plus each scorer's highest score over the labelled pixels (``top``), which tells
    when the threshold leaves no pixel above it (:func:`nothing_above`)."""

    def __init__(self, accs, score_dtype):
        super().__init__(accs)
        self.score_dtype = np.dtype(score_dtype)
        self.top = {}

    def observe(self, labels, maps):
        roi = labelled(labels)
        if roi.any():
            for name in self:
                self._raise_top(name, float(maps[name][roi].astype(self.score_dtype, copy=False).max()))

    def _raise_top(self, name, value):
        self.top[name] = value if name not in self.top else max(self.top[name], value)

    def merge(self, other):
        super().merge(other)
        for name, value in other.top.items():
            self._raise_top(name, value)
        return self


def nothing_above(threshold, top, score_dtype):
    """Whether no score up to ``top`` exceeds ``threshold`` as the components compare them (``s > t`` in the score
    dtype with numpy-1 scalar semantics, as :meth:`~maskbench.metrics.pixel_result.PixelResult.binarize`)."""
    cmp_dtype = np.promote_types(score_dtype, np.min_scalar_type(threshold))
    return not cmp_dtype.type(top) > cmp_dtype.type(threshold)


#: Note of a scorer whose best-F1 threshold is its highest score (e.g. a binary map).
THRESHOLD_AT_MAX = ("the best-F1 threshold {t!r} is the highest score of the labelled pixels: the official strict "
                    "rule s > t leaves no predicted pixel, so sIoU and F1* are 0 and PPV is undefined (typical of a "
                    "binary or few-valued map; the pixel metrics are not affected)")


class _Pass:
    """One pass's accumulators ``{scorer: accumulator}`` and, when resampling, per-frame bootstrap states."""

    def __init__(self, accs, boots=None):
        self.accs, self.boots = accs, boots

    def feed(self, position, where, labels, maps):
        accumulate_frame(self.accs, where, labels, maps)
        if self.boots is not None:
            for name, boot in self.boots.items():
                try:
                    boot.update(position, maps[name], labels)
                except InputError as err:
                    raise InputError(f"{where}, scorer {name}: {err}") from err

    def merge(self, other):
        self.accs.merge(other.accs)
        if self.boots is not None:
            self.boots.merge(other.boots)
        return self


def _pixel_pass(names, pixel_protocol, fpr95_rule, resample):
    boots = PerScorer({n: BootstrapPixels(pixel_protocol, fpr95_rule=fpr95_rule) for n in names}) if resample else None
    return _Pass(PerScorer({n: PixelAccumulator(pixel_protocol, fpr95_rule=fpr95_rule) for n in names}), boots)


def _component_pass(thresholds, track, score_dtype, boot_thresholds):
    boots = None if boot_thresholds is None else PerScorer(
        {n: BootstrapComponents(t, track=track, score_dtype=score_dtype) for n, t in boot_thresholds.items()})
    return _Pass(ComponentPass({n: ComponentAccumulator(t, track=track, score_dtype=score_dtype)
                                for n, t in thresholds.items()}, score_dtype), boots)


class _Union(dict):
    """``{scorer: result}`` parts that merge by union (per-scorer work through :func:`map_merge`)."""

    def merge(self, other):
        self.update(other)
        return self


def _replicate_chunk(items, n_replicates, seed):
    return _Union({name: boot.replicates(n_replicates, seed) for name, boot in items})


def _finish_chunk(items):
    return _Union({name: replicates.finish(components) for name, replicates, components in items})


def _pixel_chunk(items, reader, names, pixel_protocol, fpr95_rule, resample):
    state = _pixel_pass(names, pixel_protocol, fpr95_rule, resample)
    for position, frame in items:
        state.feed(position, *reader(frame))
    return state


def _component_chunk(items, reader, thresholds, track, score_dtype, boot_thresholds):
    state = _component_pass(thresholds, track, score_dtype, boot_thresholds)
    for position, frame in items:
        where, labels, maps = reader(frame)
        state.feed(position, where, labels, maps)
        state.accs.observe(labels, maps)
    return state


def default_workers(n_frames):
    """Processes pay off only with several frames per worker and more than one core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cores, n_frames // MIN_FRAMES_PER_WORKER))


def _one_process(acc):
    return acc


class _OneProcess:
    """The ranks of a single process (:func:`two_pass_bootstrap`'s ``dist``): it owns every scorer."""

    @staticmethod
    def shard(items):
        return list(items)

    @staticmethod
    def gather(obj):
        return [obj]


def two_pass(frames, reader, names, protocol, fpr95_rule, *, workers=1, progress=None, combine=_one_process):
    """Pixel and component results ``({scorer: PixelResult}, {scorer: ComponentResult})`` of ``frames``.

    ``protocol``: an :class:`~maskbench.benchmark.protocols.EvalProtocol`. ``progress(label, total)`` -> an
    object with ``update(n)`` and ``close()``, or None. ``combine(accumulators)`` merges this process's
    accumulators with those of the other torchrun ranks (all ranks call it; every rank gets the merge).
    Scorers without a best-F1 threshold (undefined pixel curve) get no component result.
    """
    pixel, comp, _ = _passes([(None, f) for f in frames], reader, names, protocol, fpr95_rule, None, workers,
                             progress, combine, _OneProcess)
    return pixel, comp


def two_pass_bootstrap(frames, positions, reader, names, protocol, fpr95_rule, resampling, *, workers=1,
                       progress=None, combine=_one_process, dist=_OneProcess):
    """:func:`two_pass` plus ``{scorer: BootstrapResult}`` (:mod:`maskbench.metrics.bootstrap`) of the same reads.

    ``positions[i]``: the place of ``frames[i]`` in the resampling order (0..F-1 over the frames of every rank:
    ``per_image.jsonl`` order for a run, stems sorted as strings for `bench evaluate`); ``resampling``: a
    :class:`Resampling`. ``dist`` (``shard(items)``, ``gather(obj)``, as :class:`~.distributed.Dist`) splits the
    replicate computations among torchrun ranks by scorer; every rank gets every result.
    """
    if len(positions) != len(frames):
        raise InputError(f"bootstrap: {len(positions)} positions for {len(frames)} frames")
    return _passes(list(zip(positions, frames)), reader, names, protocol, fpr95_rule, resampling, workers, progress,
                   combine, dist)


def _passes(items, reader, names, protocol, fpr95_rule, resampling, workers, progress, combine, dist):
    score_dtype, resample = protocol.score_dtype, resampling is not None
    pixel_state = combine(_run_pass("pixel metrics", items, _pixel_chunk,
                                    (reader, names, protocol.pixel, fpr95_rule, resample),
                                    _pixel_pass(names, protocol.pixel, fpr95_rule, resample), workers, progress))
    pixel = {n: acc.compute() for n, acc in pixel_state.accs.items()}
    thresholds = {n: pixel[n].threshold for n in names if pixel[n].threshold is not None}
    replicates, boot_thresholds = {}, None
    if resample:  # each rank resamples its share of the scorers (in its workers); pass 2 needs every threshold
        mine = [(n, pixel_state.boots[n]) for n in dist.shard(names)]
        replicates = _run_pass("bootstrap replicates", mine, _replicate_chunk,
                               (resampling.n_replicates, resampling.seed), _Union(), min(workers, len(mine)), progress)
        boot_thresholds = _gathered(dist, {n: r.thresholds() for n, r in replicates.items()})
        boot_thresholds = {n: t for n, t in boot_thresholds.items() if t}
    comp_state = combine(_run_pass("component metrics", items, _component_chunk,
                                   (reader, thresholds, protocol.track, score_dtype, boot_thresholds),
                                   _component_pass(thresholds, protocol.track, score_dtype, boot_thresholds),
                                   workers, progress))
    comp = {n: acc.compute() for n, acc in comp_state.accs.items()}
    for n, result in comp.items():
        if n in comp_state.accs.top and nothing_above(thresholds[n], comp_state.accs.top[n], score_dtype):
            result.notes["threshold_at_max"] = THRESHOLD_AT_MAX.format(t=thresholds[n])
    if not resample:
        return pixel, comp, None
    todo = [(n, r, comp_state.boots.get(n)) for n, r in replicates.items()]
    finished = _run_pass("bootstrap components", todo, _finish_chunk, (), _Union(), min(workers, len(todo)), progress)
    boot = _gathered(dist, finished)
    return pixel, comp, {n: boot[n] for n in names}


def _gathered(dist, part):
    """``{name: value}`` of every rank's ``part``, on every rank."""
    merged = {}
    for piece in dist.gather(part):
        merged.update(piece)
    return merged


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


__all__ = ["METRIC_KEYS", "THRESHOLD_AT_MAX", "ComponentPass", "PerScorer", "Resampling", "accumulate_frame",
           "default_workers", "labelled", "map_merge", "metric_values", "nothing_above", "read_stored_frame", "two_pass",
           "two_pass_bootstrap"]
