"""Official frame selections and unlabelled frames (frames=all), checked against lists read off the reference
(SegmentMeIfYouCan/road-anomaly-benchmark tracks.py / tracks_extra.py), not against the code's own tables."""

import pytest

from maskbench.datasets import DATASETS, check_dataset, load_dataset
from maskbench.datasets.replica import WRITERS
from maskbench.datasets.smiyc_splits import RA21_SPLITS, RO21_SPLITS, official_list
from maskbench.errors import DatasetError

# expected_length of the reference configs (the Erasing-21 list has 160 ids: 105 + 55, see smiyc_splits)
COUNTS = {("smiyc-ra21", "all"): 110, ("smiyc-ra21", "validation"): 10, ("smiyc-ra21", "test"): 100,
          ("smiyc-ra21", "animals"): 59, ("smiyc-ra21", "vehicles"): 23, ("smiyc-ra21", "other"): 11,
          ("smiyc-ro21", "test"): 327, ("smiyc-ro21", "noNight"): 382, ("smiyc-ro21", "night"): 30,
          ("smiyc-ro21", "snowstorm"): 55, ("smiyc-ro21", "validation"): 30, ("smiyc-ro21", "erasing20"): 105,
          ("smiyc-ro21", "erasing20nodog"): 100}


@pytest.mark.parametrize("key", sorted(COUNTS))
def test_official_counts(key):
    splits = RA21_SPLITS if key[0] == "smiyc-ra21" else RO21_SPLITS
    split = splits[key[1]]
    assert split.count == COUNTS[key]
    listed = official_list(split)
    if listed is not None:
        assert len(listed) == len(set(listed)) == COUNTS[key]


def test_official_lists_spot_checks():
    # a few ids read off tracks_extra.py by hand
    assert {"zebra0000", "bear0000", "cow0013", "cock0000"} <= set(RA21_SPLITS["animals"].ids)
    assert "carriage0001" in RA21_SPLITS["vehicles"].ids and "carriage0000" not in RA21_SPLITS["vehicles"].ids
    assert {"carriage0000", "carriage0007", "tent0000", "piano0000"} <= set(RA21_SPLITS["test"].ids)
    assert {"snowstorm1_00_16_02.578", "snowstorm2_00_00_49.600"} <= set(official_list(RO21_SPLITS["snowstorm"]))
    assert "motorway_boot_6_and_bird" in RO21_SPLITS["erasing20nodog"].ids
    assert "darkasphalt2_dog_5" in RO21_SPLITS["erasing20"].ids and "darkasphalt2_dog_5" not in RO21_SPLITS["erasing20nodog"].ids


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_frames_all_reads_back(name, replica, same_samples):
    rep = replica(name, frames=2, seed=3)
    ds = load_dataset(name, rep.root, frames="all", **rep.options)
    expected = rep.all_samples()
    same_samples(ds, expected, rep.image_tolerance)
    assert ds.info["frames_option"] == "all" and ds.info["labelled_count"] == len(rep.samples)
    assert ds.info["unlabelled_ids"] == sorted(s.id for s in rep.unlabelled)
    assert all((s.ood is None) == (s.id in ds.info["unlabelled_ids"]) for s in ds)
    labelled = load_dataset(name, rep.root, **rep.options)
    assert labelled.info["unlabelled_ids"] == [] and labelled.info["labelled_count"] == len(labelled) == 2


def test_smiyc_replicas_carry_unlabelled_test_frames(replica):
    assert [s.id for s in replica("smiyc-ra21").unlabelled] == ["caravan0000", "carriage0000", "cones0000", "zebra0000"]
    assert len(replica("smiyc-ro21").unlabelled) == 6  # the stray scene is written but in no official split


