"""Tiny, format-faithful replicas of every dataset's official layout, with the content they must load as.

``make(name, out_dir, frames=N, seed=S)`` writes the official tree under ``out_dir`` (file names, folders,
formats, label encodings, decoys such as unlabelled test frames and ``_color`` files) and returns a
:class:`Replica` whose ``samples`` are the arrays ``load_dataset(name, replica.root)`` must yield, in order.
Ground truth is drawn first as ``ood`` (0 inlier, 1 anomaly, 255 void) and then *encoded* into the dataset's
raw label values, so reading a replica back tests the decoding.

Images are written lossless where the official format allows it (PNG; RoadObstacle21's WebP with
``lossless=True``), so they compare exactly. JPEG datasets (RoadAnomaly21, Road Anomaly, COCO) get smooth
gradient images at quality 95 without chroma subsampling and ``image_tolerance`` bounds the codec error.
Sizes are 64x128 (2:1) or 72x128 (16:9, Road Anomaly and StreetHazards).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from maskbench.datasets.base import Sample
from maskbench.datasets.coco import id_to_rgb
from maskbench.errors import DatasetError

JPEG_TOLERANCE = 8


@dataclass(frozen=True)
class Replica:
    """A written replica: pass ``root`` (and ``options``) to ``load_dataset``; ``samples`` is what it yields."""

    name: str
    root: Path
    samples: tuple
    files: dict = field(default_factory=dict)  # frame id -> {role: path}, for tests that corrupt a file
    options: dict = field(default_factory=dict)
    image_tolerance: int = 0


# -- content ---------------------------------------------------------------------------------------------------
def _image(rng, h, w, *, lossy):
    """A smooth gradient between four random corner colours; plus per-pixel noise when stored losslessly."""
    corners = rng.integers(0, 256, size=(2, 2, 3)).astype(np.float64)
    y = np.linspace(0, 1, h)[:, None, None]
    x = np.linspace(0, 1, w)[None, :, None]
    img = (corners[0, 0] * (1 - y) * (1 - x) + corners[0, 1] * (1 - y) * x
           + corners[1, 0] * y * (1 - x) + corners[1, 1] * y * x)
    if not lossy:
        img = img + rng.integers(-20, 21, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _rect(rng, h, w, top=0):
    """A random rectangle (as slices) inside rows ``top..h``, at least 4x4 pixels."""
    y0 = int(rng.integers(top, h - 4))
    x0 = int(rng.integers(0, w - 4))
    return slice(y0, int(rng.integers(y0 + 4, min(h, y0 + h // 3) + 1))), slice(x0, int(rng.integers(x0 + 4, min(w, x0 + w // 3) + 1)))


def _ood(rng, h, w, *, void=True, anomalies=2):
    """0 background, a void band at the top (and a void patch), ``anomalies`` anomaly rectangles below it."""
    ood = np.zeros((h, w), np.uint8)
    if void:
        ood[: int(rng.integers(h // 8, h // 4))] = 255
        ood[_rect(rng, h, w, top=h // 4)] = 255
    for _ in range(anomalies):
        ood[_rect(rng, h, w, top=h // 4)] = 1
    return ood


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _save_jpg(path, array):
    return _save(path, array, quality=95, subsampling=0)


# -- one writer per dataset: (out_dir, frames, rng, size) -> Replica ----------------------------------------------
def _smiyc(name, top, ext, ids, decoys, out, rng, h, w, obstacle):
    root = out / top
    samples, files = [], {}
    for fid in list(ids) + list(decoys):
        image = _image(rng, h, w, lossy=ext == ".jpg")
        path = root / "images" / f"{fid}{ext}"
        _save_jpg(path, image) if ext == ".jpg" else _save(path, image, lossless=True)
        if fid in decoys:
            continue
        ood = _ood(rng, h, w)
        if obstacle:  # off-road (left and right of a road strip) is void
            ood[:, : w // 5] = 255
            ood[:, -w // 5:] = 255
        label = _save(root / "labels_masks" / f"{fid}_labels_semantic.png", ood)
        _save(root / "labels_masks" / f"{fid}_labels_semantic_color.png", np.stack([ood, ood // 2, 255 - ood], -1))
        samples.append(Sample(fid, image, ood))
        files[fid] = {"image": path, "label": label}
    samples.sort(key=lambda s: s.id)
    tol = JPEG_TOLERANCE if ext == ".jpg" else 0
    return Replica(name, root, tuple(samples), files, image_tolerance=tol)


def _ra21(out, n, rng, h, w):
    return _smiyc("smiyc-ra21", "dataset_AnomalyTrack", ".jpg", [f"validation{i:04d}" for i in range(n)],
                  ["zebra0000"], out, rng, h, w, obstacle=False)


def _ro21(out, n, rng, h, w):
    return _smiyc("smiyc-ro21", "dataset_ObstacleTrack", ".webp", [f"validation_{i + 1}" for i in range(n)],
                  ["snowstorm1_00_16_02.578", "darkasphalt_axestump_2"], out, rng, h, w, obstacle=True)


LAF_TEST_SCENES = ("02_Hanns_Klemm_Str_44", "04_Maurener_Weg_8", "05_Schafgasse_1", "07_Festplatz_Flugfeld",
                   "15_Rechbergstr_Deckenpfronn")


def _laf_ids(n, scenes):
    return sorted(f"{scenes[i % len(scenes)]}_{i // len(scenes):06d}_{30 + 10 * i:06d}" for i in range(n))


def _laf_label(rng, ood):
    """labelIds from ood: void -> 0, inlier -> 1 (free space), each anomaly rectangle -> one object id 2..200."""
    label = np.where(ood == 255, 0, 1).astype(np.uint8)
    label[ood == 1] = rng.choice([2, 31, 37, 200])  # 31/37: "non-hazard" objects, trainId 0 in labelTrainIds
    return label


def _lost_and_found(out, n, rng, h, w):
    root = out / "LostAndFound"
    samples, files = [], {}
    for fid in _laf_ids(n, LAF_TEST_SCENES) + ["01_Hanns_Klemm_Str_45_000000_000020"]:  # + one train frame
        split = "train" if fid.startswith("01_") else "test"
        scene = fid[:-14]
        image = _image(rng, h, w, lossy=False)
        ood = _ood(rng, h, w)
        label = _laf_label(rng, ood)
        ipath = _save(root / "leftImg8bit" / split / scene / f"{fid}_leftImg8bit.png", image)
        lpath = _save(root / "gtCoarse" / split / scene / f"{fid}_gtCoarse_labelIds.png", label)
        _save(root / "gtCoarse" / split / scene / f"{fid}_gtCoarse_instanceIds.png", (ood == 1).astype(np.uint8))
        if split == "test":
            samples.append(Sample(fid, image, ood))
            files[fid] = {"image": ipath, "label": lpath}
    return Replica("lost-and-found", root, tuple(samples), files)


def _fs_laf(out, n, rng, h, w):
    root = out / "LostAndFound"
    scenes = ("01_Hanns_Klemm_Str_45", "04_Maurener_Weg_8", "13_Elly_Beinhorn_Str")
    samples, files = [], {}
    for i, laf_id in enumerate(_laf_ids(n, scenes)):
        split = "test" if laf_id.startswith("04_") else "train"
        fid = f"{i:04d}_{laf_id}"
        image = _image(rng, h, w, lossy=False)
        ood = _ood(rng, h, w)
        ipath = _save(root / "leftImg8bit" / split / laf_id[:-14] / f"{laf_id}_leftImg8bit.png", image)
        lpath = _save(root / "fishyscapes_lostandfound" / f"{fid}_labels.png", ood)
        samples.append(Sample(fid, image, ood))
        files[fid] = {"image": ipath, "label": lpath}
    return Replica("fs-laf", root, tuple(samples), files)


def _fs_static(out, n, rng, h, w):
    root = out / "cityscapes"
    cities = ("frankfurt", "lindau", "munster")
    samples, files = [], {}
    for i in range(n):
        city_id = f"{cities[i % 3]}_{i:06d}_{19 + 7 * i:06d}"
        fid = f"{i:04d}_{city_id}"
        base = _image(rng, h, w, lossy=False)
        rgb = np.zeros((h, w, 3), np.int16)
        ood = _ood(rng, h, w)
        rgb[ood == 1] = rng.integers(-300, 301, size=(int((ood == 1).sum()), 3))  # pasted object; clipping exercised
        image = np.clip(base.astype(np.int32) + rgb, 0, 255).astype(np.uint8)
        bpath = _save(root / "leftImg8bit" / "val" / cities[i % 3] / f"{city_id}_leftImg8bit.png", base)
        lpath = _save(root / "fs_val_v3" / f"{fid}_labels.png", ood)
        opath = root / "fs_val_v3" / f"{fid}_rgb.npz"
        np.savez(opath, rgb=rgb)
        samples.append(Sample(fid, image, ood))
        files[fid] = {"base": bpath, "label": lpath, "overlay": opath}
    return Replica("fs-static", root, tuple(samples), files)


def _road_anomaly(out, n, rng, h, w):
    root = out / "RoadAnomaly_jpg"
    kinds = ("animals", "cones", "vehicle")
    names = [f"{kinds[i % 3]}{i // 3 + 1:02d}_replica_scene.jpg" for i in range(n)]
    samples, files = [], {}
    for name in names:
        fid = name[:-4]
        image = _image(rng, h, w, lossy=True)
        ood = _ood(rng, h, w, void=False)
        ipath = _save_jpg(root / "frames" / name, image)
        lpath = _save(root / "frames" / f"{fid}.labels" / "labels_semantic.png", (ood * 2).astype(np.uint8))
        _save(root / "frames" / f"{fid}.labels" / "labels_instance.png", ood)
        samples.append(Sample(fid, image, ood))
        files[fid] = {"image": ipath, "label": lpath}
    (root / "frame_list.json").write_text(json.dumps(names[::-1]))  # listing order is not the yield order
    samples.sort(key=lambda s: s.id)
    return Replica("road-anomaly", root, tuple(samples), files, image_tolerance=JPEG_TOLERANCE)


def _streethazards_semantic(raw):
    """DenseHybrid's 12-class map, written as its arithmetic: png - 1; 'other' (3) and anomaly (13) ignored; > 3 shift down."""
    sem = raw.astype(np.int32) - 1
    ignored = (sem == 3) | (sem == 13)
    sem[sem > 3] -= 1
    sem[ignored] = 255
    return sem.astype(np.uint8)


