"""Literal, slow transcription of the official SMIYC component metrics (the independent reference).

It re-states, loop for loop, the algorithm of road-anomaly-benchmark ``metrics/instance_segmentation.py``
(``default_instancer``, ``segment_metrics``, ``MetricSegment.aggregate``; HEAD 1c7804e) as written down in
``metrics.md`` §1.3: every quantity is obtained with full-image boolean masks, ``np.isin`` and one loop per
connected component, O(#components x #pixels). It shares no code with ``maskbench.metrics.components`` and is
used by ``tests/metrics/components`` (imported by file path) and ``benchmarks/bench_components.py``.

Only two deliberate departures, both documented in metrics.md §9:
* ``>`` runs in the dtype numpy 1.x (the official numpy) picks by value-based casting,
  ``result_type(map dtype, min_scalar_type(threshold))``: float16 for a float16 map and |t| < 65000; numpy 2
  would compare a float16 map with an ``np.float64`` threshold in float64;
* ``label_pixel_gt`` must already be 0 / 1 / 255 (the official loader maps every other PNG value to 255).
"""

import numpy as np
from scipy.ndimage import label

OFFICIAL_TAUS = np.linspace(0.25, 0.75, 11, endpoint=True)


def official_instancer(anomaly_p, label_pixel_gt, thresh_p, thresh_segsize, thresh_instsize=0):
    """Return (GT instance ids, predicted instance ids) of the ROI pixels, like ``default_instancer``."""
    # numpy 1.x value-based casting: ``anomaly_p > thresh_p`` runs in result_type(map, min_scalar_type(thresh_p))
    compare_type = np.result_type(anomaly_p.dtype, np.min_scalar_type(thresh_p))
    scores, thresh = anomaly_p.astype(compare_type), compare_type.type(thresh_p)
    segmentation = np.copy(anomaly_p)
    segmentation[scores > thresh] = 1
    segmentation[scores <= thresh] = 0

    gt_binary = np.zeros(label_pixel_gt.shape)
    gt_binary[label_pixel_gt == 1] = 1
    pred_binary = np.zeros(label_pixel_gt.shape)
    pred_binary[segmentation == 1] = 1
    pred_binary[label_pixel_gt == 255] = 0  # void zeroed before labelling

    eight = np.ones((3, 3), dtype=np.uint8)
    gt_instances, n_gt = label(gt_binary, eight)
    pred_instances, n_pred = label(pred_binary, eight)

    if thresh_segsize is not None:  # size of a predicted component on the full image grid
        original = np.copy(pred_instances)
        for comp in range(n_pred + 1):
            if np.count_nonzero(original == comp) < thresh_segsize:
                pred_instances[original == comp] = 0
    original = np.copy(gt_instances)
    labels = label_pixel_gt.copy()
    for comp in range(n_gt + 1):  # comp 0 (background) is tested too
        if np.count_nonzero(original == comp) < thresh_instsize:
            labels[original == comp] = 255

    roi = labels < 255
    return gt_instances[roi], pred_instances[roi]


def official_segment_metrics(gt_ids, pred_ids, taus=OFFICIAL_TAUS):
    """Per-component sIoU / PPV and per-tau TP / FN / FP of one frame, like ``segment_metrics``."""
    siou_gt = []
    for i in np.unique(gt_ids[gt_ids > 0]):
        covering = pred_ids[gt_ids == i]
        touching = np.unique(covering[covering != 0])
        intersection = len(covering[np.isin(covering, touching)])
        other_gt = ~np.isin(gt_ids, [0, i])
        adjustment = len(pred_ids[np.logical_and(other_gt, np.isin(pred_ids, touching))])
        union = np.sum(np.isin(pred_ids, touching)) + np.sum(gt_ids == i) - intersection - adjustment
        siou_gt.append(intersection / union)

    siou_pred, prec_pred = [], []
    for j in np.unique(pred_ids[pred_ids > 0]):
        covered = gt_ids[pred_ids == j]
        touched = np.unique(covered[covered != 0])
        intersection = len(covered[np.isin(covered, touched)])
        other_pred = ~np.isin(pred_ids, [0, j])
        adjustment = len(gt_ids[np.logical_and(other_pred, np.isin(gt_ids, touched))])
        union = np.sum(np.isin(gt_ids, touched)) + np.sum(pred_ids == j) - intersection - adjustment
        siou_pred.append(intersection / union)
        prec_pred.append(intersection / np.sum(pred_ids == j))

    result = {"sIoU_gt": np.array(siou_gt), "sIoU_pred": np.array(siou_pred), "prec_pred": np.array(prec_pred)}
    for t in taus:
        key = str(int(t * 100))
        result["tp_" + key] = np.count_nonzero(result["sIoU_gt"] >= t)
        result["fn_" + key] = np.count_nonzero(result["sIoU_gt"] < t)
        result["fp_" + key] = np.count_nonzero(result["prec_pred"] < t)
    return result


def official_frame(anomaly_p, label_pixel_gt, thresh_p, thresh_segsize, thresh_instsize):
    """``default_instancer`` followed by ``segment_metrics`` on one frame."""
    gt_ids, pred_ids = official_instancer(anomaly_p, label_pixel_gt, thresh_p, thresh_segsize, thresh_instsize)
    return official_segment_metrics(gt_ids, pred_ids)


def official_aggregate(frame_results, taus=OFFICIAL_TAUS):
    """Dataset figures like ``MetricSegment.aggregate``: pooled means, counts summed per tau, F1 averaged."""
    def pooled_mean(key):
        return sum(np.sum(r[key]) for r in frame_results) / sum(len(r[key]) for r in frame_results)

    out = {"sIoU_gt": pooled_mean("sIoU_gt"), "sIoU_pred": pooled_mean("sIoU_pred"),
           "prec_pred": pooled_mean("prec_pred"), "tp": [], "fn": [], "fp": [], "f1": [], "f1_mean": 0.0}
    for t in taus:
        key = str(int(t * 100))
        tp = sum(r["tp_" + key] for r in frame_results)
        fn = sum(r["fn_" + key] for r in frame_results)
        fp = sum(r["fp_" + key] for r in frame_results)
        f1 = (2 * tp) / (2 * tp + fn + fp)
        out["tp"].append(tp)
        out["fn"].append(fn)
        out["fp"].append(fp)
        out["f1"].append(f1)
        out["f1_mean"] += f1
    out["f1_mean"] /= len(taus)
    return out
