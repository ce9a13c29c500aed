"""Panoptic quality PQ / SQ / RQ with cocodataset/panopticapi semantics, and the EOPSN open-set protocol.

Per image (Kirillov et al. CVPR'19, Eq. 1; panopticapi ``pq_compute_single_core``):

* a (GT, prediction) pair is a candidate iff they overlap, the GT is not crowd and the categories are equal;
  ``IoU = |g ∩ p| / (|p| + |g| - |g ∩ p| - |p ∩ VOID|)``, with ``|g|`` from the GT JSON ``area`` field and
  ``|p|`` counted in the predicted PNG. A pair is a TP iff ``IoU > 0.5`` (strict, so matches are unique);
* FN: non-crowd GT segments without a TP; crowd GT segments are never matched and never FN;
* FP: predictions without a TP, unless ``(|p ∩ VOID| + |p ∩ crowd_c|) / |p| > 0.5`` where ``crowd_c`` is the
  crowd segment of the prediction's category (panopticapi remembers one per category and image: the last one
  in ``segments_info`` order);
* per category, over the whole dataset: ``PQ = ΣIoU / (TP + FP/2 + FN/2)``, ``SQ = ΣIoU / TP`` (0 if TP = 0),
  ``RQ = TP / (TP + FP/2 + FN/2)``. Categories with TP + FP + FN = 0 are left out; "All", "Things", "Stuff"
  are unweighted means over the categories counted (``n``).

EOPSN open set (Hwang et al. CVPR'21, jd730/EOPSN ``lib/evaluation.py``): the classes of an unknown split are
merged into category ``-1`` ("unknown", a thing) in the GT; predictions must label unknown segments ``-1``.
TP and FN of a merged GT segment are also credited to its original class, re-keyed ``-c-1``
(``unknown_<name>``), for per-class analysis. Groups: "All" = known things + stuff, "Things" = known things,
"Stuff", "Unknown" = the merged class ``-1``.

Deliberate differences from panopticapi (same numbers on valid input):

* every malformed input is an :class:`InputError` naming the file / image and segment: panopticapi's checks
  on predictions (PNG id not in JSON, JSON id not in PNG, unknown category), and also a GT PNG id missing
  from the GT JSON (panopticapi silently treats it as neither VOID nor a segment), segment id 0 or duplicate
  ids in ``segments_info``, duplicate ``image_id``s, non-RGB PNGs, GT/prediction shape mismatch;
* a GT JSON segment absent from its PNG is accepted, as in panopticapi (an FN with its JSON area);
* EOPSN: the split's (COCO id, name) pairs must be GT categories; a prediction with an original unknown id
  (EOPSN raises a ``KeyError``) or with a re-keyed ``-c-1`` id (EOPSN accepts it; it can never match) is
  an error;
* a group with no category counted reports null instead of dividing by zero; an uncounted category has null
  PQ/SQ/RQ (panopticapi lists 0.0);
* per-category IoU sums are exact (``math.fsum``), so results do not depend on image order or on how the
  images were split across processes (panopticapi's float sums differ in the last bits with the core count).
"""

import json
import math
import os
from operator import index as _as_index

import numba
import numpy as np

from maskbench.datasets.coco import rgb_to_id
from maskbench.errors import InputError
from maskbench.fileio import read_label_png
from maskbench.workers import map_merge

__all__ = ["PanopticQuality", "pq_compute_files", "read_panoptic_png", "UNKNOWN_SPLITS", "UNKNOWN_ID"]

#: Merged "unknown" category of the EOPSN protocol.
UNKNOWN_ID = -1

