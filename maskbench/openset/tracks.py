"""Open-set track drivers: a forward, a dataset and scorers in, a results directory (RESULTS_SCHEMA.md) out.

``forward(image uint8 (H, W, 3)) -> (class logits (Q, K+1), mask logits (Q, H, W))`` as `bench run` uses it.

:func:`run_open_semantic` (StreetHazards, Mask2Anomaly TPAMI'24 Table 3 layout; DenseHybrid protocol):

1. every frame: closed-set prediction ``argmax_k S_k`` and every scorer's anomaly map (float32, image size),
   kept in ``OUT/work`` until the end;
2. per scorer and town: the pooled half-resolution calibration curve; threshold = first
   ``roc_curve(drop_intermediate=True)`` point with TPR > 0.95 (``tpr95_threshold``);
3. per scorer: open-IoU of town t5 with the threshold of t6 and vice versa (strict ``score > t``, full
   resolution), their image-weighted mean; closed-set mIoU over both towns; anomaly AP / AUROC / FPR95 pooled
   and per image (Hendrycks: closest-point FPR95 per image, images without anomaly pixels skipped, then mean).

:func:`run_open_panoptic` (COCO val2017 with EOPSN unknown classes, Mask2Anomaly TPAMI'24 Table 4 layout):

1. held-out calibration frames (default: the first frame with unknown pixels; excluded from PQ): pooled
   curve of every scorer's map, threshold at the first point with TPR >= 0.95 (``first_geq``, as EAM's
   evaluator takes ``fpr[tpr >= 0.95][0]``);
2. every other frame: Mask2Former panoptic inference (object-mask and overlap thresholds 0.8) for the known
   classes, written as panopticapi PNG + JSON (method ``known``); per scorer, EAM-style unknown instances
   (category -1) overlaid (method ``eam/<scorer>``); Mask2Anomaly-style mined instances (method ``mining``,
   scorer-independent: it reads the background of Eq. 17);
3. PQ / SQ / RQ per method through :func:`~maskbench.metrics.panoptic.pq_compute_files` with the EOPSN split
   (`bench pq` machinery): known things, stuff, all known, unknown.
"""

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from maskbench import __version__
from maskbench.benchmark.results import downsample_curve, package_versions, utc_now, write_json_atomic
from maskbench.errors import InputError
from maskbench.metrics.open_iou import ClosedIoU, OpenIoU, image_weighted_miou
from maskbench.metrics.pixel import PixelAccumulator, tpr95_threshold
from maskbench.openset.inference import (
    add_unknown_segments, eam_unknown_instances, half_resolution, mine_unknown_instances, open_set_prediction,
    panoptic_inference, semantic_scores,
)

TOWNS = ("t5", "t6")
#: Metric keys of an open-semantic result row, in Table 3 order (fractions; FPR lower is better). The two
#: calibrated thresholds are in ``protocol_details["calibration"]``.
OPEN_SEMANTIC_KEYS = ("AP", "FPR95", "AUROC", "AP_per_image", "FPR95_per_image", "AUROC_per_image", "mIoU_closed",
                      "open_mIoU_t5", "open_mIoU_t6", "open_mIoU", "anomaly_IoU_t5", "anomaly_IoU_t6")
OPEN_SEMANTIC_PROTOCOL = ("streethazards-open-semantic: DenseHybrid open-IoU (threshold at TPR>0.95 after "
                          "drop_intermediate on the other town at half resolution, strict score > t), closed-set "
                          "mIoU, pooled exact AP/AUROC/FPR95 and Hendrycks per-image means")


def _write_csv(path, entries, keys):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scorer", "dataset", "protocol", *keys])
        for e in entries:
            writer.writerow([e["scorer"], e["dataset"], e["protocol"],
                             *("" if e["metrics"].get(k) is None else repr(float(e["metrics"][k])) for k in keys)])


