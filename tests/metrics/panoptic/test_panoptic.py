"""PQ / SQ / RQ: hand-worked cases, the literal panopticapi loop on random images, EOPSN, bad input."""

import json

import numpy as np
import pytest
from PIL import Image

from maskbench.errors import InputError
from maskbench.metrics.panoptic import PanopticQuality
from maskbench.metrics.panoptic_categories import UNKNOWN_SPLITS
from maskbench.metrics.panoptic_files import pq_compute_files, read_panoptic_png

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1},
    {"id": 3, "name": "car", "isthing": 1},
    {"id": 18, "name": "dog", "isthing": 1},
    {"id": 21, "name": "cow", "isthing": 1},
    {"id": 59, "name": "pizza", "isthing": 1},
    {"id": 70, "name": "toilet", "isthing": 1},
    {"id": 149, "name": "road", "isthing": 0},
    {"id": 187, "name": "sky-other-merged", "isthing": 0},
]


def row(width, spans):
    """A 1 x width id map; ``spans``: {id: [(first_col, last_col), ...]} (inclusive)."""
    ids = np.zeros((1, width), np.int64)
    for seg_id, ranges in spans.items():
        for first, last in ranges:
            ids[0, first:last + 1] = seg_id
    return ids


def gt_seg(seg_id, cat, area, crowd=0):
    return {"id": seg_id, "category_id": cat, "iscrowd": crowd, "area": area}


def pred_seg(seg_id, cat):
    return {"id": seg_id, "category_id": cat}


# Image 1 (1 x 30). GT: person 1 cols 0-3, road 2 cols 4-13, car crowd 3 cols 14-21, VOID 22-29.
# person 11 cols 0-1: IoU 2 / (2 + 4 - 2) = 0.5 exactly -> not a match: FP person, FN person.
# road 12 cols 2-12: IoU 9 / (11 + 10 - 9) = 0.75 -> TP.
# car 13 cols 13-16: 3 of 4 px on the car crowd -> ignored. Crowd GT is never FN.
# dog 14 cols 17-22: 5 px on the *car* crowd (other category, not counted) + 1 VOID = 1/6 -> FP dog.
# sky 15 cols 23-26: all VOID -> ignored.
IMAGE_1 = (
    1,
    row(30, {1: [(0, 3)], 2: [(4, 13)], 3: [(14, 21)]}),
    [gt_seg(1, 1, 4), gt_seg(2, 149, 10), gt_seg(3, 3, 8, crowd=1)],
    row(30, {11: [(0, 1)], 12: [(2, 12)], 13: [(13, 16)], 14: [(17, 22)], 15: [(23, 26)]}),
    [pred_seg(11, 1), pred_seg(12, 149), pred_seg(13, 3), pred_seg(14, 18), pred_seg(15, 187)],
)
# Image 2 (1 x 30). GT: person 5 cols 0-9, sky 6 cols 10-15, VOID 16-29.
# person 21 cols 3-9 + 16-29 (21 px, 14 on VOID): IoU 7 / (21 + 10 - 7 - 14) = 0.7 -> TP
# (without removing pred ∩ VOID it would be 7/24). sky 6 unmatched -> FN sky.
IMAGE_2 = (
    2,
    row(30, {5: [(0, 9)], 6: [(10, 15)]}),
    [gt_seg(5, 1, 10), gt_seg(6, 187, 6)],
    row(30, {21: [(3, 9), (16, 29)]}),
    [pred_seg(21, 1)],
)
# Totals: person TP1 FP1 FN1 ΣIoU .7 -> PQ .35 SQ .7 RQ .5; road TP1 ΣIoU .75 -> 0.75 / 0.75 / 1;
# dog FP1 -> 0/0/0; sky FN1 -> 0/0/0; car, cow, pizza, toilet: no TP/FP/FN -> not counted.
EXPECTED = {
    "All": {"pq": (0.35 + 0.75) / 4, "sq": (0.7 + 0.75) / 4, "rq": (0.5 + 1.0) / 4, "n": 4},
    "Things": {"pq": 0.35 / 2, "sq": 0.7 / 2, "rq": 0.5 / 2, "n": 2},
    "Stuff": {"pq": 0.75 / 2, "sq": 0.75 / 2, "rq": 1.0 / 2, "n": 2},
}


