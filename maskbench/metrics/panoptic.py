"""Panoptic quality PQ / SQ / RQ with cocodataset/panopticapi semantics, and the EOPSN open-set protocol.

Per image (Kirillov et al. CVPR'19, Eq. 1; panopticapi ``evaluation.py`` ``pq_compute_single_core``):

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

The categories, EOPSN splits and ``segments_info`` checks are in :mod:`maskbench.metrics.panoptic_categories`;
panopticapi-format files (``pq_compute``) and the summary table in :mod:`maskbench.metrics.panoptic_files`.
"""

import math

import numba
import numpy as np

from maskbench.errors import InputError
from maskbench.metrics.panoptic_categories import UNKNOWN_SPLITS, PanopticCategories, segment_table

__all__ = ["PanopticQuality", "protocol_name"]


def protocol_name(unknown=None):
    """The protocol string stated next to every number."""
    if unknown is None:
        return "panopticapi PQ (IoU > 0.5 matching; unweighted mean over categories)"
    return (
        f"EOPSN-{unknown} open-set PQ (panopticapi matching; {len(UNKNOWN_SPLITS[unknown])} unknown COCO thing "
        f"classes merged into category -1; All/Things cover known classes only)"
    )


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
        self._cats = PanopticCategories(categories, unknown)
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
        g_sid, g_cat, g_orig, g_crowd, g_area = segment_table(gt_segments, name=gt_name, is_gt=True, cats=cats)
        p_sid, p_cat, _, _, _ = segment_table(pred_segments, name=pred_name, is_gt=False, cats=cats)
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