def _run_meta(dataset, scorers, checkpoint, protocol, task, limit, frames, extra, run_info):
    return {
        "maskbench_version": __version__, "command": list(sys.argv), **(run_info or {}),
        "started": utc_now(), "finished": None,
        "task": task,
        "dataset": {"name": dataset.name, "root": str(dataset.root), "info": dataset.info},
        "checkpoint": checkpoint or {"path": None, "sha256": None, "config": None},
        "scorers": {n: s.params for n, s in scorers.items()}, "protocol": protocol,
        "limit": limit, "frames": frames, "versions": package_versions(), **extra,
    }


def _resolve_scorers(scorers):
    from maskbench.scorers import get_scorer

    if not scorers:
        raise InputError("scorers: name at least one scorer")
    if isinstance(scorers, dict):
        return {n: get_scorer(s) if isinstance(s, str) else s for n, s in scorers.items()}
    return {(s if isinstance(s, str) else s.name): (get_scorer(s) if isinstance(s, str) else s) for s in scorers}


def _forward(forward, sample):
    class_logits, mask_logits = forward(sample.image)
    if mask_logits.ndim != 3 or tuple(mask_logits.shape[1:]) != sample.image.shape[:2]:
        raise InputError(f"frame {sample.id!r}: the forward returned mask logits of shape {tuple(mask_logits.shape)}, "
                         f"expected [Q, {sample.image.shape[0]}, {sample.image.shape[1]}] (the image size)")
    return class_logits, mask_logits


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


def _town(frame_id):
    town = frame_id.partition("_")[0]
    if town not in TOWNS:
        raise InputError(f"frame {frame_id!r}: not a StreetHazards t5/t6 frame id")
    return town