# COCO panoptic category ids of the EOPSN unknown classes (jd730/EOPSN datasets/unknown/unknown_K{5,10,20}.txt;
# K is a percentage of the 80 COCO thing classes).
_K5 = ((3, "car"), (21, "cow"), (59, "pizza"), (70, "toilet"))
_K10 = _K5 + ((9, "boat"), (32, "tie"), (24, "zebra"), (13, "stop sign"))
_K20 = _K10 + (
    (67, "dining table"), (52, "banana"), (2, "bicycle"), (61, "cake"),
    (81, "sink"), (17, "cat"), (76, "keyboard"), (23, "bear"),
)
#: Unknown splits of the EOPSN protocol: split name -> {COCO category id: category name}.
UNKNOWN_SPLITS = {name: dict(sorted(split)) for name, split in (("K5", _K5), ("K10", _K10), ("K20", _K20))}

_GROUPS = ("All", "Things", "Stuff")
_OPEN_GROUPS = ("All", "Things", "Stuff", "Unknown")


def protocol_name(unknown=None):
    """The protocol string stated next to every number."""
    if unknown is None:
        return "panopticapi PQ (IoU > 0.5 matching; unweighted mean over categories)"
    return (
        f"EOPSN-{unknown} open-set PQ (panopticapi matching; {len(UNKNOWN_SPLITS[unknown])} unknown COCO thing "
        f"classes merged into category -1; All/Things cover known classes only)"
    )


def _int_field(value, what):
    if isinstance(value, bool):
        raise InputError(f"{what}: expected an integer, got {value!r}")
    try:
        return _as_index(value)
    except TypeError:
        raise InputError(f"{what}: expected an integer, got {value!r}") from None


class _Categories:
    """The evaluation categories (panopticapi's ``categories`` dict, re-keyed by EOPSN when ``unknown``)."""

    def __init__(self, categories, unknown):
        if unknown is not None and unknown not in UNKNOWN_SPLITS:
            raise InputError(f"unknown: expected one of {sorted(UNKNOWN_SPLITS)}, got {unknown!r}")
        if not isinstance(categories, (list, tuple)) or not categories:
            raise InputError("categories: expected a non-empty list of {'id', 'isthing', ...} dicts")
        given = {}
        for i, cat in enumerate(categories):
            if not isinstance(cat, dict) or "id" not in cat or "isthing" not in cat:
                raise InputError(f"categories[{i}]: expected a dict with 'id' and 'isthing', got {cat!r}")
            cid = _int_field(cat["id"], f"categories[{i}]['id']")
            if cid in given:
                raise InputError(f"categories: category id {cid} appears twice")
            if cat["isthing"] not in (0, 1):
                raise InputError(f"categories[{i}]['isthing']: expected 0 or 1, got {cat['isthing']!r}")
            given[cid] = (str(cat.get("name", cid)), int(cat["isthing"]))

        self.unknown = unknown
        # unknown class id -> UNKNOWN_ID (what its GT segments count as) and -> -c-1 (where TP/FN are credited too)
        self.gt_remap, self.original_credit = {}, {}
        split = UNKNOWN_SPLITS.get(unknown, {})
        if unknown is not None:
            if UNKNOWN_ID in given:
                raise InputError(f"categories: id {UNKNOWN_ID} is reserved for the merged unknown class of EOPSN")
            for cid, name in split.items():
                if cid not in given or given[cid][0] != name:
                    found = f"named {given[cid][0]!r}" if cid in given else "absent"
                    raise InputError(
                        f"categories: EOPSN-{unknown} needs COCO category {cid} {name!r}, but it is {found} "
                        f"in the GT categories (the unknown splits are defined on COCO panoptic)"
                    )
                if given[cid][1] != 1:
                    raise InputError(f"categories: unknown class {cid} {name!r} must be a thing (isthing=1)")
        entries = []  # (eval id, name, isthing) in GT order, as EOPSN re-keys them
        for cid, (name, thing) in given.items():
            if cid in split:
                entries.append((-cid - 1, "unknown_" + name, thing))
                self.gt_remap[cid] = UNKNOWN_ID
                self.original_credit[cid] = -cid - 1
            else:
                entries.append((cid, name, thing))
        if unknown is not None:
            entries.append((UNKNOWN_ID, "unknown", 1))
        self.ids = [e[0] for e in entries]
        self.names = [e[1] for e in entries]
        self.isthing = np.array([e[2] for e in entries], dtype=bool)
        self.index = {cid: i for i, cid in enumerate(self.ids)}
        self.gt_ids = set(given)
        self.pred_ids = {cid for cid in given if cid not in split} | ({UNKNOWN_ID} if unknown else set())

    def groups(self):
        """Group name -> boolean mask over the evaluation categories (panopticapi / EOPSN ``pq_average``)."""
        ids = np.array(self.ids)
        if self.unknown is None:
            return {"All": np.ones(len(ids), bool), "Things": self.isthing.copy(), "Stuff": ~self.isthing}
        return {
            "All": ids >= 0,
            "Things": self.isthing & (ids >= 0),
            "Stuff": ~self.isthing & (ids >= UNKNOWN_ID),
            "Unknown": ids == UNKNOWN_ID,
        }


