"""`bench evaluate` end to end on tiny directories, checked against sklearn and hand-worked values."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from maskbench.cli import main


def write_frames(tmp_path, frames):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir(exist_ok=True)
    gt.mkdir(exist_ok=True)
    for stem, (scores, labels) in frames.items():
        np.save(pred / f"{stem}.npy", scores)
        Image.fromarray(labels).save(gt / f"{stem}.png")
    return pred, gt


def random_frames(seed, n=3, shape=(40, 60)):
    rng = np.random.default_rng(seed)
    frames = {}
    for i in range(n):
        labels = np.zeros(shape, np.uint8)
        labels[5:15, 10 + 5 * i:30 + 5 * i] = 1
        labels[rng.random(shape) < 0.1] = 255
        labels[0, :] = 7  # an unexpected value is void too
        scores = np.round(rng.random(shape) * 20) / 20 + 0.5 * (labels == 1)  # many ties
        frames[f"frame.{i:02d}"] = (scores.astype(np.float32), labels)
    return frames


def invoke(*args):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


def test_exact_protocol_matches_sklearn(tmp_path):
    frames = random_frames(0)
    pred, gt = write_frames(tmp_path, frames)
    out = tmp_path / "m.json"
    result = invoke("--pred", pred, "--gt", gt, "--protocol", "exact", "--json", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())

    s = np.concatenate([f[0].ravel() for f in frames.values()])
    y = np.concatenate([f[1].ravel() for f in frames.values()])
    valid = y <= 1
    s, y = s[valid], y[valid]
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    assert got["AP"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert got["AUROC"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert got["FPR95"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], abs=1e-12)
    assert got["images"] == 3 and got["protocol"] == "exact"
    assert set(got) >= {"AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70",
                        "threshold", "images", "protocol"}
    assert "protocol exact" in result.output


def test_components_hand_worked(tmp_path):
    # One 30x30 anomaly; the detector scores it 0.9 except one pixel at 0.85, background 0.1.
    # Best F1 over {s >= t}: t = 0.85 (F1 = 1). Components binarise with s > 0.85: the blob minus one
    # pixel, 899 px >= 500. sIoU = 899 / 900 >= every tau (TP), PPV = 1, F1* = 1.
    labels = np.zeros((64, 64), np.uint8)
    labels[10:40, 20:50] = 1
    scores = np.where(labels == 1, 0.9, 0.1).astype(np.float32)
    scores[10, 20] = 0.85
    pred, gt = write_frames(tmp_path, {"a": (scores, labels)})
    out = tmp_path / "m.json"
    result = invoke("--pred", pred, "--gt", gt, "--protocol", "exact", "--json", out)
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    assert got["threshold"] == pytest.approx(0.85, abs=1e-7)
    assert got["sIoU"] == pytest.approx(899 / 900)
    assert got["PPV"] == 1.0 and got["F1"] == 1.0
    assert got["AP"] == 1.0 and got["FPR95"] == 0.0


def test_workers_do_not_change_results(tmp_path):
    pred, gt = write_frames(tmp_path, random_frames(1, n=9))
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.json"
        result = invoke("--pred", pred, "--gt", gt, "--protocol", "smiyc-anomaly", "--json", out,
                        "--workers", workers)
        assert result.exit_code == 0, result.output
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1]


def test_unpaired_stems_are_named(tmp_path):
    frames = random_frames(2, n=2)
    pred, gt = write_frames(tmp_path, frames)
    (gt / "frame.01.png").unlink()
    result = invoke("--pred", pred, "--gt", gt, "--protocol", "exact16")
    assert result.exit_code != 0
    assert "frame.01" in result.output and "Traceback" not in result.output


def test_shape_mismatch_is_named(tmp_path):
    labels = np.zeros((8, 8), np.uint8)
    pred, gt = write_frames(tmp_path, {"odd": (np.zeros((8, 9), np.float32), labels)})
    result = invoke("--pred", pred, "--gt", gt, "--protocol", "exact")
    assert result.exit_code != 0 and "odd" in result.output and "shape" in result.output


def test_nan_scores_rejected_with_file_name(tmp_path):
    scores = np.zeros((8, 8), np.float32)
    scores[2, 2] = np.nan
    pred, gt = write_frames(tmp_path, {"bad": (scores, np.zeros((8, 8), np.uint8))})
    result = invoke("--pred", pred, "--gt", gt, "--protocol", "exact")
    assert result.exit_code != 0 and "bad.npy" in result.output and "NaN" in result.output
