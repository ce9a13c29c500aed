"""Task ``open-panoptic``: open-set panoptic segmentation on COCO with the EOPSN unknown classes (Mask2Anomaly
TPAMI'24 Table 4 layout), for every scorer, from one forward per frame.

1. held-out calibration frames (option ``calibration_frames``, default: the first frame with unknown pixels;
   excluded from PQ), before the frame loop: pooled curve of every scorer's map, threshold at the first point
   with TPR >= 0.95 (``first_geq``, as EAM's evaluator takes ``fpr[tpr >= 0.95][0]``);
2. per frame (resumable): Mask2Former panoptic inference (object-mask and overlap thresholds 0.8) for the known
   classes, written as panopticapi PNGs ``panoptic/<method>/<frame id>.png`` (method ``known``); per scorer,
   EAM-style unknown instances (category -1) overlaid (method ``eam/<scorer>``); Mask2Anomaly-style mined
   instances (method ``mining``, scorer-independent: it reads the background of Eq. 17); the segments of every
   method go into the frame's row;
3. at the end: the panopticapi JSON of every method from the rows, and PQ / SQ / RQ per method through
   :func:`~maskbench.metrics.panoptic_files.pq_compute_files` with the EOPSN split (`bench pq` machinery): known
   things, stuff, all known, unknown.
"""

import json
from pathlib import Path

import torch
from PIL import Image

from maskbench.benchmark.results import write_json_atomic
from maskbench.benchmark.tasks.base import TASKS, Task
from maskbench.datasets.coco import ANNOTATIONS, id_to_rgb
from maskbench.errors import ConfigError, InputError
from maskbench.fileio import atomic_write
from maskbench.metrics.panoptic_files import pq_compute_files
from maskbench.metrics.pixel import PixelAccumulator, tpr95_threshold
from maskbench.openset import add_unknown_segments, eam_unknown_instances, mine_unknown_instances, panoptic_inference
from maskbench.scorers import score_all

#: Metric keys of a result row (Table 4 order; fractions).
KEYS = ("PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st", "PQ", "SQ", "RQ", "PQ_unk", "SQ_unk", "RQ_unk",
        "threshold")
GROUPS = (("Things", "_th"), ("Stuff", "_st"), ("All", ""), ("Unknown", "_unk"))
PANOPTIC_DIR, GT_JSON = "panoptic", "gt_panoptic.json"