def _segment_table(segments, *, name, is_gt, cats):
    """Validate ``segments_info`` and return arrays (ids, category index, original index, crowd, area)."""
    if not isinstance(segments, (list, tuple)):
        raise InputError(f"{name}: segments_info must be a list, got {type(segments).__name__}")
    n = len(segments)
    seg_ids = np.empty(n, np.int64)
    cat_idx = np.empty(n, np.int64)
    orig_idx = np.full(n, -1, np.int64)
    crowd = np.zeros(n, bool)
    area = np.zeros(n, np.float64)
    seen = set()
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict) or "id" not in seg or "category_id" not in seg:
            raise InputError(f"{name}: segments_info[{i}] needs 'id' and 'category_id', got {seg!r}")
        sid = _int_field(seg["id"], f"{name}: segments_info[{i}]['id']")
        if sid <= 0:
            raise InputError(f"{name}: segment id {sid} is not allowed (0 is VOID, ids are positive)")
        if sid in seen:
            raise InputError(f"{name}: segment id {sid} appears twice in segments_info")
        seen.add(sid)
        cid = _int_field(seg["category_id"], f"{name}: segment {sid} 'category_id'")
        if is_gt:
            if cid not in cats.gt_ids:
                raise InputError(f"{name}: segment id {sid} has unknown category_id {cid}")
            for key in ("iscrowd", "area"):
                if key not in seg:
                    raise InputError(f"{name}: GT segment id {sid} has no '{key}' field")
            if seg["iscrowd"] not in (0, 1):
                raise InputError(f"{name}: GT segment id {sid} has iscrowd={seg['iscrowd']!r} (expected 0 or 1)")
            seg_area = seg["area"]
            if isinstance(seg_area, bool) or not isinstance(seg_area, (int, float, np.number)) or not seg_area >= 0:
                raise InputError(f"{name}: GT segment id {sid} has invalid area {seg_area!r}")
            crowd[i] = seg["iscrowd"] == 1
            area[i] = seg_area
            eval_cid = cats.gt_remap.get(cid, cid)
            if cid in cats.original_credit:
                orig_idx[i] = cats.index[cats.original_credit[cid]]
        else:
            if cid not in cats.pred_ids:
                if cid in cats.gt_remap:
                    raise InputError(
                        f"{name}: segment id {sid} uses category_id {cid}, an unknown class of "
                        f"EOPSN-{cats.unknown}; predictions must label unknown segments category_id {UNKNOWN_ID}"
                    )
                raise InputError(f"{name}: segment id {sid} has unknown category_id {cid}")
            eval_cid = cid
        seg_ids[i] = sid
        cat_idx[i] = cats.index[eval_cid]
    return seg_ids, cat_idx, orig_idx, crowd, area


