"""Task ``open-semantic``: open-set semantic segmentation on StreetHazards (Mask2Anomaly TPAMI'24 Table 3 layout,
DenseHybrid protocol), for every scorer, from one forward per frame.

1. per frame (resumable): the closed-set prediction ``argmax_k S_k`` (``S`` averaged over the TTA views), every
   scorer's anomaly map (float32, image size) and the labels, stored in ``work/<index>.npz``;
2. pass 1 over the stored frames: closed-set IoU, the pooled anomaly curve and the Hendrycks per-image AP /
   AUROC / FPR95 (closest point; :class:`~maskbench.metrics.per_image.PerImageAccumulator`, means over the frames
   with both anomaly and inlier pixels), and per town the half-resolution calibration curve; threshold of town
   t = first ``roc_curve(drop_intermediate=True)`` point with TPR > 0.95 on the *other* town
   (``tpr95_threshold``);
3. pass 2: open-IoU of each town at its threshold (strict ``score > t``, full resolution, Eq. 16), their
   image-weighted mean.
"""

import numpy as np
import torch

from maskbench.benchmark.frame import over_views
from maskbench.benchmark.passes import map_merge
from maskbench.benchmark.results import write_npz_atomic
from maskbench.benchmark.tasks.base import TASKS, Task
from maskbench.errors import ConfigError, InputError
from maskbench.metrics.open_iou import ClosedIoU, OpenIoU, image_weighted_miou
from maskbench.metrics.per_image import PerImageAccumulator
from maskbench.metrics.pixel import PixelAccumulator, tpr95_threshold
from maskbench.openset import half_resolution, open_set_prediction, semantic_scores
from maskbench.scorers import score_all

TOWNS = ("t5", "t6")
PROTOCOL = "streethazards-open-semantic"
DESCRIPTION = ("DenseHybrid open-IoU (threshold at TPR>0.95 after drop_intermediate on the other town at half "
               "resolution, strict score > t), closed-set mIoU, pooled exact AP/AUROC/FPR95 and Hendrycks "
               "per-image means")
#: Metric keys of a result, in Table 3 order (fractions; FPR lower is better); the calibrated thresholds are in
#: ``protocol_details["calibration"]``.
KEYS = ("AP", "FPR95", "AUROC", "AP_per_image", "FPR95_per_image", "AUROC_per_image", "mIoU_closed",
        "open_mIoU_t5", "open_mIoU_t6", "open_mIoU", "anomaly_IoU_t5", "anomaly_IoU_t6")
_SEMANTIC = ("semantic scores",)  # key of S among the per-view maps (never a scorer name)


def open_semantic_gt(sample, num_known):
    """DenseHybrid open-set labels: ``0..K-1`` known (``semantic``), ``K`` anomaly (``ood == 1``), ``K+1`` ignore."""
    if sample.semantic is None:
        raise InputError(f"frame {sample.id!r}: the dataset has no semantic labels (open-set semantic needs them)")
    gt = sample.semantic.astype(np.int64)
    if gt[gt != 255].max(initial=0) >= num_known:
        raise InputError(f"frame {sample.id!r}: semantic ids reach {int(gt[gt != 255].max())} but the model has "
                         f"{num_known} known classes")
    gt[gt == 255] = num_known + 1
    gt[sample.ood == 1] = num_known
    return gt.astype(np.uint8)


def town_of(frame_id):
    town = frame_id.partition("_")[0]
    if town not in TOWNS:
        raise InputError(f"frame {frame_id!r}: not a StreetHazards t5/t6 frame id")
    return town


class _Pooled:
    """Pass-1 accumulators: closed-set IoU, pooled and per-image anomaly metrics and per-town calibration curve
    of each scorer."""

    def __init__(self, names, num_known, rule):
        self.closed = ClosedIoU(num_known)
        self.anomaly = {s: PerImageAccumulator(pooled_fpr95_rule=rule) for s in names}
        self.calib = {t: {s: PixelAccumulator("exact", fpr95_rule="strict_dropint") for s in names} for t in TOWNS}

    def merge(self, other):
        self.closed.merge(other.closed)
        for s, acc in other.anomaly.items():
            self.anomaly[s].merge(acc)
        for t in TOWNS:
            for s, acc in other.calib[t].items():
                self.calib[t][s].merge(acc)
        return self


