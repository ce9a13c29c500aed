"""The StreetHazards anomaly track of `bench run` (pooled and per-image AP / AUROC / FPR95) against scikit-learn and
a literal transcription of hendrycks/anomaly-seg's per-image evaluation (``eval_ood.py`` + ``anom_utils.py``)."""

import csv
import json

import numpy as np
import pytest
import sklearn.metrics as sk
from click.testing import CliRunner
from PIL import Image

from maskbench.benchmark.run import RunConfig, run_benchmark
from maskbench.datasets import load_dataset
from maskbench.datasets.replica import make
from maskbench.errors import InputError
from maskbench.scorers import score_all

SCORERS = ("msp", "rba", "eam")


# -- hendrycks/anomaly-seg anom_utils.py, transcribed ------------------------------------------------------------
def stable_cumsum(arr, rtol=1e-05, atol=1e-08):
    out = np.cumsum(arr, dtype=np.float64)
    expected = np.sum(arr, dtype=np.float64)
    if not np.allclose(out[-1], expected, rtol=rtol, atol=atol):
        raise RuntimeError("cumsum was found to be unstable: its last element does not correspond to sum")
    return out


def fpr_and_fdr_at_recall(y_true, y_score, recall_level=0.95, pos_label=1.0):
    y_true = y_true == pos_label
    desc_score_indices = np.argsort(y_score, kind="mergesort")[::-1]
    y_score = y_score[desc_score_indices]
    y_true = y_true[desc_score_indices]
    distinct_value_indices = np.where(np.diff(y_score))[0]
    threshold_idxs = np.r_[distinct_value_indices, y_true.size - 1]
    tps = stable_cumsum(y_true)[threshold_idxs]
    fps = 1 + threshold_idxs - tps
    recall = tps / tps[-1]
    last_ind = tps.searchsorted(tps[-1])
    sl = slice(last_ind, None, -1)
    recall, fps = np.r_[recall[sl], 1], np.r_[fps[sl], 0]
    cutoff = np.argmin(np.abs(recall - recall_level))
    return fps[cutoff] / (np.sum(np.logical_not(y_true)))


def get_measures(_pos, _neg, recall_level=0.95):
    pos = np.array(_pos[:]).reshape((-1, 1))
    neg = np.array(_neg[:]).reshape((-1, 1))
    examples = np.squeeze(np.vstack((pos, neg)))
    labels = np.zeros(len(examples), dtype=np.int32)
    labels[:len(pos)] += 1
    auroc = sk.roc_auc_score(labels, examples)
    aupr = sk.average_precision_score(labels, examples)
    fpr = fpr_and_fdr_at_recall(labels, examples, recall_level)
    return auroc, aupr, fpr


# -- eval_ood.py: per image (anomaly = positive, void left out), frames with one class skipped, np.mean -----------
def hendrycks(frames):
    aurocs, auprs, fprs = [], [], []
    for scores, ood in frames:
        out_scores, in_scores = scores[ood == 1], scores[ood == 0]
        if len(out_scores) != 0 and len(in_scores) != 0:
            auroc, aupr, fpr = get_measures(out_scores, in_scores)
            aurocs.append(auroc)
            auprs.append(aupr)
            fprs.append(fpr)
    return np.mean(auprs), np.mean(aurocs), np.mean(fprs), len(auprs)


def pooled(frames):
    y = np.concatenate([(ood[ood <= 1] == 1) for _, ood in frames]).astype(int)
    s = np.concatenate([scores[ood <= 1] for scores, ood in frames])
    fpr, tpr, _ = sk.roc_curve(y, s)
    return sk.average_precision_score(y, s), sk.roc_auc_score(y, s), next(f for t, f in zip(tpr, fpr) if t > 0.95)


@pytest.fixture
def streethazards(tmp_path):
    """A 6-frame replica: t5 frames with an anomaly, t6 frames without (skipped per image); frame 5 gets one too."""
    rep = make("streethazards", tmp_path / "sh", frames=6, seed=5)
    raw = np.array(Image.open(rep.files["t6_5"]["label"]))
    raw[30:50, 20:60] = 14
    Image.fromarray(raw).save(rep.files["t6_5"]["label"])
    return rep.root


