"""`bench evaluate`: score saved anomaly maps against labels with the two-pass pipeline of `bench run`.

Predictions are ``<frame id>.npy`` (2-D float16/float32) or ``<frame id>.hdf5`` with a dataset ``value`` (the
SMIYC submission format, :mod:`.submission`), higher = more anomalous. They are paired either with label PNGs
``<frame id>.png`` in a folder (0 inlier, 1 anomaly, any other value void) or with a dataset's own labels and
label convention (``load_dataset``; predictions for frames without labels are skipped and counted). The metrics
come from :func:`maskbench.benchmark.passes.two_pass`, as `bench run`'s do, so float16 maps of the same frames
give the same numbers (every protocol but ``exact`` evaluates float16 scores). ``fpr95_rule`` picks the FPR95
rule of the exact protocols; ``bootstrap=B`` adds every metric's percentile bootstrap interval (``ci``) over the
frames ordered by their ids sorted as strings (:mod:`maskbench.metrics.bootstrap`).
"""

from pathlib import Path

import numpy as np

from maskbench.benchmark.passes import Resampling, default_workers, metric_values, two_pass, two_pass_bootstrap
from maskbench.benchmark.protocols import check_fpr95_rule, get_protocol, protocol_details, resolve_protocol
from maskbench.benchmark.replicates import DEFAULT_LEVEL, EVALUATE_ORDER, bootstrap_record
from maskbench.benchmark.submission import SUFFIX as HDF5_SUFFIX
from maskbench.benchmark.submission import VALUE as HDF5_VALUE
from maskbench.datasets import DATASETS, load_dataset
from maskbench.errors import ConfigError, InputError
from maskbench.fileio import read_hdf5_map, read_label_png, read_npy

PREDICTION_SUFFIXES = (".npy", HDF5_SUFFIX)
VALUE = "value"  # the one "scorer" of an evaluation


def predictions(pred_dir):
    """``{frame id: path}`` of the ``.npy`` / ``.hdf5`` files of ``pred_dir`` (an id given twice is an error)."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise InputError(f"prediction directory not found: {pred_dir}")
    found = {}
    for path in sorted(pred_dir.iterdir()):
        suffix = next((s for s in PREDICTION_SUFFIXES if path.name.endswith(s) and len(path.name) > len(s)), None)
        if suffix is None or not path.is_file():
            continue
        stem = path.name[:-len(suffix)]
        if stem in found:
            raise InputError(f"frame {stem}: two predictions, {found[stem].name} and {path.name}")
        found[stem] = path
    if not found:
        raise InputError(f"no <frame id>.npy or <frame id>.hdf5 files in {pred_dir}")
    return found


def _few(stems, n=8):
    return ", ".join(stems[:n]) + (f", ... (+{len(stems) - n} more)" if len(stems) > n else "")


def pair_frames(pred_dir, gt_dir):
    """``[(stem, pred_path, gt_path)]`` sorted by stem; every stem must have both files."""
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise InputError(f"ground-truth directory not found: {gt_dir}")
    preds = predictions(pred_dir)
    gts = {p.stem: p for p in gt_dir.glob("*.png")}
    only_pred, only_gt = sorted(preds.keys() - gts.keys()), sorted(gts.keys() - preds.keys())
    if only_pred or only_gt:
        lines = []
        if only_pred:
            lines.append(f"{len(only_pred)} prediction(s) without a label in {gt_dir}: {_few(only_pred)}")
        if only_gt:
            lines.append(f"{len(only_gt)} label(s) without a prediction in {pred_dir}: {_few(only_gt)}")
        raise InputError("unpaired stems: " + "; ".join(lines))
    return [(stem, preds[stem], gts[stem]) for stem in sorted(preds)]


def read_prediction(path):
    """A 2-D score map from ``.npy`` or ``.hdf5`` (``value``); the format is checked by signature, errors name the
    file."""
    path = Path(path)
    return read_hdf5_map(path, key=HDF5_VALUE) if path.name.endswith(HDF5_SUFFIX) else read_npy(path)


def _checked(stem, scores, labels, pred_path, label_name):
    if labels.shape != np.shape(scores):
        raise InputError(f"stem {stem}: score map {Path(pred_path).name} has shape {np.shape(scores)} "
                         f"but label {label_name} has shape {labels.shape}")
    return scores, labels


def read_png_pair(frame):
    """Reader (:mod:`.passes`) of ``(stem, pred_path, gt_path)``."""
    stem, pred_path, gt_path = frame
    scores, labels = _checked(stem, read_prediction(pred_path), read_label_png(gt_path, modes=("L", "P")), pred_path, gt_path.name)
    return f"{pred_path} / {gt_path.name}", labels, {VALUE: scores}


class DatasetPairs:
    """Reader (:mod:`.passes`) of ``(index, stem, pred_path)``: the labels of frame ``index`` of ``dataset``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __call__(self, frame):
        index, stem, pred_path = frame
        labels = self.dataset[index].ood
        where = f"{pred_path} / {self.dataset.name} frame {stem}"
        scores, labels = _checked(stem, read_prediction(pred_path), labels, pred_path, f"of {self.dataset.name}")
        return where, labels, {VALUE: scores}