class _Open(dict):
    """Pass-2 accumulators ``{(scorer, town): OpenIoU}``."""

    def merge(self, other):
        for key, acc in other.items():
            self[key].merge(acc)
        return self


def _pass1(frames, names, num_known, rule):
    state = _Pooled(names, num_known, rule)
    for index, town, path in frames:
        with np.load(path, allow_pickle=False) as z:
            gt = z["gt"]
            state.closed.update(gt, z["closed"])
            calib_labels = np.where(gt == num_known + 1, 255, (gt == num_known).astype(np.uint8)).astype(np.uint8)
            for s in names:
                m = z[s]
                small, small_lab = half_resolution(torch.from_numpy(m), torch.from_numpy(calib_labels))
                state.calib[town][s].update(small.numpy(), small_lab.numpy())
                state.anomaly[s].update(m, z["ood"], key=index)
    return state


def _pass2(frames, thresholds, num_known):
    accs = _Open({key: OpenIoU(num_known) for key in thresholds})
    for _, town, path in frames:
        with np.load(path, allow_pickle=False) as z:
            for (s, t), threshold in thresholds.items():
                if t == town:
                    pred = open_set_prediction(torch.from_numpy(z["closed"]), torch.from_numpy(z[s]), threshold,
                                               num_known)
                    accs[s, t].update(z["gt"], pred.numpy().astype(np.uint8))
    return accs


