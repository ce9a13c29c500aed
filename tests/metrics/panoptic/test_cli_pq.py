"""`bench pq` through click's CliRunner on tiny panopticapi files."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from maskbench.cli import main

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1},
    {"id": 3, "name": "car", "isthing": 1},
    {"id": 21, "name": "cow", "isthing": 1},
    {"id": 59, "name": "pizza", "isthing": 1},
    {"id": 70, "name": "toilet", "isthing": 1},
    {"id": 149, "name": "road", "isthing": 0},
]


def tiny_images():
    # GT: person 1 cols 0-4, car 2 cols 5-9, road 3 cols 10-19.
    gt = np.zeros((2, 20), np.int64)
    gt[:, 0:5], gt[:, 5:10], gt[:, 10:20] = 1, 2, 3
    gt_segs = [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 10},
               {"id": 2, "category_id": 3, "iscrowd": 0, "area": 10},
               {"id": 3, "category_id": 149, "iscrowd": 0, "area": 20}]
    # prediction: person 300 exact (IoU 1), road 70000 cols 12-19 (IoU 16/20 = 0.8); the car is missed.
    pred = np.zeros((2, 20), np.int64)
    pred[:, 0:5], pred[:, 12:20] = 300, 70000
    return [(1, gt, gt_segs, pred, [{"id": 300, "category_id": 1}, {"id": 70000, "category_id": 149}])]


def args(paths, out):
    gt_json, gt_dir, pred_json, pred_dir = paths
    return ["pq", "--gt-json", gt_json, "--gt-dir", gt_dir, "--pred-json", pred_json, "--pred-dir", pred_dir,
            "--json", str(out)]


def test_pq_command_writes_json_and_table(tmp_path, helpers):
    paths = helpers.write_dataset(tmp_path, CATEGORIES, tiny_images())
    result = CliRunner().invoke(main, args(paths, tmp_path / "out.json"))
    assert result.exit_code == 0, result.output
    out = json.loads((tmp_path / "out.json").read_text())
    assert {"All", "Things", "Stuff", "protocol"} <= out.keys() and "Unknown" not in out
    # person PQ 1, car FN PQ 0, road PQ 0.8
    assert out["All"]["pq"] == pytest.approx((1 + 0 + 0.8) / 3) and out["All"]["n"] == 3
    assert out["Things"] == {"pq": 0.5, "sq": 0.5, "rq": 0.5, "n": 2}
    assert out["Stuff"]["pq"] == pytest.approx(0.8)
    assert "panopticapi" in result.output and "60.0" in result.output  # All PQ x100


def test_pq_command_unknown_k5(tmp_path, helpers):
    paths = helpers.write_dataset(tmp_path, CATEGORIES, tiny_images())
    result = CliRunner().invoke(main, args(paths, tmp_path / "out.json") + ["--unknown", "K5"])
    assert result.exit_code == 0, result.output
    out = json.loads((tmp_path / "out.json").read_text())
    assert {"All", "Things", "Stuff", "Unknown"} <= out.keys() and "EOPSN-K5" in out["protocol"]
    # the car GT becomes unknown (-1) and is missed: Unknown PQ 0 (n 1); known things = person only
    assert out["Unknown"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 1}
    assert out["Things"]["pq"] == 1.0 and out["Things"]["n"] == 1
    assert out["All"]["pq"] == pytest.approx(0.9) and out["All"]["n"] == 2
    assert "EOPSN-K5" in result.output and "Unknown" in result.output


def test_pq_command_missing_png(tmp_path, helpers):
    paths = helpers.write_dataset(tmp_path, CATEGORIES, tiny_images())
    (tmp_path / "pred" / "000001.png").unlink()
    result = CliRunner().invoke(main, args(paths, tmp_path / "out.json"))
    assert result.exit_code == 1
    assert "000001.png: no such file" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.json").exists()


def test_pq_command_png_id_not_in_json(tmp_path, helpers):
    (image_id, gt, gt_segs, pred, pred_segs), = tiny_images()
    pred[0, 5] = 4242
    paths = helpers.write_dataset(tmp_path, CATEGORIES, [(image_id, gt, gt_segs, pred, pred_segs)])
    result = CliRunner().invoke(main, args(paths, tmp_path / "out.json"))
    assert result.exit_code == 1
    assert "4242 present in the PNG but not in the JSON" in result.output and "000001.png" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_pq_command_unknown_split_absent_from_categories(tmp_path, helpers):
    categories = [c for c in CATEGORIES if c["name"] != "pizza"]
    paths = helpers.write_dataset(tmp_path, categories, tiny_images())
    result = CliRunner().invoke(main, args(paths, tmp_path / "out.json") + ["--unknown", "K5"])
    assert result.exit_code == 1 and "gt.json: categories: EOPSN-K5 needs COCO category 59 'pizza'" in result.output and "Traceback" not in result.output