def run_open_semantic(forward, dataset, scorers, out, *, checkpoint=None, limit=None,
                      pooled_fpr95_rule="strict_dropint", keep_work=False, progress=None, run_info=None):
    """Open-set semantic segmentation on StreetHazards for every scorer; writes ``out`` and returns results.json.

    ``scorers``: names, :class:`~maskbench.scorers.Scorer` objects or ``{label: scorer}``. ``limit``: first N
    frames only (partial run). ``pooled_fpr95_rule``: FPR95 rule of the pooled anomaly metrics. ``progress``:
    ``progress(label, total)`` -> object with ``update(n)`` and ``close()`` (as `bench run` passes it).
    ``run_info``: extra run.json fields (``command``, ``resolution``, ``device``, ...).
    """
    if dataset.name != "streethazards":
        raise InputError(f"--dataset {dataset.name}: open-semantic is the StreetHazards track (towns t5/t6)")
    if limit is not None and int(limit) < 1:
        raise InputError(f"--limit {limit}: must be at least 1")
    scorers = _resolve_scorers(scorers)
    out = Path(out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if n < 1:
        raise InputError("open-semantic: the dataset has no frames")
    meta = _run_meta(dataset, scorers, checkpoint, OPEN_SEMANTIC_PROTOCOL, "open-semantic", limit, n,
                     {"fpr95_rule": pooled_fpr95_rule, "calibration": "other town, scale 0.5 (bilinear scores, "
                      "nearest labels), ignore dropped, first roc_curve(drop_intermediate) point with TPR > 0.95"},
                     run_info)
    write_json_atomic(out / "run.json", meta)

    names = list(scorers)
    bar = progress("forward + scorers", n) if progress else None
    try:
        state = _score_streethazards(forward, dataset, n, scorers, work, bar, pooled_fpr95_rule)
    finally:
        if bar:
            bar.close()
    with open(out / "per_image.jsonl", "w", encoding="utf-8") as handle:
        for row in state["rows"]:
            handle.write(json.dumps(row, allow_nan=False) + "\n")

    towns = state["towns"]
    thresholds = {}  # (scorer, evaluated town) -> (threshold, tpr, fpr) calibrated on the other town
    open_results = {}
    for s in names:
        for town, other in zip(TOWNS, TOWNS[::-1]):
            cal = tpr95_threshold(state["calib"][other][s], "strict_dropint") if towns[other] else None
            thresholds[s, town] = cal
            open_results[s, town] = (_open_iou(work, towns[town], s, cal[0], state["num_known"])
                                     if towns[town] and cal is not None else None)
    closed = state["closed"].compute()
    pooled = {s: state["pooled"][s].compute() for s in names}
    entries = [_open_semantic_entry(s, pooled[s], dataset, n, state, closed, thresholds, open_results,
                                    pooled_fpr95_rule) for s in names]
    _write_curves(out / "curves.npz", pooled)

    meta["finished"] = utc_now()
    results = {"run": meta, "results": entries}
    write_json_atomic(out / "results.json", results)
    _write_csv(out / "results.csv", entries, OPEN_SEMANTIC_KEYS)
    write_json_atomic(out / "run.json", meta)
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _score_streethazards(forward, dataset, n, scorers, work, bar, pooled_fpr95_rule):
    """Pass 1 over the first ``n`` frames: closed-set IoU, half-resolution calibration curves per town, pooled
    and per-image anomaly metrics; the closed-set argmax, labels and score maps go to ``work`` for pass 2."""
    from maskbench.scorers import score_all

    names = list(scorers)
    state = {"num_known": None, "closed": None, "rows": [], "towns": {t: [] for t in TOWNS},
             "calib": {t: {s: PixelAccumulator("exact", fpr95_rule="strict_dropint") for s in names} for t in TOWNS},
             "per_image": {s: [] for s in names},
             "pooled": {s: PixelAccumulator("exact", fpr95_rule=pooled_fpr95_rule) for s in names}}
    for index in range(n):
        sample = dataset[index]
        town = _town(sample.id)
        class_logits, mask_logits = _forward(forward, sample)
        with torch.no_grad():
            scores = semantic_scores(class_logits, mask_logits).cpu()
            maps = {k: v.float().cpu() for k, v in score_all(scorers, class_logits, mask_logits).items()}
        num_known = scores.shape[0]
        if state["num_known"] is None:
            state["num_known"], state["closed"] = num_known, ClosedIoU(num_known)
        elif num_known != state["num_known"]:
            raise InputError(f"frame {sample.id!r}: {num_known} classes, earlier frames had {state['num_known']}")
        gt = open_semantic_gt(sample, num_known)
        closed_pred = scores.argmax(dim=0).numpy().astype(np.uint8)
        state["closed"].update(gt, closed_pred)
        calib_labels = np.where(gt == num_known + 1, 255, (gt == num_known).astype(np.uint8)).astype(np.uint8)
        row = {"id": sample.id, "index": index, "town": town, "height": int(gt.shape[0]), "width": int(gt.shape[1]),
               "n_anomaly": int((sample.ood == 1).sum()), "scores": {}}
        for s in names:
            m = maps[s].numpy()
            small, small_lab = half_resolution(maps[s], torch.from_numpy(calib_labels))
            state["calib"][town][s].update(small.numpy(), small_lab.numpy())
            state["pooled"][s].update(m, sample.ood)
            single = PixelAccumulator("exact", fpr95_rule="closest").update(m, sample.ood).compute()
            if single.ap is not None and single.auroc is not None:
                state["per_image"][s].append((single.ap, single.auroc, single.fpr95))
            row["scores"][s] = {"AP": single.ap, "AUROC": single.auroc, "FPR95_closest": single.fpr95}
        np.savez(work / f"{index:06d}.npz", closed=closed_pred, gt=gt, **{s: maps[s].numpy() for s in names})
        state["towns"][town].append(index)
        state["rows"].append(row)
        if bar:
            bar.update(1)
    return state


def _open_iou(work, indices, scorer, threshold, num_known):
    """Pass 2: open-IoU of the frames ``indices`` with Eq. 16 at ``threshold``."""
    acc = OpenIoU(num_known)
    for index in indices:
        with np.load(work / f"{index:06d}.npz") as z:
            pred = open_set_prediction(torch.from_numpy(z["closed"]), torch.from_numpy(z[scorer]), threshold, num_known)
            acc.update(z["gt"], pred.numpy().astype(np.uint8))
    return acc.compute()


def _write_curves(path, pooled):
    """``curves.npz`` (RESULTS_SCHEMA.md): the pooled PR and ROC curves of every scorer, downsampled."""
    arrays = {}
    for name, result in pooled.items():
        arrays[f"{name}/pr_precision"], arrays[f"{name}/pr_recall"] = downsample_curve(*result.pr_curve())
        arrays[f"{name}/roc_fpr"], arrays[f"{name}/roc_tpr"] = downsample_curve(*result.roc_curve())
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _open_semantic_entry(s, p, dataset, n, state, closed, thresholds, open_results, pooled_fpr95_rule):
    """One results.json entry (Table 3 row) for scorer ``s`` with pooled pixel result ``p``."""
    towns = state["towns"]
    notes, metrics = {}, {}
    metrics.update(AP=p.ap, FPR95=p.fpr95, AUROC=p.auroc)
    notes.update({k.upper(): v for k, v in p.notes.items() if k in ("ap", "fpr95", "auroc")})
    per_image = state["per_image"][s]
    if per_image:
        ap, auroc, fpr = (float(np.mean(v)) for v in zip(*per_image))
        metrics.update(AP_per_image=ap, AUROC_per_image=auroc, FPR95_per_image=fpr)
    else:
        metrics.update(AP_per_image=None, AUROC_per_image=None, FPR95_per_image=None)
        notes["AP_per_image"] = "no frame has both anomaly and inlier pixels"
    if n - len(per_image):
        notes["per_image"] = (f"{n - len(per_image)} of {n} frame(s) without anomaly or inlier pixels skipped "
                              "(Hendrycks)")
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
        "pooled": {"protocol": "exact pooled float32 curve", "fpr95_rule": pooled_fpr95_rule,
                   "labels": dataset.info.get("label_convention")},
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
    return {"scorer": s, "dataset": dataset.name, "protocol": "streethazards-open-semantic",
            "metrics": metrics, "protocol_details": details, "notes": notes}


#: Metric keys of an open-panoptic result row (Mask2Anomaly TPAMI'24 Table 4 order; fractions).
OPEN_PANOPTIC_KEYS = ("PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st", "PQ", "SQ", "RQ", "PQ_unk", "SQ_unk",
                      "RQ_unk", "threshold")
_GROUP_KEYS = (("Things", "_th"), ("Stuff", "_st"), ("All", ""), ("Unknown", "_unk"))


def _id_to_rgb(ids):
    """panopticapi ``id2rgb``: ``id = R + 256 G + 256^2 B``."""
    ids = ids.astype(np.uint32)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


def _save_png(path, ids):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_id_to_rgb(ids)).save(path)