@TASKS.register
class OpenSemanticTask(Task):
    name = "open-semantic"
    summary = "open-set semantic segmentation on StreetHazards: open-mIoU, closed mIoU, pooled and per-image AP"
    requires = ("ood", "semantic")
    unused = ("protocol", "save_maps")
    table_metrics = ("AP", "FPR95", "mIoU_closed", "open_mIoU_t5", "open_mIoU_t6", "open_mIoU")
    csv_keys = KEYS
    resume_fields = ("fpr95_rule",)

    def configure(self, config, dataset_cls):
        if dataset_cls.name != "streethazards":
            raise ConfigError("dataset", f" {dataset_cls.name}: open-semantic is the StreetHazards track (towns t5/t6)")
        self.rule = config.fpr95_rule or "strict_dropint"
        PixelAccumulator("exact", fpr95_rule=self.rule)
        return {"protocol": PROTOCOL, "fpr95_rule": self.rule,
                "threshold_rule": "other town, scale 0.5 (bilinear scores, nearest labels), ignore dropped, first "
                                  "roc_curve(drop_intermediate) point with TPR > 0.95"}

    def frame(self, run, index, sample):
        town = town_of(sample.id)
        names = list(run.scorers)

        def compute(class_logits, mask_logits, single):
            maps = {k: v.float() for k, v in score_all(run.scorers, class_logits, mask_logits).items()}
            return {**maps, _SEMANTIC: semantic_scores(class_logits, mask_logits)}

        maps = over_views(sample, run.source, run.config.tta, compute)
        scores = maps.pop(_SEMANTIC)
        num_known = scores.shape[0]
        gt = open_semantic_gt(sample, num_known)
        closed = scores.argmax(axis=0).astype(np.uint8)
        row = {"town": town, "classes": num_known, "height": int(gt.shape[0]), "width": int(gt.shape[1]),
               "n_anomaly": int((sample.ood == 1).sum()),
               "scores": {s: {"min": float(maps[s].min()), "max": float(maps[s].max())} for s in names}}
        write_npz_atomic(run.work_file(index), closed=closed, gt=gt, ood=sample.ood, **maps)
        return row

    def finish(self, run, indices, rows):
        names = list(run.scorers)
        classes = {r["classes"] for r in rows.values()}
        if len(classes) != 1:
            raise InputError(f"{run.dataset.name}: the model gave {sorted(classes)} classes on different frames")
        num_known = classes.pop()
        towns = {t: [i for i in sorted(rows) if rows[i]["town"] == t] for t in TOWNS}
        frames = [(i, rows[i]["town"], run.work_file(i)) for i in indices]
        workers = run.workers(len(frames))
        state = run.combine(map_merge(_pass1, frames, (names, num_known, self.rule), workers, lambda n: None)
                            if frames else _Pooled(names, num_known, self.rule))
        thresholds, todo = {}, {}
        for s in names:
            for town, other in zip(TOWNS, TOWNS[::-1]):
                cal = tpr95_threshold(state.calib[other][s], "strict_dropint") if towns[other] else None
                thresholds[s, town] = cal
                if towns[town] and cal is not None:
                    todo[s, town] = cal[0]
        accs = run.combine(map_merge(_pass2, frames, (todo, num_known), workers, lambda n: None)
                           if frames else _Open({key: OpenIoU(num_known) for key in todo}))
        open_results = {key: accs[key].compute() if key in todo else None for key in thresholds}
        closed = state.closed.compute()
        anomaly = {s: state.anomaly[s].compute() for s in names}
        entries = [self._entry(run, s, anomaly[s], rows, towns, closed, thresholds, open_results) for s in names]
        return entries, {s: (*anomaly[s]["pooled"].pr_curve(), *anomaly[s]["pooled"].roc_curve()) for s in names}

    def _entry(self, run, s, a, rows, towns, closed, thresholds, open_results):
        """One results.json entry (a Table 3 row) of scorer ``s`` with pooled and per-image result ``a``."""
        n = len(rows)
        metrics = {k: a[k] for k in ("AP", "FPR95", "AUROC", "AP_per_image", "AUROC_per_image", "FPR95_per_image")}
        notes = dict(a["notes"])
        if a["AP_per_image"] is None:
            notes["AP_per_image"] = "no frame has both anomaly and inlier pixels"
        metrics["mIoU_closed"] = closed["miou"]
        subsets = []
        for town, other in zip(TOWNS, TOWNS[::-1]):
            r = open_results[s, town]
            metrics[f"open_mIoU_{town}"] = r["open_miou"] if r else None
            metrics[f"anomaly_IoU_{town}"] = r["anomaly_iou"] if r else None
            if not towns[town]:
                notes[f"open_mIoU_{town}"] = f"no {town} frame evaluated"
            elif thresholds[s, town] is None:
                notes[f"open_mIoU_{town}"] = (f"no threshold: no {other} frame evaluated" if not towns[other]
                                              else f"no threshold: no anomaly pixel in the {other} calibration frames")
            if r is not None and r["open_miou"] is not None:
                subsets.append((r["open_miou"], len(towns[town])))
        both = all(open_results[s, t] is not None for t in TOWNS)
        metrics["open_mIoU"] = image_weighted_miou(subsets) if both else None
        if not both:
            notes["open_mIoU"] = "needs the open-mIoU of both towns"
        metrics["images"] = n
        details = {
            "description": DESCRIPTION,
            "pooled": {"protocol": "exact pooled float32 curve", "fpr95_rule": self.rule,
                       "labels": run.dataset.info.get("label_convention")},
            "per_image": "Hendrycks anomaly-seg: per-frame AP, AUROC, FPR95 (closest point), mean over frames",
            "open_iou": next((r["protocol"] for t in TOWNS if (r := open_results[s, t])), None),
            "closed_iou": closed["protocol"],
            "calibration": {town: None if thresholds[s, town] is None else
                            {"calibrated_on": other, "threshold": thresholds[s, town][0],
                             "tpr": thresholds[s, town][1], "fpr": thresholds[s, town][2]}
                            for town, other in zip(TOWNS, TOWNS[::-1])},
            "per_class_open_iou": {t: open_results[s, t]["iou"] if open_results[s, t] else None for t in TOWNS},
            "per_class_closed_iou": closed["iou"],
            "images": {t: len(towns[t]) for t in TOWNS},
        }
        return {"scorer": s, "dataset": run.config.dataset, "protocol": PROTOCOL, "metrics": metrics,
                "protocol_details": details, "notes": {**run.scorer_notes.get(s, {}), **notes}}