def _save_png(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        Image.fromarray(id_to_rgb(ids)).save(handle, format="PNG")


def _gt_subset(dataset, frame_ids, path):
    """The GT JSON restricted to ``frame_ids`` (the evaluated frames), for panopticapi-style evaluation; returns
    ``{frame id: image_id}``."""
    gt = json.loads((Path(dataset.root) / ANNOTATIONS).read_text())
    wanted = set(frame_ids)
    annotations = {a["file_name"].rsplit(".", 1)[0]: a for a in gt["annotations"]}
    subset = {"categories": gt["categories"], "annotations": [annotations[f] for f in frame_ids],
              "images": [im for im in gt.get("images", []) if im["file_name"].rsplit(".", 1)[0] in wanted]}
    write_json_atomic(path, subset)
    return {a["file_name"].rsplit(".", 1)[0]: a["image_id"] for a in subset["annotations"]}


@TASKS.register
class OpenPanopticTask(Task):
    name = "open-panoptic"
    summary = "open-set panoptic segmentation on COCO (EOPSN unknown split): PQ/SQ/RQ of things, stuff, unknown"
    unused = ("protocol", "fpr95_rule", "tta", "save_maps")
    options = {"calibration_frames": None, "object_mask_threshold": 0.8, "overlap_threshold": 0.8,
               "min_pixels": 200, "mining": True, "background_threshold": 0.5, "mining_overlap_iou": 0.5}
    table_metrics = KEYS[:-1]
    csv_keys = KEYS

    def configure(self, config, dataset_cls):
        if dataset_cls.name != "coco-open-panoptic":
            raise ConfigError("dataset", f" {dataset_cls.name}: open-panoptic needs a COCO panoptic dataset with an "
                              "unknown split (coco-open-panoptic)")
        return {}

    def plan(self, run, n):
        ds, o = run.dataset, self.settings
        self.cat_ids = sorted(ds.categories)
        self.is_thing = torch.tensor([bool(ds.categories[c]["isthing"]) for c in self.cat_ids])
        self.unknown_contiguous = {i for i, c in enumerate(self.cat_ids) if c in set(ds.unknown_ids)}
        frames = o["calibration_frames"]
        if frames is None:
            first = next((i for i in range(len(ds)) if (ds[i].ood == 1).any()), None)
            if first is None:
                raise InputError(f"{ds.name}: no frame has unknown-class pixels to calibrate the EAM threshold on")
            frames = [first]
        self.calibration = sorted({int(i) for i in frames})
        bad = [i for i in self.calibration if not 0 <= i < len(ds)]
        if bad:
            raise ConfigError("task_options", f" calibration_frames: index(es) {bad} out of range for {len(ds)} frames")
        evaluated = [i for i in range(n) if i not in set(self.calibration)]
        if not evaluated:
            raise ConfigError("task_options", " calibration_frames: every frame is a calibration frame; nothing "
                              "left to evaluate")
        self.methods = ["known"] + [f"eam/{s}" for s in run.scorers] + (["mining"] if o["mining"] else [])
        return evaluated, {
            "protocol": f"eopsn-{ds.split}", "methods": self.methods,
            "calibration_frames": [ds.ids[i] for i in self.calibration],
            "panoptic_inference": {"object_mask_threshold": o["object_mask_threshold"],
                                   "overlap_threshold": o["overlap_threshold"]},
            "eam": {"threshold_rule": "first point with TPR >= 0.95 on the calibration frames",
                    "min_pixels": o["min_pixels"], "assignment": "argmax_q sigmoid(M_q), first maximum",
                    "overlay": "unknown instances replace the known segments under them"},
            "mining": None if not o["mining"] else {
                "background_threshold": o["background_threshold"], "overlap_iou": o["mining_overlap_iou"],
                "rule": "TPAMI'24 §6.3 (our reading): 8-connected components of B > threshold, best-IoU mask with "
                        "IoU > overlap_iou, unknown iff mean stuff entropy > mean thing entropy"},
        }

    def _outputs(self, run, sample):
        class_logits, mask_logits = run.outputs(sample)
        if class_logits.shape[1] - 1 != len(self.cat_ids):
            raise InputError(f"frame {sample.id!r}: the model has {class_logits.shape[1] - 1} classes, the dataset "
                             f"{len(self.cat_ids)} categories")
        with torch.no_grad():
            maps = {k: v.float().cpu() for k, v in score_all(run.scorers, class_logits, mask_logits).items()}
        return class_logits.float().cpu(), mask_logits.float().cpu(), maps

    def begin(self, run):
        calib = {s: PixelAccumulator("exact", fpr95_rule="first_geq") for s in run.scorers}
        for index in self.calibration:
            sample = run.dataset[index]
            _, _, maps = self._outputs(run, sample)
            for s, acc in calib.items():
                acc.update(maps[s].numpy(), sample.ood)
        self.thresholds = {s: tpr95_threshold(acc, "first_geq") for s, acc in calib.items()}

    def _png(self, run, method, frame_id):
        return run.out / PANOPTIC_DIR / method / f"{frame_id}.png"

    def frame(self, run, index, sample):
        o = self.settings
        class_logits, mask_logits, maps = self._outputs(run, sample)
        ids, segments = panoptic_inference(class_logits, mask_logits, self.is_thing,
                                           object_mask_threshold=o["object_mask_threshold"],
                                           overlap_threshold=o["overlap_threshold"])
        stray = [seg for seg in segments if seg["category_id"] in self.unknown_contiguous]
        for seg in stray:  # a class of the unknown split: EOPSN rejects its id, the harness voids the segment
            ids[ids == seg["id"]] = 0
        known = [{"id": seg["id"], "category_id": self.cat_ids[seg["category_id"]], "isthing": int(seg["isthing"])}
                 for seg in segments if seg["category_id"] not in self.unknown_contiguous]
        per_method = {"known": (ids, known)}
        for s in run.scorers:
            th = self.thresholds[s]
            masks = [] if th is None else eam_unknown_instances(mask_logits, maps[s], th[0], min_pixels=o["min_pixels"])
            per_method[f"eam/{s}"] = add_unknown_segments(ids, known, masks)
        if o["mining"]:
            mined = mine_unknown_instances(class_logits, mask_logits, self.is_thing,
                                           background_threshold=o["background_threshold"],
                                           overlap_iou=o["mining_overlap_iou"])
            per_method["mining"] = add_unknown_segments(ids, known, mined)
        row = {"voided_unknown_class": len(stray), "segments": {}}
        for method, (m_ids, m_segments) in per_method.items():
            _save_png(self._png(run, method, sample.id), m_ids.numpy())
            row["segments"][method] = [{**seg, "isthing": int(seg["isthing"])} for seg in m_segments]
        return row

    def stored(self, run, index):
        frame_id = run.dataset.ids[index]
        return all(self._png(run, m, frame_id).is_file() for m in self.methods)

    def finish(self, run, indices, rows):
        if not run.dist.is_main:
            return [], {}
        ds, out = run.dataset, run.out
        frame_ids = [rows[i]["id"] for i in sorted(rows)]
        image_ids = _gt_subset(ds, frame_ids, out / GT_JSON)
        voided = sum(r["voided_unknown_class"] for r in rows.values())
        gt_dir = Path(ds.root) / "panoptic_val2017"
        entries = []
        for method in self.methods:
            pred_json = out / PANOPTIC_DIR / f"{method.replace('/', '_')}.json"
            write_json_atomic(pred_json, {"annotations": [
                {"image_id": image_ids[r["id"]], "file_name": f"{r['id']}.png", "segments_info": r["segments"][method]}
                for r in (rows[i] for i in sorted(rows))]})
            pq = pq_compute_files(out / GT_JSON, gt_dir, pred_json, out / PANOPTIC_DIR / method, unknown=ds.split,
                                  workers=run.config.workers or 1)
            metrics, notes = {}, {}
            for group, suffix in GROUPS:
                for key in ("pq", "sq", "rq"):
                    metrics[key.upper() + suffix] = pq[group][key]
                if pq[group].get("note"):
                    notes[group] = pq[group]["note"]
            scorer = method.partition("/")[2] or None
            th = self.thresholds.get(scorer) if scorer else None
            metrics["threshold"] = th[0] if th else None
            if scorer and th is None:
                notes["threshold"] = "no unknown-class pixel in the calibration frames: no unknown instances"
            if voided:
                notes["unknown_class_predictions"] = (f"{voided} predicted segment(s) of an unknown-split class voided "
                                                      "(EOPSN rejects those ids)")
            metrics["images"] = len(rows)
            details = {"pq": pq["protocol"], "pred_json": str(pred_json), "pred_dir": str(out / PANOPTIC_DIR / method),
                       "gt_json": str(out / GT_JSON), "gt_dir": str(gt_dir),
                       "calibration": None if th is None else {
                           "threshold": th[0], "tpr": th[1], "fpr": th[2],
                           "frames": [ds.ids[i] for i in self.calibration]}}
            entries.append({"scorer": method, "dataset": ds.name, "protocol": f"eopsn-{ds.split}",
                            "metrics": metrics, "protocol_details": details, "notes": notes})
        return entries, {}
