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
from pathlib import Path

import numpy as np

from maskbench.datasets.base import Sample
from maskbench.datasets.lost_and_found_splits import FISHY_LAF_VAL
from maskbench.datasets.replica_content import JPEG_TOLERANCE, Replica, ood_map, rect, save, save_jpg, smooth_image
from maskbench.datasets.replica_semantic import cityscapes_replica, coco_replica
from maskbench.errors import DatasetError, WriteError
from maskbench.fileio import ensure_writable_dir


# -- one writer per dataset: (out_dir, frames, rng, size) -> Replica ----------------------------------------------
def _smiyc(name, top, ext, ids, decoys, out, rng, h, w, obstacle):
    """Labelled validation frames ``ids`` and unlabelled official test frames ``decoys`` (images only)."""
    root = out / top
    samples, unlabelled, files = [], [], {}
    for fid in list(ids) + list(decoys):
        image = smooth_image(rng, h, w, lossy=ext == ".jpg")
        path = root / "images" / f"{fid}{ext}"
        save_jpg(path, image) if ext == ".jpg" else save(path, image, lossless=True)
        if fid in decoys:
            if fid not in STRAYS:  # in no official split: never yielded
                unlabelled.append(Sample(fid, image, None))
            files[fid] = {"image": path}
            continue
        ood = ood_map(rng, h, w)
        if obstacle:  # off-road (left and right of a road strip) is void
            ood[:, : w // 5] = 255
            ood[:, -w // 5:] = 255
        label = save(root / "labels_masks" / f"{fid}_labels_semantic.png", ood)
        save(root / "labels_masks" / f"{fid}_labels_semantic_color.png", np.stack([ood, ood // 2, 255 - ood], -1))
        samples.append(Sample(fid, image, ood))
        files[fid] = {"image": path, "label": label}
    samples.sort(key=lambda s: s.id)
    unlabelled.sort(key=lambda s: s.id)
    tol = JPEG_TOLERANCE if ext == ".jpg" else 0
    return Replica(name, root, tuple(samples), files, image_tolerance=tol, unlabelled=tuple(unlabelled))


# unlabelled official test frames written beside the labelled validation frames: one per object group
# (RA21: animals, vehicles, other, a carriage of the test split only) and per scene split (RO21: test, a dotted
# snowstorm id, night, the dog of Erasing-20, a scene outside every official split)
RA21_UNLABELLED = ("zebra0000", "caravan0000", "cones0000", "carriage0000")
STRAYS = ("unlisted_scene_1",)
RO21_UNLABELLED = ("snowstorm1_00_16_02.578", "darkasphalt_axestump_2", "curvy-street_bag_1", "driveway_boot_1",
                   "darkasphalt2_dog_1", "snowstorm2_00_01_35.045") + STRAYS


def _ra21(out, n, rng, h, w):
    return _smiyc("smiyc-ra21", "dataset_AnomalyTrack", ".jpg", [f"validation{i:04d}" for i in range(n)],
                  RA21_UNLABELLED, out, rng, h, w, obstacle=False)


def _ro21(out, n, rng, h, w):
    return _smiyc("smiyc-ro21", "dataset_ObstacleTrack", ".webp", [f"validation_{i + 1}" for i in range(n)],
                  RO21_UNLABELLED, out, rng, h, w, obstacle=True)


LAF_TEST_SCENES = ("02_Hanns_Klemm_Str_44", "04_Maurener_Weg_8", "05_Schafgasse_1", "07_Festplatz_Flugfeld",
                   "15_Rechbergstr_Deckenpfronn")


def _laf_ids(n, scenes):
    return sorted(f"{scenes[i % len(scenes)]}_{i // len(scenes):06d}_{30 + 10 * i:06d}" for i in range(n))


def _laf_label(rng, ood):
    """labelIds from ood: void -> 0, inlier -> 1 (free space), each anomaly rectangle -> one object id 2..200."""
    label = np.where(ood == 255, 0, 1).astype(np.uint8)
    label[ood == 1] = rng.choice([2, 31, 37, 200])  # 31/37: "non-hazard" objects, trainId 0 in labelTrainIds
    return label


# train frames: one outside the Fishyscapes list, one in FishyLAFObstacle-val, one of its two invalid-label frames
LAF_TRAIN = ("01_Hanns_Klemm_Str_45_000000_000020", "01_Hanns_Klemm_Str_45_000000_000080",
             "01_Hanns_Klemm_Str_45_000001_000240")


def _lost_and_found(out, n, rng, h, w):
    root = out / "LostAndFound"
    by_split, labels, files = {"test": [], "train": []}, {}, {}
    for fid in _laf_ids(n, LAF_TEST_SCENES) + list(LAF_TRAIN):
        split = "train" if fid.startswith("01_") else "test"
        scene = fid[:-14]
        image = smooth_image(rng, h, w, lossy=False)
        ood = ood_map(rng, h, w)
        label = _laf_label(rng, ood)
        ipath = save(root / "leftImg8bit" / split / scene / f"{fid}_leftImg8bit.png", image)
        lpath = save(root / "gtCoarse" / split / scene / f"{fid}_gtCoarse_labelIds.png", label)
        save(root / "gtCoarse" / split / scene / f"{fid}_gtCoarse_instanceIds.png", (ood == 1).astype(np.uint8))
        by_split[split].append(Sample(fid, image, ood))
        labels[fid] = label
        files[fid] = {"image": ipath, "label": lpath}
    roi = np.full((h, w), 255, np.uint8)  # LAF_roi_2048.png: 255 inside, 0 on the ego vehicle (bottom band)
    roi[-h // 6:, w // 4: -w // 4] = 0
    save(root / "LAF_roi_2048.png", roi)

    def anomaly(samples):  # LostAndFoundAnomaly, as written in tracks_extra.py: 255, ROI -> 0, objects -> 1
        out_samples = []
        for s in samples:
            ood = np.full((h, w), 255, np.uint8)
            ood[roi.astype(bool)] = 0
            ood[(labels[s.id] >= 2) & (labels[s.id] <= 200)] = 1
            out_samples.append(Sample(s.id, s.image, ood))
        return tuple(out_samples)

    test, train = tuple(by_split["test"]), tuple(by_split["train"])
    variants = {("subset", "train"): train, ("subset", "anomalyTest"): anomaly(test),
                ("subset", "anomalyTrain"): anomaly(train), ("subset", "fishyObstacleVal"): train[1:2]}
    return Replica("lost-and-found", root, test, files, variants=variants)


def _fs_laf(out, n, rng, h, w):
    root = out / "LostAndFound"
    if n > len(FISHY_LAF_VAL):
        raise DatasetError(f"fs-laf replica: at most {len(FISHY_LAF_VAL)} frames (the official list), got {n}")
    laf_ids = [FISHY_LAF_VAL[i * len(FISHY_LAF_VAL) // n] for i in range(n)]
    samples, files = [], {}
    for i, laf_id in enumerate(laf_ids):  # official ids (Fishyscapes' TFDS numbers NNNN are made up)
        split = "test" if laf_id.startswith("04_") else "train"
        fid = f"{i:04d}_{laf_id}"
        image = smooth_image(rng, h, w, lossy=False)
        ood = ood_map(rng, h, w)
        ipath = save(root / "leftImg8bit" / split / laf_id[:-14] / f"{laf_id}_leftImg8bit.png", image)
        lpath = save(root / "fishyscapes_lostandfound" / f"{fid}_labels.png", ood)
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
        base = smooth_image(rng, h, w, lossy=False)
        rgb = np.zeros((h, w, 3), np.int16)
        ood = ood_map(rng, h, w)
        rgb[ood == 1] = rng.integers(-300, 301, size=(int((ood == 1).sum()), 3))  # pasted object; clipping exercised
        image = np.clip(base.astype(np.int32) + rgb, 0, 255).astype(np.uint8)
        bpath = save(root / "leftImg8bit" / "val" / cities[i % 3] / f"{city_id}_leftImg8bit.png", base)
        lpath = save(root / "fs_val_v3" / f"{fid}_labels.png", ood)
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
        image = smooth_image(rng, h, w, lossy=True)
        ood = ood_map(rng, h, w, void=False)
        ipath = save_jpg(root / "frames" / name, image)
        lpath = save(root / "frames" / f"{fid}.labels" / "labels_semantic.png", (ood * 2).astype(np.uint8))
        save(root / "frames" / f"{fid}.labels" / "labels_instance.png", ood)
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
            raw[rect(rng, h, w)] = value
        if town == "t5":  # t6 frames carry no anomaly: exercises "images without anomaly"
            raw[rect(rng, h, w, top=h // 4)] = 14
        rgba = np.dstack([smooth_image(rng, h, w, lossy=False), rng.integers(0, 256, (h, w), dtype=np.uint8)])
        ood = np.where(raw == 14, 1, 0).astype(np.uint8)
        ood[raw == 4] = 255
        ipath = save(root / "test" / "images" / "test" / town / f"{i + 1}.png", rgba)
        lpath = save(root / "test" / "annotations" / "test" / town / f"{i + 1}.png", raw)
        fid = f"{town}_{i + 1}"
        samples.append(Sample(fid, rgba[..., :3].copy(), ood, semantic=_streethazards_semantic(raw)))
        files[fid] = {"image": ipath, "label": lpath}
    return Replica("streethazards", root, tuple(samples), files)


def _bundle(out, n, rng, h, w):
    """A Mask2Anomaly-style bundle of Lost & Found frames (labels as labelIds: convention=lost-and-found) plus
    one image without a label file."""
    root = out / "bundle"
    samples, unlabelled, files = [], [], {}
    for i in range(n):
        fid = f"frame_{i:03d}"
        image = smooth_image(rng, h, w, lossy=False)
        ood = ood_map(rng, h, w)
        ipath = save(root / "images" / f"{fid}.png", image)
        lpath = save(root / "labels_masks" / f"{fid}.png", _laf_label(rng, ood))
        samples.append(Sample(fid, image, ood))
        files[fid] = {"image": ipath, "label": lpath}
    image = smooth_image(rng, h, w, lossy=False)
    files["unlabelled_000"] = {"image": save(root / "images" / "unlabelled_000.png", image)}
    unlabelled.append(Sample("unlabelled_000", image, None))
    return Replica("bundle", root, tuple(samples), files, options={"convention": "lost-and-found"},
                   unlabelled=tuple(unlabelled))


WRITERS = {
    "smiyc-ra21": (_ra21, (64, 128)), "smiyc-ro21": (_ro21, (64, 128)), "fs-laf": (_fs_laf, (64, 128)),
    "fs-static": (_fs_static, (64, 128)), "road-anomaly": (_road_anomaly, (72, 128)),
    "lost-and-found": (_lost_and_found, (64, 128)), "streethazards": (_streethazards, (72, 128)),
    "coco-open-panoptic": (coco_replica, (64, 96)), "cityscapes": (cityscapes_replica, (64, 128)), "bundle": (_bundle, (64, 128)),
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
    out = ensure_writable_dir(out_dir)
    try:
        return writer(out, frames, np.random.default_rng(seed), h, w)
    except OSError as err:  # a folder that filled up or went read-only while writing
        raise WriteError(out, f"{err.strerror or err} (while writing {err.filename or 'the replica'})",
                         err.errno) from None
