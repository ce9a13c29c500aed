"""Replicas of the datasets with semantic / panoptic ground truth: Cityscapes val (labelIds, trainIds,
instanceIds) and COCO panoptic val2017 (see :mod:`.replica` for the recipe)."""

import json

import numpy as np

from maskbench.datasets.base import Sample
from maskbench.datasets.coco import id_to_rgb
from maskbench.datasets.replica_content import JPEG_TOLERANCE, Replica, rect, save, save_jpg, smooth_image


# cityscapes labels.py: (labelId, trainId) of the 19 evaluated classes; every other labelId is ignored
CITYSCAPES_TRAIN_IDS = [(7, 0), (8, 1), (11, 2), (12, 3), (13, 4), (17, 5), (19, 6), (20, 7), (21, 8), (22, 9),
                        (23, 10), (24, 11), (25, 12), (26, 13), (27, 14), (28, 15), (31, 16), (32, 17), (33, 18)]


def cityscapes_replica(out, n, rng, h, w):
    root = out / "cityscapes"
    cities = ("frankfurt", "lindau", "munster")
    to_train = dict(CITYSCAPES_TRAIN_IDS)
    samples, files = [], {}
    for i in range(n):
        city = cities[i % 3]
        fid = f"{city}_{i:06d}_{19 + 7 * i:06d}"
        label_ids = np.full((h, w), 7, np.uint8)
        for value in rng.choice(34, size=8, replace=False):
            label_ids[rect(rng, h, w)] = value
        instances = label_ids.astype(np.int32)
        for k, value in enumerate((24, 26, 26, 29)):  # person, two cars, a caravan (instances, ignored in eval)
            sl = rect(rng, h, w)
            label_ids[sl] = value
            instances[sl] = value * 1000 + k
        instances[label_ids == 33] = 33  # a bicycle group: labelId only, no instance
        semantic = np.array([[to_train.get(int(v), 255) for v in row] for row in label_ids], np.uint8)
        image = smooth_image(rng, h, w, lossy=False)
        ipath = save(root / "leftImg8bit" / "val" / city / f"{fid}_leftImg8bit.png", image)
        lpath = save(root / "gtFine" / "val" / city / f"{fid}_gtFine_labelIds.png", label_ids)
        save(root / "gtFine" / "val" / city / f"{fid}_gtFine_labelTrainIds.png", semantic)
        save(root / "gtFine" / "val" / city / f"{fid}_gtFine_instanceIds.png", instances.astype(np.uint16))
        ood = np.where(semantic == 255, 255, 0).astype(np.uint8)
        samples.append(Sample(fid, image, ood, semantic=semantic, label_ids=label_ids, instance_ids=instances))
        files[fid] = {"image": ipath, "label": lpath}
    samples.sort(key=lambda s: s.id)
    return Replica("cityscapes", root, tuple(samples), files)


# a few real COCO panoptic categories: (id, name, isthing); car and cow are unknown in every EOPSN split
COCO_CATEGORIES = [(1, "person", 1), (2, "bicycle", 1), (3, "car", 1), (9, "boat", 1), (13, "stop sign", 1),
                   (17, "cat", 1), (21, "cow", 1), (23, "bear", 1), (24, "zebra", 1), (32, "tie", 1),
                   (52, "banana", 1), (59, "pizza", 1), (61, "cake", 1), (67, "dining table", 1), (70, "toilet", 1),
                   (76, "keyboard", 1), (81, "sink", 1), (149, "road", 0), (187, "sky-other-merged", 0)]
K20_UNKNOWN = {2, 3, 9, 13, 17, 21, 23, 24, 32, 52, 59, 61, 67, 70, 76, 81}


def _bbox_area(mask):
    """COCO ``bbox`` ([x, y, width, height]) and ``area`` of a boolean mask."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return {"bbox": [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1], "area": int(mask.sum())}


def coco_replica(out, n, rng, h, w):
    root = out / "coco"
    isthing = {cid: t for cid, _, t in COCO_CATEGORIES}
    images, annotations, samples, files = [], [], [], {}
    for i in range(n):
        image_id = 139 + 146 * i
        stem = f"{image_id:012d}"
        panoptic = np.zeros((h, w), np.int32)  # 0 = void, left where nothing is drawn
        panoptic[h // 2:, 4:-4] = 0x0A0B0C + i  # road
        panoptic[: h // 3, 4:-4] = 0x1F0000 + i  # sky
        # (category, iscrowd): a known thing, an unknown thing, a crowd of a known thing
        segments_spec = [(1, 0), (int(rng.choice([3, 21])), 0), (1, 1)]
        for k, _ in enumerate(segments_spec):
            panoptic[rect(rng, h, w, top=h // 3)] = 0x010203 * (k + 2) + i
        ids = [0x0A0B0C + i, 0x1F0000 + i] + [0x010203 * (k + 2) + i for k in range(3)]
        cats = [(149, 0), (187, 0)] + segments_spec
        segments = tuple({"id": sid, "category_id": c, "iscrowd": crowd, "isthing": isthing[c],
                          "unknown": c in K20_UNKNOWN} for sid, (c, crowd) in zip(ids, cats)
                         if (panoptic == sid).any())
        ood = np.full((h, w), 255, np.uint8)
        semantic = np.full((h, w), 255, np.uint8)
        for s in segments:
            mask = panoptic == s["id"]
            if not s["iscrowd"]:
                ood[mask] = 1 if s["unknown"] else 0
            if not s["unknown"]:
                semantic[mask] = s["category_id"]
        image = smooth_image(rng, h, w, lossy=True)
        rgb = id_to_rgb(panoptic)
        ipath = save_jpg(root / "val2017" / f"{stem}.jpg", image)
        ppath = save(root / "panoptic_val2017" / f"{stem}.png", rgb)
        images.append({"id": image_id, "file_name": f"{stem}.jpg", "height": h, "width": w})
        annotations.append({"image_id": image_id, "file_name": f"{stem}.png", "segments_info": [
            {"id": s["id"], "category_id": s["category_id"], "iscrowd": s["iscrowd"], **_bbox_area(panoptic == s["id"])}
            for s in segments]})
        samples.append(Sample(stem, image, ood, semantic=semantic, panoptic=panoptic, segments=segments))
        files[stem] = {"image": ipath, "panoptic": ppath}
    categories = [{"id": c, "name": nm, "isthing": t, "supercategory": "replica"} for c, nm, t in COCO_CATEGORIES]
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "panoptic_val2017.json").write_text(json.dumps(
        {"info": {"description": "maskbench replica"}, "licenses": [], "images": images,
         "annotations": annotations, "categories": categories}))
    return Replica("coco-open-panoptic", root, tuple(samples), files, image_tolerance=JPEG_TOLERANCE)