def _gt_subset(dataset, frame_ids, path):
    """The GT JSON restricted to ``frame_ids`` (the evaluated frames), for panopticapi-style evaluation."""
    from maskbench.datasets.coco import ANNOTATIONS

    gt = json.loads((Path(dataset.root) / ANNOTATIONS).read_text())
    wanted = set(frame_ids)
    annotations = {a["file_name"].rsplit(".", 1)[0]: a for a in gt["annotations"]}
    subset = {"categories": gt["categories"], "annotations": [annotations[f] for f in frame_ids],
              "images": [im for im in gt.get("images", []) if im["file_name"].rsplit(".", 1)[0] in wanted]}
    write_json_atomic(path, subset)
    return {a["file_name"].rsplit(".", 1)[0]: a["image_id"] for a in subset["annotations"]}


def run_open_panoptic(forward, dataset, scorers, out, *, checkpoint=None, limit=None, calibration_frames=None,
                      object_mask_threshold=0.8, overlap_threshold=0.8, min_pixels=200, mining=True,
                      background_threshold=0.5, mining_overlap_iou=0.5, workers=1, progress=None, run_info=None):
    """Open-set panoptic segmentation (EOPSN split of ``dataset``) for every scorer; writes ``out``.

    ``dataset``: ``coco-open-panoptic`` (``categories``, ``unknown_ids``, ``split``); the model's classes are the
    dataset's categories in id order (COCO panoptic: 133). ``calibration_frames``: indices of the held-out
    frames the EAM threshold is validated on (default: the first frame with unknown pixels); they are not
    evaluated. ``min_pixels``: EAM keeps masks with more than this many anomalous pixels. ``mining``: also run
    :func:`~maskbench.openset.inference.mine_unknown_instances` with ``background_threshold`` and
    ``mining_overlap_iou``. Returns the results.json content (one entry per method: ``known``, ``eam/<scorer>``,
    ``mining``). ``progress`` and ``run_info`` as in :func:`run_open_semantic`.
    """
    if limit is not None and int(limit) < 1:
        raise InputError(f"--limit {limit}: must be at least 1")
    from maskbench.metrics.panoptic import pq_compute_files
    from maskbench.scorers import score_all

    scorers = _resolve_scorers(scorers)
    names = list(scorers)
    split = getattr(dataset, "split", None)
    if split is None or not hasattr(dataset, "categories"):
        raise InputError(f"--dataset {dataset.name}: open-panoptic needs a COCO panoptic dataset with an unknown split")
    cat_ids = sorted(dataset.categories)
    is_thing = torch.tensor([bool(dataset.categories[c]["isthing"]) for c in cat_ids])
    unknown_contiguous = {i for i, c in enumerate(cat_ids) if c in set(dataset.unknown_ids)}
    n = len(dataset) if limit is None else min(int(limit), len(dataset))
    if calibration_frames is None:
        first = next((i for i in range(len(dataset)) if (dataset[i].ood == 1).any()), None)
        if first is None:
            raise InputError(f"{dataset.name}: no frame has unknown-class pixels to calibrate the EAM threshold on")
        calibration_frames = [first]
    calibration_frames = sorted({int(i) for i in calibration_frames})
    bad = [i for i in calibration_frames if not 0 <= i < len(dataset)]
    if bad:
        raise InputError(f"calibration_frames: index(es) {bad} out of range for {len(dataset)} frames")
    evaluated = [i for i in range(n) if i not in set(calibration_frames)]
    if not evaluated:
        raise InputError("open-panoptic: every frame is a calibration frame; nothing left to evaluate")
    out = Path(out)
    methods = ["known"] + [f"eam/{s}" for s in names] + (["mining"] if mining else [])
    meta = _run_meta(dataset, scorers, checkpoint, f"EOPSN-{split} open-set PQ", "open-panoptic", limit, len(evaluated),
                     {"methods": methods, "calibration_frames": [dataset.ids[i] for i in calibration_frames],
                      "panoptic_inference": {"object_mask_threshold": object_mask_threshold,
                                             "overlap_threshold": overlap_threshold},
                      "eam": {"threshold_rule": "first point with TPR >= 0.95 on the calibration frames",
                              "min_pixels": min_pixels, "assignment": "argmax_q sigmoid(M_q), first maximum",
                              "overlay": "unknown instances replace the known segments under them"},
                      "mining": None if not mining else {
                          "background_threshold": background_threshold, "overlap_iou": mining_overlap_iou,
                          "rule": "TPAMI'24 §6.3 (our reading): 8-connected components of B > threshold, best-IoU "
                                  "mask with IoU > overlap_iou, unknown iff mean stuff entropy > mean thing entropy"}},
                     run_info)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "run.json", meta)

    def outputs(sample):
        class_logits, mask_logits = _forward(forward, sample)
        if class_logits.shape[1] - 1 != len(cat_ids):
            raise InputError(f"frame {sample.id!r}: the model has {class_logits.shape[1] - 1} classes, the dataset "
                             f"{len(cat_ids)} categories")
        with torch.no_grad():
            maps = {k: v.float().cpu() for k, v in score_all(scorers, class_logits, mask_logits).items()}
        return class_logits.float().cpu(), mask_logits.float().cpu(), maps

    calib = {s: PixelAccumulator("exact", fpr95_rule="first_geq") for s in names}
    for index in calibration_frames:
        sample = dataset[index]
        _, _, maps = outputs(sample)
        for s in names:
            calib[s].update(maps[s].numpy(), sample.ood)
    thresholds = {s: tpr95_threshold(calib[s], "first_geq") for s in names}

    annotations = {m: [] for m in methods}
    dropped_unknown_class = 0
    image_ids = _gt_subset(dataset, [dataset.ids[i] for i in evaluated], out / "gt_panoptic.json")
    rows = []
    bar = progress("forward + panoptic", len(evaluated)) if progress else None
    for index in evaluated:
        sample = dataset[index]
        class_logits, mask_logits, maps = outputs(sample)
        ids, segments = panoptic_inference(class_logits, mask_logits, is_thing,
                                           object_mask_threshold=object_mask_threshold,
                                           overlap_threshold=overlap_threshold)
        stray = [seg for seg in segments if seg["category_id"] in unknown_contiguous]
        if stray:  # a class of the unknown split: EOPSN rejects its id, the harness voids the segment
            dropped_unknown_class += len(stray)
            for seg in stray:
                ids[ids == seg["id"]] = 0
            segments = [seg for seg in segments if seg["category_id"] not in unknown_contiguous]
        known = [{"id": seg["id"], "category_id": cat_ids[seg["category_id"]], "isthing": int(seg["isthing"])}
                 for seg in segments]
        results_per_method = {"known": (ids, known)}
        row = {"id": sample.id, "index": index, "segments": {"known": len(known)}}
        for s in names:
            th = thresholds[s]
            masks = [] if th is None else eam_unknown_instances(mask_logits, maps[s], th[0], min_pixels=min_pixels)
            new_ids, new_segments = add_unknown_segments(ids, known, masks)
            results_per_method[f"eam/{s}"] = (new_ids, new_segments)
            row["segments"][f"eam/{s}"] = len(new_segments)
        if mining:
            mined = mine_unknown_instances(class_logits, mask_logits, is_thing,
                                           background_threshold=background_threshold,
                                           overlap_iou=mining_overlap_iou)
            results_per_method["mining"] = add_unknown_segments(ids, known, mined)
            row["segments"]["mining"] = len(results_per_method["mining"][1])
        for method, (m_ids, m_segments) in results_per_method.items():
            _save_png(out / "panoptic" / method / f"{sample.id}.png", m_ids.numpy())
            info = [{**seg, "isthing": int(seg["isthing"])} for seg in m_segments]
            annotations[method].append({"image_id": image_ids[sample.id], "file_name": f"{sample.id}.png",
                                        "segments_info": info})
        rows.append(row)
        if bar:
            bar.update(1)
    if bar:
        bar.close()

    with open(out / "per_image.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, allow_nan=False) + "\n")
    gt_dir = Path(dataset.root) / "panoptic_val2017"
    entries = []
    for method in methods:
        pred_json = out / "panoptic" / f"{method.replace('/', '_')}.json"
        write_json_atomic(pred_json, {"annotations": annotations[method]})
        pq = pq_compute_files(out / "gt_panoptic.json", gt_dir, pred_json, out / "panoptic" / method, unknown=split,
                              workers=workers)
        metrics, notes = {}, {}
        for group, suffix in _GROUP_KEYS:
            for key in ("pq", "sq", "rq"):
                metrics[key.upper() + suffix] = pq[group][key]
            if pq[group].get("note"):
                notes[group] = pq[group]["note"]
        scorer = method.partition("/")[2] or None
        th = thresholds.get(scorer) if scorer else None
        metrics["threshold"] = th[0] if th else None
        if scorer and th is None:
            notes["threshold"] = "no unknown-class pixel in the calibration frames: no unknown instances"
        if dropped_unknown_class:
            notes["unknown_class_predictions"] = (f"{dropped_unknown_class} predicted segment(s) of an unknown-split "
                                                  "class voided (EOPSN rejects those ids)")
        metrics["images"] = len(evaluated)
        details = {"pq": pq["protocol"], "pred_json": str(pred_json), "pred_dir": str(out / "panoptic" / method),
                   "gt_json": str(out / "gt_panoptic.json"), "gt_dir": str(gt_dir),
                   "calibration": None if th is None else {"threshold": th[0], "tpr": th[1], "fpr": th[2],
                                                           "frames": meta["calibration_frames"]}}
        entries.append({"scorer": method, "dataset": dataset.name, "protocol": f"eopsn-{split}",
                        "metrics": metrics, "protocol_details": details, "notes": notes})
    meta["finished"] = utc_now()
    results = {"run": meta, "results": entries}
    write_json_atomic(out / "results.json", results)
    _write_csv(out / "results.csv", entries, OPEN_PANOPTIC_KEYS)
    write_json_atomic(out / "run.json", meta)
    return results