@pytest.mark.parametrize("name, split, expected", [
    ("smiyc-ra21", "test", ["caravan0000", "carriage0000", "cones0000", "zebra0000"]),
    ("smiyc-ra21", "animals", ["zebra0000"]),
    ("smiyc-ra21", "vehicles", ["caravan0000"]),  # carriage0000 is in the test split only
    ("smiyc-ra21", "other", ["cones0000"]),
    ("smiyc-ra21", "validation", ["validation0000", "validation0001"]),
    ("smiyc-ro21", "test", ["curvy-street_bag_1", "darkasphalt2_dog_1", "darkasphalt_axestump_2"]),
    ("smiyc-ro21", "night", ["driveway_boot_1"]),
    ("smiyc-ro21", "snowstorm", ["snowstorm1_00_16_02.578", "snowstorm2_00_01_35.045"]),
    ("smiyc-ro21", "noNight", ["curvy-street_bag_1", "darkasphalt2_dog_1", "darkasphalt_axestump_2",
                               "snowstorm1_00_16_02.578", "snowstorm2_00_01_35.045"]),
    ("smiyc-ro21", "darkasphaltDog", ["darkasphalt2_dog_1"]),
    ("smiyc-ro21", "darkasphaltAll", ["darkasphalt2_dog_1", "darkasphalt_axestump_2"]),
    ("smiyc-ro21", "shiny", []),
    ("smiyc-ro21", "curvy", ["curvy-street_bag_1"]),
    ("smiyc-ro21", "erasing20nodog", ["darkasphalt_axestump_2"]),
    ("smiyc-ro21", "erasing21", ["darkasphalt2_dog_1", "darkasphalt_axestump_2", "snowstorm1_00_16_02.578",
                                 "snowstorm2_00_01_35.045"]),
])
def test_split_selection_on_replica(replica, name, split, expected):
    rep = replica(name, frames=2)
    if not expected:
        with pytest.raises(DatasetError, match="no frames found"):
            load_dataset(name, rep.root, split=split, frames="all")
        return
    ds = load_dataset(name, rep.root, split=split, frames="all")
    assert ds.ids == expected
    assert ds.info["split"] == split and ds.info["official_split"].endswith(split) or split.startswith("erasing")


def test_ro21_validation_exclusions(replica):
    rep = replica("smiyc-ro21", frames=30)
    ids = load_dataset("smiyc-ro21", rep.root, split="validation").ids
    assert "validation_19" not in ids and "validation_20" in ids and "validation_29" not in ids and "validation_30" in ids
    assert len(ids) == 20  # 1..30 minus 19, 21..29 (tracks.py exclude_prefix)
    assert len(load_dataset("smiyc-ro21", rep.root).ids) == 30  # ObstacleTrack-all excludes nothing


def test_split_without_labels_needs_frames_all(replica):
    rep = replica("smiyc-ra21")
    with pytest.raises(DatasetError, match="split test .*AnomalyTrack-test.* has no public labels.*frames=all"):
        load_dataset("smiyc-ra21", rep.root, split="test")
    with pytest.raises(DatasetError, match="unknown split 'night'"):
        load_dataset("smiyc-ra21", rep.root, split="night")
    with pytest.raises(DatasetError, match="unknown frames option 'some'"):
        load_dataset("smiyc-ra21", rep.root, frames="some")


def test_check_counts_labelled_and_names_missing_official_frames(replica):
    rep = replica("smiyc-ra21", frames=2)
    report = check_dataset("smiyc-ra21", rep.root, frames="all", split="animals")
    assert report.frames == 1 and report.labelled == 0 and report.official_count == 59
    assert len(report.missing) == 58 and "zebra0001" in report.missing and report.unexpected == []
    text = report.format()
    assert "with labels: 0; without labels: 1" in text and "official frames not found (58): bear0000, " in text
    report = check_dataset("smiyc-ra21", rep.root, frames="all", partial=True)
    assert report.ok and report.labelled == 2 and report.frames == 6 and len(report.missing) == 104
    rep.files["zebra0000"]["image"].write_bytes(b"broken")
    report = check_dataset("smiyc-ra21", rep.root, frames="all", partial=True)
    assert [p.path.name for p in report.problems] == ["zebra0000.jpg"]


def test_world_ids_outside_the_official_list_are_named(replica):
    rep = replica("smiyc-ra21", frames=12)
    report = check_dataset("smiyc-ra21", rep.root, split="validation")
    assert report.unexpected == ["validation0010", "validation0011"] and not report.ok
    assert "frames not in the official list (2): validation0010, validation0011" in report.format()


def test_every_dataset_lists_its_options():
    from maskbench.datasets import format_dataset_list

    text = format_dataset_list()
    for name in DATASETS.names():
        assert f"\n{name}: " in "\n" + text
    assert "split=erasing21: Erasing-21 (160 frames, 0 labelled; road_anomaly_benchmark/datasets/tracks_extra.py" in text
    assert "split=animals: AnomalyTrack-animals (59 frames, 0 labelled" in text


@pytest.mark.parametrize("subset", ["train", "anomalyTest", "anomalyTrain", "fishyObstacleVal"])
def test_lost_and_found_subsets_read_back(replica, same_samples, subset):
    rep = replica("lost-and-found", frames=3)
    ds = load_dataset("lost-and-found", rep.root, subset=subset)
    same_samples(ds, rep.variants[("subset", subset)], 0)
    assert ds.info["track"] == ("obstacle" if subset == "train" else "anomaly")