def assert_groups(result, expected):
    for group, values in expected.items():
        assert result[group]["n"] == values["n"], group
        for key in ("pq", "sq", "rq"):
            if values[key] is None:
                assert result[group][key] is None, (group, key)
            else:
                assert result[group][key] == pytest.approx(values[key], abs=1e-12), (group, key)


def test_hand_worked_case_in_memory():
    quality = PanopticQuality(CATEGORIES)
    for _, gt_ids, gt_segs, pred_ids, pred_segs in (IMAGE_1, IMAGE_2):
        quality.update(gt_ids, gt_segs, pred_ids, pred_segs)
    result = quality.compute()
    assert_groups(result, EXPECTED)
    per_cat = {c["id"]: c for c in result["per_category"]}
    assert (per_cat[1]["tp"], per_cat[1]["fp"], per_cat[1]["fn"]) == (1, 1, 1)
    assert per_cat[1]["iou_sum"] == pytest.approx(0.7)
    assert (per_cat[18]["fp"], per_cat[187]["fn"]) == (1, 1)
    assert per_cat[3] == {**per_cat[3], "tp": 0, "fp": 0, "fn": 0, "counted": False, "pq": None}
    assert "panopticapi" in result["protocol"]


def test_hand_worked_case_from_files_and_merge(tmp_path, helpers):
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [IMAGE_1, IMAGE_2])
    assert_groups(pq_compute_files(*paths), EXPECTED)
    assert_groups(pq_compute_files(*paths, workers=2), EXPECTED)
    # merged per-image accumulators give the same statistics
    first, second = PanopticQuality(CATEGORIES), PanopticQuality(CATEGORIES)
    first.update(*IMAGE_1[1:])
    second.update(*IMAGE_2[1:])
    assert_groups(first.merge(second).compute(), EXPECTED)


def test_only_the_last_crowd_segment_of_a_category_is_remembered():
    # GT car crowd 1 cols 0-4, then car crowd 2 cols 5-9 (listed second). Prediction car cols 0-5:
    # panopticapi remembers crowd 2 only: ignored part 1/6 -> FP (with crowd 1 it would be 5/6, ignored).
    gt = row(10, {1: [(0, 4)], 2: [(5, 9)]})
    pred = row(10, {7: [(0, 5)]})
    quality = PanopticQuality(CATEGORIES)
    quality.update(gt, [gt_seg(1, 3, 5, crowd=1), gt_seg(2, 3, 5, crowd=1)], pred, [pred_seg(7, 3)])
    assert quality.compute()["Things"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 1}
    reversed_order = PanopticQuality(CATEGORIES)
    reversed_order.update(gt, [gt_seg(2, 3, 5, crowd=1), gt_seg(1, 3, 5, crowd=1)], pred, [pred_seg(7, 3)])
    assert reversed_order.compute()["Things"]["n"] == 0


def test_gt_area_comes_from_the_json():
    # PNG has 4 GT pixels but the JSON says area 6: IoU = 4 / (4 + 6 - 4) = 2/3.
    quality = PanopticQuality(CATEGORIES)
    quality.update(row(6, {1: [(0, 3)]}), [gt_seg(1, 1, 6)], row(6, {9: [(0, 3)]}), [pred_seg(9, 1)])
    assert quality.compute()["All"]["sq"] == pytest.approx(2 / 3, abs=1e-15)


def test_no_category_counted_gives_null():
    quality = PanopticQuality(CATEGORIES)
    quality.update(row(4, {}), [], row(4, {}), [])
    result = quality.compute()
    assert result["All"]["pq"] is None and result["All"]["n"] == 0 and "note" in result["All"]


