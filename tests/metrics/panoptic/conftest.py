"""Helpers for the panoptic / open-IoU tests: tiny panopticapi files, random panoptic images, and slow
literal references (panopticapi's per-image dict loop with EOPSN re-keying; a per-pixel confusion loop)."""

import copy
import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image


def ids_to_rgb(ids):
    """id -> RGB with id = R + 256 G + 256^2 B (panopticapi encoding)."""
    ids = np.asarray(ids, dtype=np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def write_dataset(root, categories, images):
    """Write GT and prediction JSON + PNG folders; ``images``: list of (image_id, gt_ids, gt_segs, pred_ids, pred_segs).

    Returns (gt_json, gt_dir, pred_json, pred_dir) paths as strings.
    """
    gt_dir, pred_dir = root / "gt", root / "pred"
    gt_dir.mkdir(parents=True, exist_ok=True)
    pred_dir.mkdir(parents=True, exist_ok=True)
    gt_anns, pred_anns = [], []
    for image_id, gt_ids, gt_segs, pred_ids, pred_segs in images:
        name = f"{image_id:06d}.png"
        Image.fromarray(ids_to_rgb(gt_ids), "RGB").save(gt_dir / name)
        Image.fromarray(ids_to_rgb(pred_ids), "RGB").save(pred_dir / name)
        gt_anns.append({"image_id": image_id, "file_name": name, "segments_info": gt_segs})
        pred_anns.append({"image_id": image_id, "file_name": name, "segments_info": pred_segs})
    gt_json, pred_json = root / "gt.json", root / "pred.json"
    gt_json.write_text(json.dumps({"annotations": gt_anns, "categories": categories}))
    pred_json.write_text(json.dumps({"annotations": pred_anns}))
    return str(gt_json), str(gt_dir), str(pred_json), str(pred_dir)


# ---------------------------------------------------------------------------------------------------------
# Literal reference: panopticapi pq_compute_single_core + PQStat.pq_average, EOPSN re-keying (lib/evaluation.py)
# ---------------------------------------------------------------------------------------------------------

def _literal_image(stats, gt_ids, gt_segments, pred_ids, pred_segments, categories):
    offset = 256 * 256 * 256
    gt_by_id = {seg["id"]: seg for seg in gt_segments}
    pred_by_id = {seg["id"]: dict(seg) for seg in pred_segments}

    leftover = set(pred_by_id)
    values, counts = np.unique(pred_ids, return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist()):
        if value not in pred_by_id:
            if value == 0:
                continue
            raise KeyError(f"segment {value} in PNG not in JSON")
        pred_by_id[value]["area"] = count
        leftover.remove(value)
        if pred_by_id[value]["category_id"] not in categories:
            raise KeyError(f"segment {value} has unknown category {pred_by_id[value]['category_id']}")
    if leftover:
        raise KeyError(f"segments {sorted(leftover)} in JSON not in PNG")

    packed = gt_ids.astype(np.uint64) * offset + pred_ids.astype(np.uint64)
    overlap = {}
    values, counts = np.unique(packed, return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist()):
        overlap[(value // offset, value % offset)] = count

    gt_hit, pred_hit = set(), set()
    for (g, p), inter in overlap.items():
        if g not in gt_by_id or p not in pred_by_id:
            continue
        gseg, pseg = gt_by_id[g], pred_by_id[p]
        if gseg["iscrowd"] == 1 or gseg["category_id"] != pseg["category_id"]:
            continue
        union = pseg["area"] + gseg["area"] - inter - overlap.get((0, p), 0)
        iou = inter / union
        if iou > 0.5:
            stats[gseg["category_id"]]["tp"] += 1
            stats[gseg["category_id"]]["iou"] += iou
            if "original_category_id" in gseg:
                stats[gseg["original_category_id"]]["tp"] += 1
                stats[gseg["original_category_id"]]["iou"] += iou
            gt_hit.add(g)
            pred_hit.add(p)

    crowd_of = {}
    for g, gseg in gt_by_id.items():
        if g in gt_hit:
            continue
        if gseg["iscrowd"] == 1:
            crowd_of[gseg["category_id"]] = g
            continue
        stats[gseg["category_id"]]["fn"] += 1
        if "original_category_id" in gseg:
            stats[gseg["original_category_id"]]["fn"] += 1

    for p, pseg in pred_by_id.items():
        if p in pred_hit:
            continue
        ignored = overlap.get((0, p), 0)
        if pseg["category_id"] in crowd_of:
            ignored += overlap.get((crowd_of[pseg["category_id"]], p), 0)
        if ignored / pseg["area"] > 0.5:
            continue
        stats[pseg["category_id"]]["fp"] += 1


def literal_pq(categories_list, images, unknown_names=None):
    """Slow reference. ``images``: list of (gt_ids, gt_segments, pred_ids, pred_segments)."""
    categories = {c["id"]: dict(c) for c in categories_list}
    images = copy.deepcopy(images)
    if unknown_names is not None:
        rekeyed, unknown_ids = {}, []
        for cid, cat in categories.items():
            if cat["name"] in unknown_names:
                unknown_ids.append(cid)
                rekeyed[-cid - 1] = dict(cat, id=-cid - 1, name="unknown_" + cat["name"])
            else:
                rekeyed[cid] = cat
        rekeyed[-1] = {"id": -1, "name": "unknown", "isthing": 1}
        categories = rekeyed
        for _, gt_segments, _, _ in images:
            for seg in gt_segments:
                if seg["category_id"] in unknown_ids:
                    seg["original_category_id"] = -seg["category_id"] - 1
                    seg["category_id"] = -1

    stats = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
    for gt_ids, gt_segments, pred_ids, pred_segments in images:
        _literal_image(stats, gt_ids, gt_segments, pred_ids, pred_segments, categories)

    def average(select):
        pq = sq = rq = 0.0
        n = 0
        for cid, cat in categories.items():
            if not select(cid, cat):
                continue
            s = stats[cid]
            if s["tp"] + s["fp"] + s["fn"] == 0:
                continue
            n += 1
            den = s["tp"] + 0.5 * s["fp"] + 0.5 * s["fn"]
            pq += s["iou"] / den
            sq += s["iou"] / s["tp"] if s["tp"] != 0 else 0
            rq += s["tp"] / den
        if n == 0:
            return {"pq": None, "sq": None, "rq": None, "n": 0}
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}

    if unknown_names is None:
        groups = {
            "All": lambda cid, cat: True,
            "Things": lambda cid, cat: cat["isthing"] == 1,
            "Stuff": lambda cid, cat: cat["isthing"] == 0,
        }
    else:  # EOPSN pq_average with (isthing, isunknown) = (None, None), (True, False), (True, True), (False, None)
        groups = {
            "All": lambda cid, cat: cid >= 0,
            "Things": lambda cid, cat: cat["isthing"] == 1 and cid > -1,
            "Unknown": lambda cid, cat: cat["isthing"] == 1 and cid == -1,
            "Stuff": lambda cid, cat: cat["isthing"] == 0 and cid >= -1,
        }
    result = {name: average(select) for name, select in groups.items()}
    result["stats"] = {cid: dict(stats[cid]) for cid in categories}
    return result


# ---------------------------------------------------------------------------------------------------------
# Random panoptic images
# ---------------------------------------------------------------------------------------------------------

def random_panoptic_image(rng, categories, shape=(24, 32), n_gt=8, crowd_p=0.2, void_p=0.1, area_jitter=False,
                          unknown_ids=()):
    """One random (gt_ids, gt_segments, pred_ids, pred_segments): rectangles painted in turn, predictions
    derived from the GT by shifting, relabelling and merging, plus random void on both sides."""
    h, w = shape
    cat_ids = [c["id"] for c in categories]

    def paint(n, ids_pool):
        canvas = np.zeros(shape, np.int64)
        for seg_id in ids_pool[:n]:
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            y1, x1 = min(h, y0 + rng.integers(2, h // 2 + 2)), min(w, x0 + rng.integers(2, w // 2 + 2))
            canvas[y0:y1, x0:x1] = seg_id
        return canvas

    id_pool = np.unique(rng.integers(1, 2**24, size=8 * n_gt))
    id_pool = rng.permutation(id_pool)[:4 * n_gt]  # distinct ids over the whole 24-bit range
    gt = paint(n_gt, id_pool)
    gt[rng.random(shape) < void_p] = 0
    gt_segments = []
    for seg_id in np.unique(gt):
        if seg_id == 0:
            continue
        area = int((gt == seg_id).sum())
        if area_jitter:
            area += int(rng.integers(0, 4))
        gt_segments.append({"id": int(seg_id), "category_id": int(rng.choice(cat_ids)),
                            "iscrowd": int(rng.random() < crowd_p), "area": area})

    # prediction: shifted GT, a few fresh rectangles, some void
    pred = np.roll(gt, shift=(int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
    extra = paint(int(rng.integers(0, 4)), id_pool[2 * n_gt:])
    pred = np.where(extra > 0, extra, pred)
    pred[rng.random(shape) < void_p] = 0
    gt_cat = {s["id"]: s["category_id"] for s in gt_segments}
    pred_segments = []
    allowed = [c for c in cat_ids if c not in unknown_ids] + ([-1] if unknown_ids else [])
    for seg_id in np.unique(pred):
        if seg_id == 0:
            continue
        cat = gt_cat.get(int(seg_id))
        if cat is None or rng.random() < 0.2:
            cat = int(rng.choice(cat_ids))
        if cat in unknown_ids:
            cat = -1
        if cat not in allowed:
            cat = allowed[0]
        pred_segments.append({"id": int(seg_id), "category_id": int(cat)})
    return gt, gt_segments, pred, pred_segments


# ---------------------------------------------------------------------------------------------------------
# Literal per-pixel confusion matrix (rows GT, columns prediction)
# ---------------------------------------------------------------------------------------------------------

def literal_confusion(gt, pred, n):
    matrix = [[0] * n for _ in range(n)]
    for g, p in zip(np.asarray(gt).ravel().tolist(), np.asarray(pred).ravel().tolist()):
        matrix[g][p] += 1
    return matrix


def literal_iou(matrix, ignore):
    """IoU per class with row/column ``ignore`` dropped; None for 0/0."""
    n = len(matrix)
    out = []
    for c in range(n):
        tp = matrix[c][c] if c != ignore else 0
        fp = sum(matrix[r][c] for r in range(n) if r != ignore and r != c) if c != ignore else 0
        fn = sum(matrix[c][k] for k in range(n) if k != ignore and k != c) if c != ignore else 0
        out.append(None if tp + fp + fn == 0 else tp / (tp + fp + fn))
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(20240521)


@pytest.fixture(scope="session")
def helpers():
    """The helpers above (conftest modules are not importable under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(write_dataset=write_dataset, literal_pq=literal_pq, ids_to_rgb=ids_to_rgb,
                           random_panoptic_image=random_panoptic_image, literal_confusion=literal_confusion,
                           literal_iou=literal_iou)
