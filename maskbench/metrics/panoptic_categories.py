"""Panoptic evaluation categories and ``segments_info`` tables (panopticapi ``evaluation.py``; EOPSN open set).

:class:`PanopticCategories` is panopticapi's ``categories`` dict; with an unknown split it is re-keyed as
jd730/EOPSN ``lib/evaluation.py`` does: the split's classes count as the merged category ``UNKNOWN_ID`` in
the GT and are listed as ``-c-1`` (``unknown_<name>``). :func:`segment_table` validates one image's
``segments_info`` and maps it onto the evaluation categories (the checks: :mod:`maskbench.metrics.panoptic`).
"""

from operator import index as _as_index

import numpy as np

from maskbench.errors import InputError

__all__ = ["UNKNOWN_ID", "UNKNOWN_SPLITS", "PanopticCategories", "segment_table", "int_field"]

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


def int_field(value, what):
    """``value`` as a Python int (any integer type, not bool); an :class:`InputError` naming ``what`` otherwise."""
    if isinstance(value, bool):
        raise InputError(f"{what}: expected an integer, got {value!r}")
    try:
        return _as_index(value)
    except TypeError:
        raise InputError(f"{what}: expected an integer, got {value!r}") from None


class PanopticCategories:
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
            cid = int_field(cat["id"], f"categories[{i}]['id']")
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


def segment_table(segments, *, name, is_gt, cats):
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
        sid = int_field(seg["id"], f"{name}: segments_info[{i}]['id']")
        if sid <= 0:
            raise InputError(f"{name}: segment id {sid} is not allowed (0 is VOID, ids are positive)")
        if sid in seen:
            raise InputError(f"{name}: segment id {sid} appears twice in segments_info")
        seen.add(sid)
        cid = int_field(seg["category_id"], f"{name}: segment {sid} 'category_id'")
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