# EOPSN K5 (car, cow, pizza, toilet are unknown). Image 1 x 20:
# GT car 7 cols 0-9, cow 8 cols 10-14, person 9 cols 15-19.
# Prediction "unknown" (-1) 31 cols 0-8: IoU 9/10 -> TP of the merged class -1 (also credited to -4, car).
# person 32 cols 10-19: IoU 5 / (10 + 5 - 5) = 0.5 -> no match: FP + FN person. cow unmatched -> FN of -1 and -22.
# Unknown: TP1 FN1 ΣIoU .9 -> PQ .9/1.5 = .6, SQ .9, RQ 1/1.5. Things (known): person 0/0/0, n=1.
# Stuff: nothing -> null. All (known things + stuff) = person only.
K5_IMAGE = (
    5,
    row(20, {7: [(0, 9)], 8: [(10, 14)], 9: [(15, 19)]}),
    [gt_seg(7, 3, 10), gt_seg(8, 21, 5), gt_seg(9, 1, 5)],
    row(20, {31: [(0, 8)], 32: [(10, 19)]}),
    [pred_seg(31, -1), pred_seg(32, 1)],
)
K5_EXPECTED = {
    "All": {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 1},
    "Things": {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 1},
    "Stuff": {"pq": None, "sq": None, "rq": None, "n": 0},
    "Unknown": {"pq": 0.6, "sq": 0.9, "rq": 1 / 1.5, "n": 1},
}


def test_eopsn_k5_hand_worked(tmp_path, helpers):
    result = pq_compute_files(*helpers.write_dataset(tmp_path, CATEGORIES, [K5_IMAGE]), unknown="K5")
    assert_groups(result, K5_EXPECTED)
    assert "EOPSN-K5" in result["protocol"]
    per_cat = {c["id"]: c for c in result["per_category"]}
    assert (per_cat[-4]["name"], per_cat[-4]["tp"], per_cat[-4]["fn"]) == ("unknown_car", 1, 0)
    assert per_cat[-4]["pq"] == pytest.approx(0.9)
    assert (per_cat[-22]["tp"], per_cat[-22]["fn"]) == (0, 1)
    assert (per_cat[-1]["tp"], per_cat[-1]["fp"], per_cat[-1]["fn"]) == (1, 0, 1)
    assert 3 not in per_cat and 21 not in per_cat


def test_eopsn_prediction_with_original_unknown_id_is_an_error():
    _, gt_ids, gt_segs, pred_ids, _ = K5_IMAGE
    quality = PanopticQuality(CATEGORIES, unknown="K5")
    with pytest.raises(InputError, match=r"segment id 31 uses category_id 3.*category_id -1"):
        quality.update(gt_ids, gt_segs, pred_ids, [pred_seg(31, 3), pred_seg(32, 1)])
    # without --unknown, -1 is not a category
    with pytest.raises(InputError, match="segment id 31 has unknown category_id -1"):
        PanopticQuality(CATEGORIES).update(gt_ids, gt_segs, pred_ids, K5_IMAGE[4])


def test_eopsn_split_names_checked_against_gt_categories():
    without_toilet = [c for c in CATEGORIES if c["name"] != "toilet"]
    with pytest.raises(InputError, match="70 'toilet'.*absent"):
        PanopticQuality(without_toilet, unknown="K5")
    renamed = [dict(c, name="bus") if c["id"] == 3 else c for c in CATEGORIES]
    with pytest.raises(InputError, match="3 'car'.*named 'bus'"):
        PanopticQuality(renamed, unknown="K5")
    with pytest.raises(InputError, match="unknown: expected one of"):
        PanopticQuality(CATEGORIES, unknown="K7")


def test_unknown_split_tables():
    assert [len(UNKNOWN_SPLITS[k]) for k in ("K5", "K10", "K20")] == [4, 8, 16]
    assert set(UNKNOWN_SPLITS["K5"].values()) == {"car", "cow", "pizza", "toilet"}
    assert set(UNKNOWN_SPLITS["K10"].values()) - set(UNKNOWN_SPLITS["K5"].values()) == {
        "boat", "tie", "zebra", "stop sign"}
    assert set(UNKNOWN_SPLITS["K20"].values()) - set(UNKNOWN_SPLITS["K10"].values()) == {
        "dining table", "banana", "bicycle", "cake", "sink", "cat", "keyboard", "bear"}
    assert UNKNOWN_SPLITS["K20"][67] == "dining table" and UNKNOWN_SPLITS["K20"][81] == "sink"