def run_track(kit, root, out, **changes):
    config = RunConfig(dataset="streethazards", root=root, out=out, scorers=SCORERS, workers=1, command=["test"],
                       **changes)
    return run_benchmark(config, kit.fake_forward, checkpoint=kit.checkpoint())


@pytest.mark.parametrize("convention", ["densehybrid", "hendrycks"])
def test_pooled_and_per_image_match_sklearn_and_hendrycks(kit, streethazards, tmp_path, convention):
    results = run_track(kit, streethazards, tmp_path / "out", dataset_options={"convention": convention})
    ds = load_dataset("streethazards", streethazards, convention=convention)
    maps = [(score_all(list(SCORERS), *kit.fake_forward(s.image)), s.ood) for s in ds]
    assert [e["scorer"] for e in results["results"]] == list(SCORERS)
    for entry in results["results"]:
        frames = [(m[entry["scorer"]].numpy(), ood) for m, ood in maps]
        m = entry["metrics"]
        ap, auroc, fpr, used = hendrycks(frames)
        assert m["AP_per_image"] == pytest.approx(ap, abs=1e-12)
        assert m["AUROC_per_image"] == pytest.approx(auroc, abs=1e-12)
        assert m["FPR95_per_image"] == pytest.approx(fpr, abs=1e-12)
        ap, auroc, fpr = pooled(frames)
        assert m["AP"] == pytest.approx(ap, abs=1e-12) and m["AUROC"] == pytest.approx(auroc, abs=1e-12)
        assert m["FPR95"] == fpr
        assert m["images"] == 6 and used == 4 and entry["protocol"] == "streethazards-anomaly"
        assert "2 of 6 frame(s) without anomaly or inlier pixels skipped" in entry["notes"]["per_image"]
        details = entry["protocol_details"]
        assert details["convention"] == convention and details["label_convention"].startswith(convention)
        assert details["fpr95_rules"]["per_image"].startswith("closest") and details["fpr95_rule"] == "strict_dropint"
        assert details["frames_per_image"] == 4
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["fpr95_rules"] == {"pooled": "strict_dropint", "per_image": "closest"}
    header = next(csv.reader((tmp_path / "out" / "results.csv").open()))
    assert header[3:9] == ["AP", "AUROC", "FPR95", "AP_per_image", "AUROC_per_image", "FPR95_per_image"]
    with np.load(tmp_path / "out" / "curves.npz") as z:
        assert "msp/roc_tpr" in z.files


def test_the_conventions_change_the_numbers_and_the_rule_can_be_chosen(kit, streethazards, tmp_path):
    dense = run_track(kit, streethazards, tmp_path / "a")
    hend = run_track(kit, streethazards, tmp_path / "b", dataset_options={"convention": "hendrycks"})
    assert dense["results"][0]["metrics"]["AP"] != hend["results"][0]["metrics"]["AP"]  # "other" void or not
    interp = run_track(kit, streethazards, tmp_path / "c", fpr95_rule="interp")
    assert interp["results"][0]["protocol_details"]["fpr95_rule"] == "interp"
    assert interp["results"][0]["metrics"]["FPR95_per_image"] == dense["results"][0]["metrics"]["FPR95_per_image"]
    with pytest.raises(InputError, match="protocol smiyc-anomaly: the streethazards anomaly track evaluates exact"):
        run_track(kit, streethazards, tmp_path / "d", protocol="smiyc-anomaly")


def test_cli_prints_the_per_image_columns(streethazards, tiny_checkpoint, tmp_path):
    from maskbench.cli import main

    result = CliRunner().invoke(main, ["run", "--dataset", "streethazards", "--root", str(streethazards),
                                       "--checkpoint", str(tiny_checkpoint), "--scorer", "msp,rba",
                                       "--out", str(tmp_path / "out"), "-o", "convention=hendrycks"])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if line.startswith("scorer"))
    assert header.split()[1:] == ["|", "AP", "^", "AUROC", "^", "FPR95", "v", "AP_per_image", "^",
                                  "AUROC_per_image", "^", "FPR95_per_image", "v"]