@numba.njit(cache=True, nogil=True)
def _segment_position(sorted_ids, rank, value):
    """1 + JSON position of segment ``value`` (binary search in ``sorted_ids``), 0 for VOID, -1 if absent."""
    if value == 0:
        return 0
    low, high = 0, sorted_ids.size
    while low < high:
        mid = (low + high) // 2
        if sorted_ids[mid] < value:
            low = mid + 1
        else:
            high = mid
    if low < sorted_ids.size and sorted_ids[low] == value:
        return rank[low] + 1
    return -1


@numba.njit(cache=True, nogil=True)
def _count_intersections(gt, pred, gt_sorted, gt_rank, pred_sorted, pred_rank, inter):
    """``inter[1 + gt segment, 1 + pred segment] += 1`` over all pixels (row / column 0 = VOID).

    One pass, no temporaries; the last looked-up id is cached (runs of equal ids are the norm). Returns the
    number of pixels whose GT / predicted id is not in the JSON (counted as VOID here; the caller raises).
    """
    stray_gt, stray_pred = 0, 0
    last_g, last_p = gt[0] if gt.size else 0, pred[0] if pred.size else 0
    gi = _segment_position(gt_sorted, gt_rank, last_g)
    pj = _segment_position(pred_sorted, pred_rank, last_p)
    for k in range(gt.size):
        g, p = gt[k], pred[k]
        if g != last_g:
            last_g = g
            gi = _segment_position(gt_sorted, gt_rank, g)
        if p != last_p:
            last_p = p
            pj = _segment_position(pred_sorted, pred_rank, p)
        if gi < 0 or pj < 0:
            stray_gt += gi < 0
            stray_pred += pj < 0
            inter[max(gi, 0), max(pj, 0)] += 1
        else:
            inter[gi, pj] += 1
    return stray_gt, stray_pred


def _raise_stray(id_map, seg_ids, name):
    """Error naming the ids of ``id_map`` that are neither VOID nor in ``seg_ids``."""
    values = np.unique(id_map)
    stray = values[(values != 0) & ~np.isin(values, seg_ids)]
    shown = ", ".join(str(int(v)) for v in stray[:5]) + (" ..." if stray.size > 5 else "")
    raise InputError(f"{name}: segment id(s) {shown} present in the PNG but not in the JSON segments_info")


def _intersections(gt_ids, g_sid, pred_ids, p_sid, *, gt_name, pred_name):
    """(1 + #GT, 1 + #pred) pixel-count matrix of all (GT segment, predicted segment) overlaps, VOID first."""
    gt_flat = np.ascontiguousarray(gt_ids).reshape(-1)
    pred_flat = np.ascontiguousarray(pred_ids).reshape(-1)
    g_rank, p_rank = np.argsort(g_sid, kind="stable"), np.argsort(p_sid, kind="stable")
    inter = np.zeros((g_sid.size + 1, p_sid.size + 1), np.int64)
    stray_gt, stray_pred = _count_intersections(gt_flat, pred_flat, g_sid[g_rank], g_rank, p_sid[p_rank], p_rank,
                                                inter)
    if stray_gt:
        _raise_stray(gt_flat, g_sid, gt_name)
    if stray_pred:
        _raise_stray(pred_flat, p_sid, pred_name)
    return inter