def test_lost_and_found_anomaly_roi_semantics(replica, write_label):
    rep = replica("lost-and-found", frames=1)
    fid = rep.samples[0].id
    # labelIds 0 (unlabelled) inside the ROI is an inlier there; objects are anomalies even outside the ROI
    write_label(rep.files[fid]["label"], [0, 1, 2, 200])
    roi_path = rep.root / "LAF_roi_2048.png"
    from PIL import Image
    import numpy as np
    roi = np.asarray(Image.open(roi_path)).copy()
    roi[0, :4] = [255, 0, 0, 255]
    Image.fromarray(roi).save(roi_path)
    sample = load_dataset("lost-and-found", rep.root, subset="anomalyTest")[0]
    assert sample.ood[0, :4].tolist() == [0, 255, 1, 1]
    assert load_dataset("lost-and-found", rep.root)[0].ood[0, :4].tolist() == [255, 0, 1, 1]
    Image.fromarray(roi[:10]).save(roi_path)
    with pytest.raises(DatasetError, match="LAF_roi_2048.png: ROI size"):
        load_dataset("lost-and-found", rep.root, subset="anomalyTest")[0]
    roi_path.unlink()
    report = check_dataset("lost-and-found", rep.root, subset="anomalyTest", partial=True)
    assert [p.what for p in report.problems] == [
        "missing ROI image (road-anomaly-benchmark datasets/LAF_roi_2048.png; roi=PATH)"]


def test_lost_and_found_train_valid_and_fishy_test_ids(tmp_path):
    import json

    ids = [f"01_Hanns_Klemm_Str_45_{i:06d}_{i:06d}" for i in range(1036)]
    for fid in ids:  # discovery needs only the names
        for kind, suffix in (("leftImg8bit", "_leftImg8bit.png"), ("gtCoarse", "_gtCoarse_labelIds.png")):
            path = tmp_path / kind / "train" / fid[:-14] / f"{fid}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    invalid = {44, 67, 88, 109, 131, 614}  # tracks.py LostAndFound-trainValid exclude_frame_indices
    assert load_dataset("lost-and-found", tmp_path, subset="trainValid").ids == [
        f for i, f in enumerate(sorted(ids)) if i not in invalid]
    for kind in ("leftImg8bit", "gtCoarse"):  # the Fishyscapes subsets look in both splits
        (tmp_path / kind / "test").mkdir()
    listing = tmp_path / "FishyLAF-ids.json"
    listing.write_text(json.dumps({"test": ids[:5], "testInvalid": ids[1:2]}))
    ds = load_dataset("lost-and-found", tmp_path, subset="fishyObstacleTest", ids=listing)
    assert ds.ids == [ids[0]] + ids[2:5] and ds.official_ids == tuple([ids[0]] + ids[2:5])
    with pytest.raises(DatasetError, match="fishyObstacleTest needs ids=PATH"):
        load_dataset("lost-and-found", tmp_path, subset="fishyObstacleTest")


@pytest.mark.parametrize("convention, expected", [
    # raw:                0    1    2    3    14   20   120  200  201  255
    ("binary",         [0, 1, 255, 255, 255, 255, 255, 255, 255, 255]),
    ("road-anomaly",   [0, 1, 1, 255, 255, 255, 255, 255, 255, 255]),
    ("lost-and-found", [255, 0, 1, 1, 1, 1, 1, 1, 255, 255]),
    ("streethazards",  [0, 0, 0, 0, 1, 255, 255, 255, 255, 1]),
    ("maskomaly-fs-laf", [0, 0, 0, 0, 0, 0, 1, 0, 0, 255]),
    ("maskomaly-fs-static", [0, 1, 0, 0, 0, 0, 0, 0, 0, 255]),
])
def test_bundle_conventions(replica, write_label, convention, expected):
    # each row written out from the np.where chains of Mask2Anomaly's anomaly_inference.py / Maskomaly's datasets.py
    rep = replica("bundle", frames=1)
    write_label(rep.files["frame_000"]["label"], [0, 1, 2, 3, 14, 20, 120, 200, 201, 255])
    ds = load_dataset("bundle", rep.root, convention=convention)
    assert ds[0].ood[0, :10].tolist() == expected and ds.info["convention"] == convention


def test_bundle_needs_a_convention_and_reads_labels_dir(replica):
    import shutil

    rep = replica("bundle", frames=2)
    with pytest.raises(DatasetError, match="label convention must be given: convention= one of binary"):
        load_dataset("bundle", rep.root)
    shutil.move(rep.root / "labels_masks", rep.root / "labels")
    ds = load_dataset("bundle", rep.root, convention="lost-and-found", labels_dir="labels")
    assert ds.ids == ["frame_000", "frame_001"]
