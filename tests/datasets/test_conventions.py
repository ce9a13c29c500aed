"""Label decoding checked against hand-written tables (the official encodings), not against the loaders."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

from maskbench.datasets import load_dataset
from maskbench.errors import DatasetError


def _first_row(ds, n, attr="ood"):
    return getattr(ds[0], attr)[0, :n].tolist()


def test_lost_and_found_label_ids(replica, write_label):
    rep = replica("lost-and-found", frames=1)
    # labelIds: 0 void, 1 free space, 2..200 objects (31 and 37 are trainId-0 "non-hazards": still anomalies)
    write_label(rep.files[rep.samples[0].id]["label"], [0, 1, 2, 31, 37, 43, 200])
    assert _first_row(load_dataset("lost-and-found", rep.root), 7) == [255, 0, 1, 1, 1, 1, 1]
    write_label(rep.files[rep.samples[0].id]["label"], [201])
    with pytest.raises(DatasetError, match=r"gtCoarse_labelIds.png: unexpected label value\(s\) \[201\]"):
        load_dataset("lost-and-found", rep.root)[0]


@pytest.mark.parametrize("convention, expected", [
    # raw:        1    2  3  4    5  6  7  8  9  10 11 12 13 14
    ("densehybrid", [0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    ("hendrycks", [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    ("mask2anomaly", [255, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
])
def test_streethazards_conventions(replica, write_label, convention, expected):
    rep = replica("streethazards", frames=1)
    write_label(rep.files[rep.samples[0].id]["label"], list(range(1, 15)))
    ds = load_dataset("streethazards", rep.root, convention=convention)
    assert _first_row(ds, 14) == expected
    assert ds.info["convention"] == convention and convention in ds.info["label_convention"]
    # 12 known classes: unlabeled building fence | other -> ignore | pedestrian .. traffic sign | anomaly -> ignore
    assert _first_row(ds, 14, "semantic") == [0, 1, 2, 255, 3, 4, 5, 6, 7, 8, 9, 10, 11, 255]


def test_streethazards_rejects_zero_and_unknown_convention(replica, write_label):
    rep = replica("streethazards", frames=1)
    with pytest.raises(DatasetError, match="unknown convention 'pooled'"):
        load_dataset("streethazards", rep.root, convention="pooled")
    write_label(rep.files[rep.samples[0].id]["label"], [0])
    with pytest.raises(DatasetError, match=r"unexpected label value\(s\) \[0\].*1..14"):
        load_dataset("streethazards", rep.root)[0]


def test_road_anomaly_threshold(replica, write_label):
    rep = replica("road-anomaly", frames=1)
    write_label(rep.files[rep.samples[0].id]["label"], [0, 1, 2, 3, 255])
    assert _first_row(load_dataset("road-anomaly", rep.root), 5) == [0, 0, 1, 1, 1]


@pytest.mark.parametrize("name", ["smiyc-ra21", "smiyc-ro21", "fs-laf", "fs-static"])
def test_binary_labels_used_as_stored(name, replica, write_label):
    rep = replica(name, frames=1)
    label = rep.files[rep.samples[0].id]["label"]
    write_label(label, [0, 1, 255, 1, 0])
    assert _first_row(load_dataset(name, rep.root), 5) == [0, 1, 255, 1, 0]
    write_label(label, [2])
    with pytest.raises(DatasetError, match=rf"{name}: .*{label.name}: unexpected label value\(s\) \[2\] in 1 pixel"):
        load_dataset(name, rep.root)[0]


def test_cityscapes_label_ids_to_train_ids(replica, write_label):
    rep = replica("cityscapes", frames=1)
    write_label(rep.files[rep.samples[0].id]["label"], list(range(34)) + [255])
    ds = load_dataset("cityscapes", rep.root)
    # cityscapesScripts labels.py, trainId of labelIds 0..33, then the wrapped license plate (-1 -> 255)
    train = [255] * 7 + [0, 1, 255, 255, 2, 3, 4, 255, 255, 255, 5, 255, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                         255, 255, 16, 17, 18, 255]
    assert _first_row(ds, 35, "semantic") == train
    assert _first_row(ds, 35) == [255 if t == 255 else 0 for t in train]
    write_label(rep.files[rep.samples[0].id]["label"], [34])
    with pytest.raises(DatasetError, match=r"unexpected label value\(s\) \[34\]"):
        load_dataset("cityscapes", rep.root)[0]


def test_cityscapes_train_id_files_give_the_same_maps(replica, same_samples):
    rep = replica("cityscapes")
    ds = load_dataset("cityscapes", rep.root, labels="labelTrainIds")
    without_label_ids = [replace(s, label_ids=None, instance_ids=None) for s in rep.samples]
    same_samples(ds, without_label_ids, 0)  # labelIds (and with them the instances) are read with labels=labelIds
    assert ds.info["labels"] == "labelTrainIds"


def test_coco_unknown_split(replica):
    rep = replica("coco-open-panoptic", frames=1)
    path = rep.root / "annotations" / "panoptic_val2017.json"
    data = json.loads(path.read_text())
    segments = data["annotations"][0]["segments_info"]
    known = next(s for s in segments if s["category_id"] == 1 and not s["iscrowd"])
    known["category_id"] = 2  # bicycle: unknown in K20, known in K5 and K10
    path.write_text(json.dumps(data))
    sample_ids = rep.samples[0].panoptic
    mask = sample_ids == known["id"]
    k20 = load_dataset("coco-open-panoptic", rep.root)[0]
    k5 = load_dataset("coco-open-panoptic", rep.root, split="K5")[0]
    assert (k20.ood[mask] == 1).all() and (k20.semantic[mask] == 255).all()
    assert (k5.ood[mask] == 0).all() and (k5.semantic[mask] == 2).all()
    assert load_dataset("coco-open-panoptic", rep.root, split="K10").info["unknown_category_ids"] == [3, 9, 13, 21, 24, 32, 59, 70]


def test_coco_void_and_crowd(replica):
    rep = replica("coco-open-panoptic", frames=2)
    for s in load_dataset("coco-open-panoptic", rep.root):
        crowd = [x["id"] for x in s.segments if x["iscrowd"]]
        assert (s.ood[s.panoptic == 0] == 255).all() and (s.semantic[s.panoptic == 0] == 255).all()
        assert (s.ood[np.isin(s.panoptic, crowd)] == 255).all()
        # panoptic ids decode R + 256 G + 256^2 B
        assert set(np.unique(s.panoptic).tolist()) - {0} == {x["id"] for x in s.segments}


def test_fs_static_versions(replica):
    rep = replica("fs-static", frames=2)
    shutil.copytree(rep.root / "fs_val_v3", rep.root / "fs_val_v1")
    fid = rep.samples[0].id
    np.savez(rep.root / "fs_val_v1" / f"{fid}_rgb.npz", rgb=np.zeros_like(rep.samples[0].image, dtype=np.int16))
    assert load_dataset("fs-static", rep.root).info["version"] == "v3"
    v1 = load_dataset("fs-static", rep.root, version="v1")
    assert v1.info["version"] == "v1"
    with np.load(rep.root / "fs_val_v3" / f"{fid}_rgb.npz") as npz:
        assert npz["rgb"].any()  # so a wrong version would show
    base = rep.files[fid]["base"]
    from PIL import Image
    assert np.array_equal(v1[0].image, np.asarray(Image.open(base).convert("RGB")))
    with pytest.raises(DatasetError, match=r"fs_val_v2: missing directory \(versions present: \[1, 3\]\)"):
        load_dataset("fs-static", rep.root, version=2)
    with pytest.raises(DatasetError, match="expected a Fishyscapes Static version"):
        load_dataset("fs-static", rep.root, version="latest")


def test_streethazards_order_is_town_then_number(replica):
    rep = replica("streethazards", frames=20, size=(16, 16))
    ids = load_dataset("streethazards", rep.root).ids
    assert ids == [f"t5_{i}" for i in range(1, 11)] + [f"t6_{i}" for i in range(11, 21)]


def test_panoptic_rgb_to_id_worked_example():
    from maskbench.datasets.coco import rgb_to_id

    rgb = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [12, 34, 56]]], np.uint8)
    assert rgb_to_id(rgb).tolist() == [[0, 1, 256, 65536, 12 + 34 * 256 + 56 * 65536]]


def test_sixteen_bit_label_values_are_checked(replica):
    from PIL import Image

    rep = replica("smiyc-ra21", frames=1)
    path = rep.files[rep.samples[0].id]["label"]
    label = rep.samples[0].ood.astype(np.uint16)  # a 16-bit PNG
    label[0, :3] = [300, 300, 2]
    Image.fromarray(label).save(path)
    with pytest.raises(DatasetError, match=r"unexpected label value\(s\) \[2, 300\] in 3 pixel\(s\)"):
        load_dataset("smiyc-ra21", rep.root)[0]
    label[0, :3] = 1
    Image.fromarray(label).save(path)
    ood = load_dataset("smiyc-ra21", rep.root)[0].ood
    assert ood.dtype == np.uint8 and ood[0, :3].tolist() == [1, 1, 1]