def _streethazards(out, n, rng, h, w):
    root = out / "streethazards"
    for kind in ("images", "annotations"):  # both towns' folders exist even when no frame falls in t6
        for town in ("t5", "t6"):
            (root / "test" / kind / "test" / town).mkdir(parents=True, exist_ok=True)
    samples, files = [], {}
    for i in range(n):
        town = "t5" if i < (n + 1) // 2 else "t6"
        raw = np.full((h, w), 8, np.uint8)  # road
        for value in (1, 4, 2, 11, 13):  # unlabeled, other, building, car, traffic sign
            raw[_rect(rng, h, w)] = value
        if town == "t5":  # t6 frames carry no anomaly: exercises "images without anomaly"
            raw[_rect(rng, h, w, top=h // 4)] = 14
        rgba = np.dstack([_image(rng, h, w, lossy=False), rng.integers(0, 256, (h, w), dtype=np.uint8)])
        ood = np.where(raw == 14, 1, 0).astype(np.uint8)
        ood[raw == 4] = 255
        ipath = _save(root / "test" / "images" / "test" / town / f"{i + 1}.png", rgba)
        lpath = _save(root / "test" / "annotations" / "test" / town / f"{i + 1}.png", raw)
        fid = f"{town}_{i + 1}"
        samples.append(Sample(fid, rgba[..., :3].copy(), ood, semantic=_streethazards_semantic(raw)))
        files[fid] = {"image": ipath, "label": lpath}
    return Replica("streethazards", root, tuple(samples), files)


# cityscapes labels.py: (labelId, trainId) of the 19 evaluated classes; every other labelId is ignored
CITYSCAPES_TRAIN_IDS = [(7, 0), (8, 1), (11, 2), (12, 3), (13, 4), (17, 5), (19, 6), (20, 7), (21, 8), (22, 9),
                        (23, 10), (24, 11), (25, 12), (26, 13), (27, 14), (28, 15), (31, 16), (32, 17), (33, 18)]


def _cityscapes(out, n, rng, h, w):
    root = out / "cityscapes"
    cities = ("frankfurt", "lindau", "munster")
    to_train = dict(CITYSCAPES_TRAIN_IDS)
    samples, files = [], {}
    for i in range(n):
        city = cities[i % 3]
        fid = f"{city}_{i:06d}_{19 + 7 * i:06d}"
        label_ids = np.full((h, w), 7, np.uint8)
        for value in rng.choice(34, size=8, replace=False):
            label_ids[_rect(rng, h, w)] = value
        semantic = np.array([[to_train.get(int(v), 255) for v in row] for row in label_ids], np.uint8)
        image = _image(rng, h, w, lossy=False)
        ipath = _save(root / "leftImg8bit" / "val" / city / f"{fid}_leftImg8bit.png", image)
        lpath = _save(root / "gtFine" / "val" / city / f"{fid}_gtFine_labelIds.png", label_ids)
        _save(root / "gtFine" / "val" / city / f"{fid}_gtFine_labelTrainIds.png", semantic)
        ood = np.where(semantic == 255, 255, 0).astype(np.uint8)
        samples.append(Sample(fid, image, ood, semantic=semantic))
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


def _coco(out, n, rng, h, w):
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
            panoptic[_rect(rng, h, w, top=h // 3)] = 0x010203 * (k + 2) + i
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
        image = _image(rng, h, w, lossy=True)
        rgb = id_to_rgb(panoptic)
        ipath = _save_jpg(root / "val2017" / f"{stem}.jpg", image)
        ppath = _save(root / "panoptic_val2017" / f"{stem}.png", rgb)
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


WRITERS = {
    "smiyc-ra21": (_ra21, (64, 128)), "smiyc-ro21": (_ro21, (64, 128)), "fs-laf": (_fs_laf, (64, 128)),
    "fs-static": (_fs_static, (64, 128)), "road-anomaly": (_road_anomaly, (72, 128)),
    "lost-and-found": (_lost_and_found, (64, 128)), "streethazards": (_streethazards, (72, 128)),
    "coco-open-panoptic": (_coco, (64, 96)), "cityscapes": (_cityscapes, (64, 128)),
}


def make(name, out_dir, frames=3, seed=0, *, size=None):
    """Write a replica of dataset ``name`` with ``frames`` labelled frames under ``out_dir``; return a :class:`Replica`.

    ``size=(H, W)`` overrides the default frame size (at least 16x16). Same arguments, same bytes.
    """
    if name not in WRITERS:
        raise DatasetError(f"no replica for dataset {name!r}; replicas exist for: {', '.join(sorted(WRITERS))}")
    if not isinstance(frames, int) or frames < 1:
        raise DatasetError(f"{name} replica: frames must be a positive integer, got {frames!r}")
    writer, default_size = WRITERS[name]
    h, w = size or default_size
    if h < 16 or w < 16:
        raise DatasetError(f"{name} replica: size must be at least 16x16, got {h}x{w}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return writer(out, frames, np.random.default_rng(seed), h, w)