# ------------------------------------------------------------------------------------------------------------
# fast path vs the literal panopticapi loop on random images
# ------------------------------------------------------------------------------------------------------------

def _compare(result, reference):
    for group in reference:
        if group == "stats":
            continue
        assert result[group]["n"] == reference[group]["n"], group
        for key in ("pq", "sq", "rq"):
            if reference[group][key] is None:
                assert result[group][key] is None
            else:
                assert result[group][key] == pytest.approx(reference[group][key], rel=1e-12, abs=1e-15)
    per_cat = {c["id"]: c for c in result["per_category"]}
    for cid, stats in reference["stats"].items():
        assert (per_cat[cid]["tp"], per_cat[cid]["fp"], per_cat[cid]["fn"]) == (stats["tp"], stats["fp"], stats["fn"])
        assert per_cat[cid]["iou_sum"] == pytest.approx(stats["iou"], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(20))
def test_random_images_match_literal_panopticapi(seed, helpers):
    rng = np.random.default_rng(seed)
    images = [helpers.random_panoptic_image(rng, CATEGORIES, area_jitter=seed % 2 == 1) for _ in range(12)]
    quality = PanopticQuality(CATEGORIES)
    for image in images:
        quality.update(*image)
    _compare(quality.compute(), helpers.literal_pq(CATEGORIES, images))


@pytest.mark.parametrize("seed", range(10))
def test_random_images_match_literal_eopsn_k5(seed, helpers):
    rng = np.random.default_rng(100 + seed)
    unknown_ids = tuple(UNKNOWN_SPLITS["K5"])
    images = [helpers.random_panoptic_image(rng, CATEGORIES, unknown_ids=unknown_ids) for _ in range(12)]
    quality = PanopticQuality(CATEGORIES, unknown="K5")
    for image in images:
        quality.update(*image)
    _compare(quality.compute(), helpers.literal_pq(CATEGORIES, images, unknown_names=set(UNKNOWN_SPLITS["K5"].values())))


def test_random_files_match_literal_and_are_order_independent(tmp_path, helpers):
    rng = np.random.default_rng(7)
    images = [helpers.random_panoptic_image(rng, CATEGORIES, shape=(40, 50), n_gt=12) for _ in range(10)]
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [(i + 1, *image) for i, image in enumerate(images)])
    result = pq_compute_files(*paths)
    _compare(result, helpers.literal_pq(CATEGORIES, images))
    # bit-identical whatever the image order or the split across processes
    shuffled = PanopticQuality(CATEGORIES)
    for image in reversed(images):
        shuffled.update(*image)
    assert json.dumps(shuffled.compute()) == json.dumps(result | {"images": 10}) == json.dumps(
        pq_compute_files(*paths, workers=2))


# ------------------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------------------

def test_png_id_missing_from_json_names_file_and_segment(tmp_path, helpers):
    image_id, gt_ids, gt_segs, pred_ids, pred_segs = IMAGE_1
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [(image_id, gt_ids, gt_segs, pred_ids, pred_segs[:-1])])
    with pytest.raises(InputError, match=r"000001\.png.*segment id\(s\) 15 present in the PNG but not in the JSON"):
        pq_compute_files(*paths)


def test_json_segment_missing_from_png(tmp_path, helpers):
    image_id, gt_ids, gt_segs, pred_ids, pred_segs = IMAGE_2
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [(image_id, gt_ids, gt_segs, pred_ids, pred_segs + [pred_seg(99, 1)])])
    with pytest.raises(InputError, match=r"pred.*000002\.png.*segment id\(s\) 99 in the JSON segments_info are not present"):
        pq_compute_files(*paths)


