"""Missing and malformed files: check() lists every problem by path, loading raises naming dataset and file."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from maskbench.datasets import check_dataset, load_dataset
from maskbench.errors import DatasetError, InputError


def _problems(report):
    return [(p.path.name, p.what) for p in report.problems]


def test_clean_replica_checks_ok(replica):
    rep = replica("fs-laf")
    report = check_dataset("fs-laf", rep.root)
    assert not report.problems and report.frames == 3 and report.official_count == 100
    assert not report.ok  # 3 of the official 100 frames
    assert "frames found: 3 (official: 100; 97 short of the official count)" in report.format()
    assert report.format().endswith("FAILED: frame count differs from the official one (--partial accepts fewer frames)")
    report = check_dataset("fs-laf", rep.root, partial=True)
    assert report.ok and "accepted with --partial)\nwith labels: 3; without labels: 0\n" in report.format()
    assert len(report.missing) == 97 and report.format().endswith("OK")


def test_fs_laf_frames_are_checked_against_the_official_laf_ids(replica):
    """tracks_extra.py FishyscapesLAFSubset 'Anomaly-val': the 100 Lost & Found ids (three written out here)."""
    rep = replica("fs-laf")
    report = check_dataset("fs-laf", rep.root, partial=True)
    assert "04_Maurener_Weg_8_000000_000030" in report.missing and "13_Elly_Beinhorn_Str_000003_000260" in report.missing
    assert "01_Hanns_Klemm_Str_45_000001_000240" in report.missing + [s.id[5:] for s in rep.samples]
    label = next(iter(rep.files.values()))["label"]
    image = next(iter(rep.files.values()))["image"]
    image.rename(image.with_name("01_Hanns_Klemm_Str_45_000000_000090_leftImg8bit.png"))  # not a Fishyscapes frame
    label.rename(label.with_name("0000_01_Hanns_Klemm_Str_45_000000_000090_labels.png"))
    report = check_dataset("fs-laf", rep.root, partial=True)
    assert report.unexpected == ["0000_01_Hanns_Klemm_Str_45_000000_000090"]
    assert not check_dataset("fs-laf", rep.root).ok


def test_deleted_image(replica):
    rep = replica("smiyc-ra21")
    rep.files["validation0001"]["image"].unlink()
    report = check_dataset("smiyc-ra21", rep.root)
    assert _problems(report) == [("validation0001.jpg", "missing image of labelled frame validation0001")]
    text = report.format()
    assert "expected layout:\ndataset_AnomalyTrack/" in text and "FAILED: 1" in text
    with pytest.raises(DatasetError, match=r"^smiyc-ra21: \S*validation0001.jpg: missing image of labelled frame "
                                           r"validation0001$"):  # one line
        load_dataset("smiyc-ra21", rep.root)


def test_truncated_image(replica):
    rep = replica("lost-and-found")
    fid = rep.samples[2].id
    path = rep.files[fid]["image"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    report = check_dataset("lost-and-found", rep.root)
    assert len(report.problems) == 1 and report.problems[0].path == path
    assert report.problems[0].what.startswith("unreadable or truncated image")
    assert check_dataset("lost-and-found", rep.root, read=False, partial=True).ok  # names alone look fine
    with pytest.raises(DatasetError, match=rf"lost-and-found: .*{fid}_leftImg8bit.png: unreadable or truncated"):
        load_dataset("lost-and-found", rep.root)[2]


@pytest.mark.parametrize("name", ["smiyc-ro21", "streethazards", "road-anomaly", "fs-static", "cityscapes"])
def test_wrong_size_label(name, replica):
    rep = replica(name, frames=2)
    fid = rep.samples[1].id
    path = rep.files[fid]["label"]
    Image.fromarray(np.zeros((10, 20), np.uint8)).save(path)
    h, w = rep.samples[1].ood.shape
    report = check_dataset(name, rep.root)
    assert _problems(report) == [(path.name, f"label size 20x10 differs from image size {w}x{h}")]


def test_unexpected_label_value_is_reported(replica, write_label):
    rep = replica("smiyc-ro21")
    write_label(rep.files["validation_2"]["label"], [7, 7, 9])
    report = check_dataset("smiyc-ro21", rep.root)
    assert _problems(report) == [("validation_2_labels_semantic.png",
                                  "unexpected label value(s) [7, 9] in 3 pixel(s); expected values in {0, 1, 255}")]


def test_unlabelled_frames_and_colour_files_are_not_yielded(replica):
    rep = replica("smiyc-ro21", frames=2)
    assert (rep.root / "images" / "snowstorm1_00_16_02.578.webp").is_file()
    assert (rep.root / "labels_masks" / "validation_1_labels_semantic_color.png").is_file()
    assert load_dataset("smiyc-ro21", rep.root).ids == ["validation_1", "validation_2"]


def test_dotted_frame_id(replica):
    rep = replica("smiyc-ro21", frames=1)
    shutil.copy(rep.files["validation_1"]["label"], rep.root / "labels_masks" / "snowstorm1_00_16_02.578_labels_semantic.png")
    ds = load_dataset("smiyc-ro21", rep.root)
    assert ds.ids == ["snowstorm1_00_16_02.578", "validation_1"]
    assert ds[0].image.shape == rep.samples[0].image.shape


def test_parent_of_official_folder_is_accepted(replica):
    rep = replica("smiyc-ra21")
    assert rep.root.name == "dataset_AnomalyTrack"
    assert load_dataset("smiyc-ra21", rep.root.parent).root == rep.root


def test_missing_root_and_missing_folders(tmp_path, replica):
    with pytest.raises(DatasetError, match=r"road-anomaly: root .*nowhere \(given root\) is not a directory\nexpected layout:\nRoadAnomaly_jpg/"):
        load_dataset("road-anomaly", tmp_path / "nowhere")
    rep = replica("lost-and-found")
    shutil.rmtree(rep.root / "gtCoarse")
    assert _problems(check_dataset("lost-and-found", rep.root)) == [("test", "missing directory")]
    empty = tmp_path / "empty"
    (empty / "leftImg8bit" / "val").mkdir(parents=True)
    (empty / "gtFine" / "val").mkdir(parents=True)
    with pytest.raises(DatasetError, match="cityscapes: no frames found under .*empty"):
        load_dataset("cityscapes", empty)
    assert _problems(check_dataset("cityscapes", empty)) == [("empty", "no frames found")]


def test_missing_labels_and_overlays(replica):
    rep = replica("fs-static", frames=2)
    fid = rep.samples[0].id
    rep.files[fid]["overlay"].unlink()
    np.savez(rep.files[rep.samples[1].id]["overlay"], other=np.zeros(3))
    report = check_dataset("fs-static", rep.root)
    assert _problems(report) == [(f"{fid}_rgb.npz", f"missing overlay of frame {fid}"),
                                 (f"{rep.samples[1].id}_rgb.npz", "overlay: no array 'rgb' (holds: other)")]


def test_malformed_listing_files(replica):
    rep = replica("road-anomaly")
    (rep.root / "frame_list.json").write_text('{"not": "a list"}')
    assert _problems(check_dataset("road-anomaly", rep.root)) == [
        ("frame_list.json", 'expected a JSON list of image file names like "animals01_x.jpg"')]
    rep = replica("coco-open-panoptic")
    ann = rep.root / "annotations" / "panoptic_val2017.json"
    data = json.loads(ann.read_text())
    data["annotations"][1]["segments_info"].pop()
    ann.write_text(json.dumps(data))
    report = check_dataset("coco-open-panoptic", rep.root)
    assert len(report.problems) == 1 and report.problems[0].what.startswith("unexpected segment id(s)")
    del data["categories"]
    ann.write_text(json.dumps(data))
    assert _problems(check_dataset("coco-open-panoptic", rep.root)) == [
        ("panoptic_val2017.json", "not a COCO panoptic annotation file (missing or malformed 'categories')")]


def test_fs_laf_missing_image_and_labels_root(replica, tmp_path):
    rep = replica("fs-laf")
    labels = tmp_path / "elsewhere" / "fishyscapes_lostandfound"
    shutil.move(rep.root / "fishyscapes_lostandfound", labels)
    assert not check_dataset("fs-laf", rep.root).ok
    for given in (labels, labels.parent):
        assert load_dataset("fs-laf", rep.root, labels_root=given).ids == [s.id for s in rep.samples]
    rep.files[rep.samples[0].id]["image"].unlink()
    report = check_dataset("fs-laf", rep.root, labels_root=labels)
    assert [p.what for p in report.problems] == [f"missing Lost & Found image of frame {rep.samples[0].id}"]


def test_lost_and_found_subsets(tmp_path):
    scenes = ["02_Hanns_Klemm_Str_44", "04_Maurener_Weg_8", "15_Rechbergstr_Deckenpfronn"]
    ids = [f"{scenes[i % 3]}_{i:06d}_{i:06d}" for i in range(1203)]
    for fid in ids:  # discovery needs only the names
        for kind, suffix in (("leftImg8bit", "_leftImg8bit.png"), ("gtCoarse", "_gtCoarse_labelIds.png")):
            path = tmp_path / kind / "test" / fid[:-14] / f"{fid}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    invalid = {17, 37, 55, 72, 91, 110, 129, 153, 174, 197, 218, 353, 490, 618, 686, 792, 793}
    ordered = sorted(ids)
    valid = [f for i, f in enumerate(ordered) if i not in invalid]
    assert load_dataset("lost-and-found", tmp_path).ids == ordered
    assert load_dataset("lost-and-found", tmp_path, subset="testValid").ids == valid
    no_known = load_dataset("lost-and-found", tmp_path, subset="testNoKnown")
    assert no_known.ids == [f for f in valid if not f.startswith("15_")]
    assert no_known.info["subset"] == "testNoKnown" and no_known.info["official_count"] == 1043
    (tmp_path / "leftImg8bit" / "test" / scenes[0] / f"{ids[0]}_leftImg8bit.png").unlink()
    with pytest.raises(DatasetError, match="subset testNoKnown drops frames by their index .* 1202 were found"):
        load_dataset("lost-and-found", tmp_path, subset="testNoKnown")
    with pytest.raises(DatasetError, match="unknown subset 'val'"):
        load_dataset("lost-and-found", tmp_path, subset="val")


def test_environment_roots(replica, monkeypatch, tmp_path):
    rep = replica("road-anomaly")
    monkeypatch.delenv("MASKBENCH_ROOT_ROAD_ANOMALY", raising=False)
    monkeypatch.delenv("MASKBENCH_DATA", raising=False)
    with pytest.raises(DatasetError, match=r"road-anomaly: no root given.*\$MASKBENCH_ROOT_ROAD_ANOMALY or \$MASKBENCH_DATA"):
        load_dataset("road-anomaly")
    shutil.copytree(rep.root, tmp_path / "data" / "road-anomaly" / "RoadAnomaly_jpg")
    monkeypatch.setenv("MASKBENCH_DATA", str(tmp_path / "data"))
    assert load_dataset("road-anomaly").root == tmp_path / "data" / "road-anomaly" / "RoadAnomaly_jpg"
    monkeypatch.setenv("MASKBENCH_ROOT_ROAD_ANOMALY", str(rep.root))
    assert load_dataset("road-anomaly").root == rep.root
    monkeypatch.setenv("MASKBENCH_ROOT_ROAD_ANOMALY", str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match=r"missing \(MASKBENCH_ROOT_ROAD_ANOMALY\) is not a directory"):
        load_dataset("road-anomaly")


def test_registry_errors(replica):
    from maskbench.datasets import DATASETS
    from maskbench.datasets.smiyc import RoadAnomaly21

    with pytest.raises(InputError, match="unknown dataset 'ra21'; known datasets: bundle, cityscapes, coco-open-panoptic"):
        load_dataset("ra21", ".")
    with pytest.raises(ValueError, match="'smiyc-ra21' is already registered"):
        DATASETS.register(RoadAnomaly21)
    rep = replica("smiyc-ra21", frames=1)
    with pytest.raises(DatasetError, match=r"smiyc-ra21: unknown option\(s\) \['subset'\]; accepted: \['split', 'frames', 'resize'\]"):
        load_dataset("smiyc-ra21", rep.root, subset="x")


def test_duplicate_frames_and_integer_indexing(replica):
    rep = replica("lost-and-found", frames=2)
    fid = rep.samples[0].id
    png = rep.files[fid]["image"]
    webp = png.with_name(f"{fid}_leftImg8bit.webp")
    Image.open(png).save(webp, lossless=True)
    report = check_dataset("lost-and-found", rep.root)
    assert _problems(report) == [(webp.name, f"second file for frame {fid}")]
    webp.unlink()
    ds = load_dataset("lost-and-found", rep.root)
    assert ds[-1].id == rep.samples[-1].id
    with pytest.raises(TypeError, match="index with an int"):
        ds[0:1]


def test_truncated_label(replica):
    rep = replica("road-anomaly", frames=2)
    fid = rep.samples[0].id
    path = rep.files[fid]["label"]
    path.write_bytes(path.read_bytes()[:40])
    report = check_dataset("road-anomaly", rep.root, partial=True)
    assert [p.path for p in report.problems] == [path]
    assert report.problems[0].what.startswith("unreadable or truncated label")


def test_overlay_shape_is_checked(replica):
    rep = replica("fs-static", frames=1)
    fid = rep.samples[0].id
    np.savez(rep.files[fid]["overlay"], rgb=np.zeros((4, 4, 3), np.int16))
    h, w = rep.samples[0].ood.shape
    assert _problems(check_dataset("fs-static", rep.root, partial=True)) == [
        (f"{fid}_rgb.npz", f"overlay 'rgb' is int16 (4, 4, 3), expected numbers of shape ({h}, {w}, 3)")]