class PanopticQuality:
    """Streaming PQ / SQ / RQ accumulator (panopticapi semantics; EOPSN open set with ``unknown``).

    ``categories``: the GT JSON ``categories`` list (``id``, ``isthing``, ``name``). ``unknown``: ``None``,
    ``"K5"``, ``"K10"`` or ``"K20"``. State: per-category TP, FP, FN counts and the TP IoUs; ``merge`` adds
    another accumulator's state, so images can be evaluated in any order or in separate processes.
    """

    def __init__(self, categories, *, unknown=None):
        self._cats = _Categories(categories, unknown)
        n = len(self._cats.ids)
        self.tp = np.zeros(n, np.int64)
        self.fp = np.zeros(n, np.int64)
        self.fn = np.zeros(n, np.int64)
        self._iou_cats, self._ious = [], []
        self.images = 0

    @property
    def unknown(self):
        return self._cats.unknown

    def update(self, gt_ids, gt_segments, pred_ids, pred_segments, *, gt_name="gt", pred_name="prediction"):
        """Accumulate one image: id maps (H, W) with 0 = VOID and their ``segments_info`` lists.

        ``gt_name`` / ``pred_name`` label the inputs in error messages (file names when reading files).
        """
        cats = self._cats
        gt_ids, pred_ids = np.asarray(gt_ids), np.asarray(pred_ids)
        for arr, name in ((gt_ids, gt_name), (pred_ids, pred_name)):
            if arr.ndim != 2 or arr.dtype.kind not in "iu":
                raise InputError(f"{name}: expected a 2-D integer id map, got shape {arr.shape} dtype {arr.dtype}")
        if gt_ids.shape != pred_ids.shape:
            raise InputError(f"{pred_name}: shape {pred_ids.shape} differs from {gt_name} shape {gt_ids.shape}")
        g_sid, g_cat, g_orig, g_crowd, g_area = _segment_table(gt_segments, name=gt_name, is_gt=True, cats=cats)
        p_sid, p_cat, _, _, _ = _segment_table(pred_segments, name=pred_name, is_gt=False, cats=cats)
        inter = _intersections(gt_ids, g_sid, pred_ids, p_sid, gt_name=gt_name, pred_name=pred_name)
        p_area = inter.sum(axis=0)[1:]
        missing = np.flatnonzero(p_area == 0)
        if missing.size:
            shown = ", ".join(str(int(v)) for v in p_sid[missing][:5])
            raise InputError(f"{pred_name}: segment id(s) {shown} in the JSON segments_info are not present in the PNG")
        p_void = inter[0, 1:]
        pair = inter[1:, 1:]

        # candidate pairs: overlap, GT not crowd, same category; TP iff IoU > 0.5
        candidate = (pair > 0) & ~g_crowd[:, None] & (g_cat[:, None] == p_cat[None, :])
        gi, pj = np.nonzero(candidate)
        union = p_area[pj] + g_area[gi] - pair[gi, pj] - p_void[pj]
        if np.any(union <= 0):
            bad = int(g_sid[gi[np.argmax(union <= 0)]])
            raise InputError(f"{gt_name}: GT segment id {bad} has an 'area' smaller than its overlap with a prediction")
        iou = pair[gi, pj] / union
        is_tp = iou > 0.5
        gi, pj, iou = gi[is_tp], pj[is_tp], iou[is_tp]
        n_cats = len(cats.ids)
        credited = g_orig[gi] >= 0  # EOPSN: a TP of the merged unknown class also counts for its original class
        tp_cats = np.concatenate([g_cat[gi], g_orig[gi][credited]])
        self.tp += np.bincount(tp_cats, minlength=n_cats)
        if tp_cats.size:
            self._iou_cats.append(tp_cats)
            self._ious.append(np.concatenate([iou, iou[credited]]))

        gt_matched = np.zeros(g_sid.size, bool)
        gt_matched[gi] = True
        pred_matched = np.zeros(p_sid.size, bool)
        pred_matched[pj] = True

        is_fn = ~gt_matched & ~g_crowd
        self.fn += np.bincount(g_cat[is_fn], minlength=n_cats)
        self.fn += np.bincount(g_orig[is_fn & (g_orig >= 0)], minlength=n_cats)

        # one crowd segment per category: the last one in segments_info order (panopticapi's dict overwrite)
        crowd_row = np.full(n_cats, -1, np.int64)
        for i in np.flatnonzero(g_crowd):
            crowd_row[g_cat[i]] = i
        unmatched = np.flatnonzero(~pred_matched)
        ignored = p_void[unmatched].astype(np.int64)
        rows = crowd_row[p_cat[unmatched]]
        has_crowd = rows >= 0
        ignored[has_crowd] += pair[rows[has_crowd], unmatched[has_crowd]]
        is_fp = ~(ignored / p_area[unmatched] > 0.5)
        self.fp += np.bincount(p_cat[unmatched[is_fp]], minlength=n_cats)
        self.images += 1

    def merge(self, other):
        """Add another accumulator's statistics (same categories and protocol); returns ``self``."""
        if not isinstance(other, PanopticQuality) or other._cats.ids != self._cats.ids:
            raise InputError("merge: the other PanopticQuality has different categories or unknown split")
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self._iou_cats.extend(other._iou_cats)
        self._ious.extend(other._ious)
        self.images += other.images
        return self

    def _iou_sums(self):
        sums = [0.0] * len(self._cats.ids)
        if self._ious:
            cats_all = np.concatenate(self._iou_cats)
            ious_all = np.concatenate(self._ious)
            order = np.argsort(cats_all, kind="stable")
            cats_sorted, ious_sorted = cats_all[order], ious_all[order]
            bounds = np.flatnonzero(np.diff(cats_sorted)) + 1
            for chunk_cats, chunk in zip(np.split(cats_sorted, bounds), np.split(ious_sorted, bounds)):
                if chunk.size:
                    sums[int(chunk_cats[0])] = math.fsum(chunk.tolist())
        return sums

    def compute(self):
        """Group results ``{"pq", "sq", "rq", "n"}`` (fractions), per-category results and the protocol."""
        cats = self._cats
        iou_sums = self._iou_sums()
        per_category, values = [], []
        for i, cid in enumerate(cats.ids):
            tp, fp, fn, iou = int(self.tp[i]), int(self.fp[i]), int(self.fn[i]), iou_sums[i]
            entry = {"id": cid, "name": cats.names[i], "isthing": int(cats.isthing[i]),
                     "tp": tp, "fp": fp, "fn": fn, "iou_sum": iou, "counted": tp + fp + fn > 0}
            if entry["counted"]:
                denominator = tp + 0.5 * fp + 0.5 * fn
                entry.update(pq=iou / denominator, sq=iou / tp if tp else 0.0, rq=tp / denominator)
                values.append((entry["pq"], entry["sq"], entry["rq"]))
            else:
                entry.update(pq=None, sq=None, rq=None)
                values.append(None)
            per_category.append(entry)

        result = {"protocol": protocol_name(cats.unknown), "images": self.images}
        for group, mask in cats.groups().items():
            pq = sq = rq = 0.0
            n = 0
            for in_group, value in zip(mask, values):
                if in_group and value is not None:
                    pq, sq, rq, n = pq + value[0], sq + value[1], rq + value[2], n + 1
            if n:
                result[group] = {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}
            else:
                result[group] = {"pq": None, "sq": None, "rq": None, "n": 0,
                                 "note": "no category of this group has a TP, FP or FN"}
        result["per_category"] = per_category
        return result