def test_unknown_category_and_malformed_segments():
    gt_ids, gt_segs, pred_ids = IMAGE_2[1], IMAGE_2[2], IMAGE_2[3]
    quality = PanopticQuality(CATEGORIES)
    with pytest.raises(InputError, match="segment id 21 has unknown category_id 4"):
        quality.update(gt_ids, gt_segs, pred_ids, [pred_seg(21, 4)])
    with pytest.raises(InputError, match="GT segment id 5 has no 'area'"):
        quality.update(gt_ids, [{"id": 5, "category_id": 1, "iscrowd": 0}, gt_segs[1]], pred_ids, IMAGE_2[4])
    with pytest.raises(InputError, match="segment id 5 appears twice"):
        quality.update(gt_ids, [gt_segs[0]] + gt_segs, pred_ids, IMAGE_2[4])
    with pytest.raises(InputError, match="shape"):
        quality.update(gt_ids, gt_segs, pred_ids[:, :10], IMAGE_2[4])
    with pytest.raises(InputError, match=r"gt: segment id\(s\) 6 present in the PNG"):
        quality.update(gt_ids, gt_segs[:1], pred_ids, IMAGE_2[4])
    assert quality.images == 0


def test_missing_files_and_prediction(tmp_path, helpers):
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [IMAGE_1, IMAGE_2])
    (tmp_path / "pred" / "000002.png").unlink()
    with pytest.raises(InputError, match=r"000002\.png: no such file"):
        pq_compute_files(*paths)
    with pytest.raises(InputError, match=r"000002\.png: no such file"):  # raised inside a worker process
        pq_compute_files(*paths, workers=2)
    with pytest.raises(InputError, match="nope.json: GT JSON file not found"):
        pq_compute_files(str(tmp_path / "nope.json"), *paths[1:])
    pred = json.loads((tmp_path / "pred.json").read_text())
    pred["annotations"] = pred["annotations"][:1]
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    with pytest.raises(InputError, match="no prediction for image_id 2"):
        pq_compute_files(*paths)


def test_png_must_be_rgb_and_decodes_24_bit_ids(tmp_path, helpers):
    ids = np.array([[0, 1, 255, 256], [65535, 65536, 2**24 - 1, 12345678]])
    Image.fromarray(helpers.ids_to_rgb(ids), "RGB").save(tmp_path / "rgb.png")
    rgba = np.concatenate([helpers.ids_to_rgb(ids), np.full((2, 4, 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")  # alpha ignored, as panopticapi's rgb2id does
    assert np.array_equal(read_panoptic_png(tmp_path / "rgb.png"), ids)
    assert np.array_equal(read_panoptic_png(tmp_path / "rgba.png"), ids)
    Image.fromarray(np.zeros((2, 4), np.uint8), "L").save(tmp_path / "gray.png")
    with pytest.raises(InputError, match=r"gray\.png: label PNG has mode L; expected RGB or RGBA"):
        read_panoptic_png(tmp_path / "gray.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"broken\.png: unreadable label: not a PNG file: it is text"):
        read_panoptic_png(tmp_path / "broken.png")
    Image.fromarray(helpers.ids_to_rgb(ids), "RGB").save(tmp_path / "lossy.png", format="JPEG")
    with pytest.raises(InputError, match=r"lossy\.png: unreadable label: not a PNG file: it is a JPEG image "
                                         r"\(labels must be lossless PNG"):
        read_panoptic_png(tmp_path / "lossy.png")  # JPEG compression would change the segment ids


def test_gt_json_segment_absent_from_png_is_a_false_negative():
    # as in panopticapi: GT segment 2 (road, area 5 in the JSON) has no pixel; it is an FN of road.
    quality = PanopticQuality(CATEGORIES)
    quality.update(row(4, {1: [(0, 3)]}), [gt_seg(1, 1, 4), gt_seg(2, 149, 5)], row(4, {9: [(0, 3)]}),
                   [pred_seg(9, 1)])
    result = quality.compute()
    assert result["Stuff"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 1}
    assert result["Things"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 1}