def _evaluate(frames, stems, reader, proto, extra, *, fpr95_rule, bootstrap, seed, level, workers, progress):
    """The result of ``frames`` (``stems``: their ids, for the bootstrap order) with the fields ``extra``."""
    rule = check_fpr95_rule(proto, fpr95_rule)
    record = bootstrap_record(bootstrap, seed, level, EVALUATE_ORDER)
    workers = default_workers(len(frames)) if workers is None else max(1, workers)
    if record is None:
        pixel, comp = two_pass(frames, reader, [VALUE], proto, rule, workers=workers, progress=progress)
    else:
        position = {stem: p for p, stem in enumerate(sorted(stems))}
        pixel, comp, boot = two_pass_bootstrap(frames, [position[s] for s in stems], reader, [VALUE], proto, rule,
                                               Resampling(record["replicates"], record["seed"]), workers=workers,
                                               progress=progress)
        extra = {**extra, "bootstrap": record, "ci": boot[VALUE].intervals(record["level"])}
    return {"protocol": proto.name, "protocol_details": protocol_details(proto, pixel[VALUE]), "images": len(frames),
            **extra, **metric_values(pixel[VALUE], comp.get(VALUE))}


def evaluate_dirs(pred_dir, gt_dir, protocol, *, fpr95_rule=None, bootstrap=None, seed=0, level=DEFAULT_LEVEL,
                  workers=None, progress=None):
    """Evaluate every prediction in ``pred_dir`` against ``<stem>.png`` in ``gt_dir`` under ``protocol``.

    Returns the JSON-ready dict of `bench evaluate` (fractions; ``None`` where undefined). ``fpr95_rule``: a rule
    of :data:`~maskbench.metrics.exact_curve.FPR95_RULES` the protocol defines (None: ``first_geq``);
    ``bootstrap``: replicates B (None: off), with ``seed`` and ``level``: adds ``bootstrap`` (the settings) and
    ``ci`` (``{metric: {low, high, B, seed, level, undefined}}``). ``progress(label, total)`` -> object with
    ``update(n)`` and ``close()``, once per pass.
    """
    proto = get_protocol(protocol)
    frames = pair_frames(pred_dir, gt_dir)
    return _evaluate(frames, [f[0] for f in frames], read_png_pair, proto, {}, fpr95_rule=fpr95_rule,
                     bootstrap=bootstrap, seed=seed, level=level, workers=workers, progress=progress)


def dataset_pairs(pred_dir, dataset):
    """``(frames [(index, stem, path)], skipped {reason: count})``: the predictions of ``pred_dir`` paired with the
    labelled frames of ``dataset``. Every labelled frame needs a prediction; predictions of frames without labels
    (``dataset.info["unlabelled_ids"]``) are skipped and counted; a prediction of a frame the dataset does not
    list is an error."""
    preds = predictions(pred_dir)
    unlabelled_ids = set(dataset.info["unlabelled_ids"])
    frames, unlabelled, missing = [], 0, []
    for index, stem in enumerate(dataset.ids):
        if stem in unlabelled_ids:
            unlabelled += preds.pop(stem, None) is not None
        elif stem in preds:
            frames.append((index, stem, preds.pop(stem)))
        else:
            missing.append(stem)
    if missing:
        raise InputError(f"{len(missing)} labelled frame(s) of {dataset.name} without a prediction in {pred_dir}: "
                         f"{_few(missing)}")
    if preds:
        hint = "" if dataset.info["frames_option"] == "all" else " (all frames: dataset option frames=all)"
        raise InputError(f"{len(preds)} prediction(s) in {pred_dir} of frames {dataset.name} does not list: "
                         f"{_few(sorted(preds))}{hint}")
    return frames, {"unlabelled": unlabelled}