def read_panoptic_png(path):
    """Read a panoptic PNG as an (H, W) uint32 id map, ``id = R + 256 G + 256² B`` (panopticapi ``rgb2id``).

    The file must be an RGB or RGBA PNG by its signature (:func:`maskbench.fileio.read_label_png`: a JPEG saved
    as ``.png`` would change the ids); alpha is ignored, as ``rgb2id`` ignores it.
    """
    pixels = read_label_png(path, modes=("RGB", "RGBA"))
    return rgb_to_id(pixels[..., :3]).astype(np.uint32)


def _load_json(path, what):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} JSON file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read the {what} JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise InputError(f"{path}: expected a panoptic JSON object with an 'annotations' list")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "file_name", "segments_info"} <= ann.keys():
            raise InputError(f"{path}: annotations[{i}] needs 'image_id', 'file_name' and 'segments_info'")
    return data


def _evaluate_images(categories, unknown, jobs):
    """Evaluate a list of (gt_png, gt_segments, gt_label, pred_png, pred_segments, pred_label) jobs."""
    quality = PanopticQuality(categories, unknown=unknown)
    for gt_png, gt_segments, gt_label, pred_png, pred_segments, pred_label in jobs:
        quality.update(read_panoptic_png(gt_png), gt_segments, read_panoptic_png(pred_png), pred_segments,
                       gt_name=gt_label, pred_name=pred_label)
    return quality