def evaluate_dataset(pred_dir, dataset, protocol=None, *, root=None, options=None, fpr95_rule=None, bootstrap=None,
                     seed=0, level=DEFAULT_LEVEL, workers=None, progress=None):
    """Evaluate the predictions in ``pred_dir`` against the labels of ``dataset`` (a name, read from ``root``
    with ``options``, or a loaded dataset); ``protocol`` None: the official protocol of the dataset's track.

    Predictions of frames without labels are skipped; the result counts them under ``skipped``. The other
    arguments as in :func:`evaluate_dirs` (the bootstrap resamples the evaluated frames, ids sorted as strings).
    """
    if isinstance(dataset, str):
        if dataset not in DATASETS.names():
            raise ConfigError("dataset", f" {dataset!r}: unknown; known datasets: {', '.join(DATASETS.names())}")
        options = {"frames": "all", **(options or {})}
        dataset = load_dataset(dataset, root, **options)
    track = dataset.info.get("track")
    if track not in ("anomaly", "obstacle") and protocol in (None, "official", "exact", "exact16"):
        raise ConfigError("dataset", f" {dataset.name}: no anomaly or obstacle track to take the protocol from; "
                          "name a protocol", mentions=("protocol",))
    proto = resolve_protocol(protocol, track) if track in ("anomaly", "obstacle") else get_protocol(protocol)
    frames, skipped = dataset_pairs(pred_dir, dataset)
    if not frames:
        raise InputError(f"no prediction in {pred_dir} belongs to a labelled frame of {dataset.name}")
    return _evaluate(frames, [f[1] for f in frames], DatasetPairs(dataset), proto,
                     {"dataset": dataset.name, "skipped": skipped}, fpr95_rule=fpr95_rule, bootstrap=bootstrap,
                     seed=seed, level=level, workers=workers, progress=progress)


def _interval(ci):
    """`` [low, high]`` x100 of a metric's interval ("" without one; ``n undefined`` replicates counted)."""
    if not ci:
        return ""
    if ci["low"] is None:
        return f"  [undefined in all {ci['B']} replicates]"
    undefined = f" ({ci['undefined']} replicates undefined)" if ci["undefined"] else ""
    return f"  [{100 * ci['low']:.2f}, {100 * ci['high']:.2f}]{undefined}"


def format_evaluation(result):
    """Readable summary of an evaluation; every number is labelled with its protocol."""
    d = result["protocol_details"]
    lines = [
        f"protocol {result['protocol']}: {d['description']}",
        f"{result['images']} images, {result['n_pixels']} non-void pixels ({result['n_positive']} anomalous); "
        f"scores {d['score_dtype']}; FPR95 rule {d['fpr95_rule']}; {d['resolution']}",
    ]
    for reason, count in (result.get("skipped") or {}).items():
        if count:
            lines.append(f"skipped {count} prediction(s): {reason}")
    rows = [("AP", "AP"), ("FPR95", "FPR95"), ("AUROC", "AUROC"), ("sIoU", "sIoU"), ("PPV", "PPV"),
            ("mean F1*", "F1"), ("MDM F1>0.6", "MDM_F1_60"), ("MDM F1>0.7", "MDM_F1_70")]
    ci = result.get("ci") or {}
    for label, key in rows:
        value = result[key]
        lines.append(f"  {label:<11} {'-' if value is None else f'{100 * value:6.2f}'}{_interval(ci.get(key))}")
    thr = result["threshold"]
    lines.append(f"  threshold   {'-' if thr is None else f'{thr:.6g}'}  ({d['threshold_rule']})")
    lines.append("  (values x100)")
    if ci:
        b = result["bootstrap"]
        lines.append(f"  [low, high]: {b['level']:g}% percentile bootstrap interval, {b['replicates']} replicates, "
                     f"seed {b['seed']}; frame order: {b['frame_order']}")
    for key, reason in result["notes"].items():
        lines.append(f"  note: {key}: {reason}")
    return "\n".join(lines)


__all__ = ["DatasetPairs", "dataset_pairs", "evaluate_dataset", "evaluate_dirs", "format_evaluation",
           "pair_frames", "predictions", "read_png_pair", "read_prediction"]