def _inside(folder, name, listing):
    """``folder/name`` for a PNG named in the JSON ``listing``; a name that would leave ``folder`` is refused."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise InputError(f"{listing}: file_name {name!r} is not a file name inside {folder}; refusing to read it")
    return os.path.join(folder, name)


def _evaluate_chunk(jobs, categories, unknown):
    return _evaluate_images(categories, unknown, jobs)


def pq_compute_files(gt_json, gt_dir, pred_json, pred_dir, unknown=None, *, workers=1):
    """PQ / SQ / RQ of panopticapi-format files (``pq_compute``); with ``unknown`` the EOPSN protocol.

    Every GT image needs a prediction with the same ``image_id``; extra predictions are ignored (as in
    panopticapi). ``workers > 1`` evaluates image chunks in separate processes; the result is identical.
    """
    gt = _load_json(gt_json, "GT")
    pred = _load_json(pred_json, "prediction")
    if not isinstance(gt.get("categories"), list):
        raise InputError(f"{gt_json}: expected a 'categories' list in the GT JSON")
    for folder, what in ((gt_dir, "GT"), (pred_dir, "prediction")):
        if not os.path.isdir(folder):
            raise InputError(f"{folder}: {what} PNG folder does not exist")
    workers = _int_field(workers, "workers")
    if workers < 1:
        raise InputError(f"workers: expected a positive integer, got {workers}")

    pred_by_image = {}
    for ann in pred["annotations"]:
        if ann["image_id"] in pred_by_image:
            raise InputError(f"{pred_json}: image_id {ann['image_id']!r} appears twice in 'annotations'")
        pred_by_image[ann["image_id"]] = ann
    jobs, seen = [], set()
    for ann in gt["annotations"]:
        image_id = ann["image_id"]
        if image_id in seen:
            raise InputError(f"{gt_json}: image_id {image_id!r} appears twice in 'annotations'")
        seen.add(image_id)
        if image_id not in pred_by_image:
            raise InputError(f"{pred_json}: no prediction for image_id {image_id!r}")
        pred_ann = pred_by_image[image_id]
        gt_png = _inside(gt_dir, ann["file_name"], gt_json)
        pred_png = _inside(pred_dir, pred_ann["file_name"], pred_json)
        jobs.append((gt_png, ann["segments_info"], f"{gt_png} (image_id {image_id!r}, {gt_json})",
                     pred_png, pred_ann["segments_info"], f"{pred_png} (image_id {image_id!r}, {pred_json})"))

    # validate the categories (and the unknown split) once, before any PNG is read
    try:
        quality = PanopticQuality(gt["categories"], unknown=unknown)
    except InputError as err:
        raise InputError(f"{gt_json}: {err}") from None
    if workers == 1 or len(jobs) < 2:
        return quality.merge(_evaluate_images(gt["categories"], unknown, jobs)).compute()
    merged = map_merge(_evaluate_chunk, jobs, (gt["categories"], unknown), min(workers, len(jobs)), lambda n: None)
    return quality.merge(merged).compute()


def format_table(result):
    """The summary table (values x100, as panopticapi prints them), headed by the protocol."""
    groups = [g for g in _OPEN_GROUPS if g in result]
    lines = [f"Protocol: {result['protocol']}  ({result['images']} images)",
             f"{'':10s}| {'PQ':>6s} {'SQ':>6s} {'RQ':>6s} {'N':>5s}", "-" * 38]
    for group in groups:
        row = result[group]
        cells = ["  null" if row[k] is None else f"{100 * row[k]:6.1f}" for k in ("pq", "sq", "rq")]
        lines.append(f"{group:10s}| {cells[0]} {cells[1]} {cells[2]} {row['n']:5d}")
    return "\n".join(lines)
