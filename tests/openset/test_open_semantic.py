"""The open-set semantic track end to end on a StreetHazards replica, against an independent recomputation."""

import csv
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from maskbench.benchmark.run import RunConfig, run_benchmark
from maskbench.errors import InputError
from maskbench.scorers import score_all

K = 12
FORWARD = {"path": "test-forward", "sha256": "0" * 64, "config": None}


def run_open_semantic(forward, dataset, scorers, out, *, limit=None, fpr95_rule="strict_dropint", **changes):
    """The open-semantic task of `bench run` on ``dataset`` (loaded), with ``forward`` (DenseHybrid's pooled FPR95
    rule by default, the one the reference below computes)."""
    config = RunConfig(task="open-semantic", dataset=dataset.name, root=dataset.root, scorers=tuple(scorers), out=out,
                       limit=limit, fpr95_rule=fpr95_rule, workers=1, command=["test"], **changes)
    return run_benchmark(config, forward, checkpoint=dict(FORWARD))


def densehybrid_threshold(scores, labels):
    fpr, tpr, thr = roc_curve(labels, scores)
    for i, j, k in zip(tpr, fpr, thr):
        if i > 0.95:
            return k, j
    return 0, None


def hendrycks_fpr(pos, neg, level=0.95):
    """anom_utils.fpr_and_fdr_at_recall, transcribed (anomaly = positive)."""
    y_score = np.concatenate([pos, neg]).astype(np.float64)
    y_true = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(y_score, kind="mergesort")[::-1]
    y_score, y_true = y_score[order], y_true[order]
    distinct = np.where(np.diff(y_score))[0]
    idx = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true)[idx]
    fps = 1 + idx - tps
    recall = tps / tps[-1]
    last = tps.searchsorted(tps[-1])
    sl = slice(last, None, -1)
    recall, fps = np.r_[recall[sl], 1], np.r_[fps[sl], 0]
    return fps[np.argmin(np.abs(recall - level))] / np.sum(np.logical_not(y_true))


def iou_table(conf, ignore):
    conf = conf.astype(np.float64).copy()
    conf[ignore, :] = 0
    conf[:, ignore] = 0
    tp = np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / (conf.sum(0) + conf.sum(1) - tp)


def reference(ds, forward, names):
    frames = []
    for sample in ds:
        c, m = forward(sample.image)
        s = torch.einsum("qc,qhw->chw", torch.softmax(c, -1)[:, :-1], torch.sigmoid(m)).numpy()
        maps = {k: v.numpy() for k, v in score_all(names, c, m).items()}
        gt = sample.semantic.astype(np.int64)
        gt[gt == 255] = K + 1
        gt[sample.ood == 1] = K
        frames.append((sample.id[:2], s, maps, gt, sample.ood))
    out = {}
    closed = np.zeros((K + 1, K + 1), np.int64)
    for _, s, _, gt, _ in frames:
        np.add.at(closed, (np.minimum(gt, K).ravel(), s.argmax(0).ravel()), 1)
    closed_miou = np.nanmean(iou_table(closed, K)[:K])
    for name in names:
        r = {"mIoU_closed": closed_miou}
        thr = {}
        for town, other in (("t5", "t6"), ("t6", "t5")):
            sc, lab = [], []
            for t, _, maps, gt, _ in frames:
                if t != other:
                    continue
                a = maps[name]
                half = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4
                g = gt[::2, ::2]
                sc.append(half[g != K + 1])
                lab.append((g[g != K + 1] == K).astype(int))
            thr[town] = densehybrid_threshold(np.concatenate(sc), np.concatenate(lab))[0]
            conf = np.zeros((K + 2, K + 2), np.int64)
            for t, s, maps, gt, _ in frames:
                if t == town:
                    pred = s.argmax(0)
                    pred[maps[name] > thr[town]] = K
                    np.add.at(conf, (gt.ravel(), pred.ravel()), 1)
            iou = iou_table(conf, K + 1)
            r[f"open_mIoU_{town}"] = np.nanmean(iou[:K])
            r[f"anomaly_IoU_{town}"] = iou[K]
            r[f"threshold_{town}"] = thr[town]
        n5 = sum(f[0] == "t5" for f in frames)
        n6 = len(frames) - n5
        r["open_mIoU"] = (n5 * r["open_mIoU_t5"] + n6 * r["open_mIoU_t6"]) / (n5 + n6)
        y = np.concatenate([f[4][f[4] <= 1] for f in frames])
        sc = np.concatenate([f[2][name][f[4] <= 1] for f in frames])
        r["AP"] = average_precision_score(y, sc)
        r["AUROC"] = roc_auc_score(y, sc)
        r["FPR95"] = densehybrid_threshold(sc, y)[1]
        aps, aurocs, fprs = [], [], []
        for f in frames:
            ood, a = f[4], f[2][name]
            if (ood == 1).any() and (ood == 0).any():
                aps.append(average_precision_score(ood[ood <= 1] == 1, a[ood <= 1]))
                aurocs.append(roc_auc_score(ood[ood <= 1] == 1, a[ood <= 1]))
                fprs.append(hendrycks_fpr(a[ood == 1], a[ood == 0]))
        r.update(AP_per_image=np.mean(aps), AUROC_per_image=np.mean(aurocs), FPR95_per_image=np.mean(fprs))
        out[name] = r
    return out


def noisy_oracle_forward(ds, seed=0):
    """A forward that knows the GT, blurred by noise: query k claims class k's pixels, so the closed-set
    prediction is mostly right, anomalies get low class scores, and open-IoU is far from 0."""
    g = torch.Generator().manual_seed(seed)
    table = {}
    for sample in ds:
        c = torch.full((K, K + 1), -4.0)
        c[torch.arange(K), torch.arange(K)] = 4.0
        c += torch.randn(c.shape, generator=g)
        sem = torch.from_numpy(sample.semantic.astype(np.int64))
        m = torch.stack([torch.where(sem == k, 3.0, -3.0) for k in range(K)])
        m += 1.5 * torch.randn(m.shape, generator=g)
        table[sample.image.tobytes()] = (c, m)
    return lambda image: table[image.tobytes()]


@pytest.mark.parametrize("kind", ["tiny-model", "noisy-oracle"])
def test_open_semantic_matches_reference(streethazards, tiny_forward, tmp_path, kind):
    forward = tiny_forward(0, K) if kind == "tiny-model" else noisy_oracle_forward(streethazards)
    names = ["msp", "eam"]
    results = run_open_semantic(forward, streethazards, names, tmp_path / "out")
    ref = reference(streethazards, forward, names)
    for entry in results["results"]:
        got, want = entry["metrics"], ref[entry["scorer"]]
        calibration = entry["protocol_details"]["calibration"]
        for town in ("t5", "t6"):
            assert calibration[town]["threshold"] == want.pop(f"threshold_{town}")
        for key, value in want.items():
            assert got[key] == pytest.approx(float(value), rel=1e-9, abs=1e-12), (entry["scorer"], key)
        assert got["images"] == 4
        if kind == "noisy-oracle":
            assert got["mIoU_closed"] > 0.3 and got["open_mIoU"] > 0.2 and got["AP"] > 0.5  # not a degenerate case
        assert entry["protocol_details"]["calibration"]["t5"]["calibrated_on"] == "t6"
    # the files of the results directory
    on_disk = json.loads((tmp_path / "out" / "results.json").read_text())
    assert on_disk == results
    assert on_disk["run"]["finished"] and on_disk["run"]["task"] == "open-semantic"
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [r["scorer"] for r in rows] == names
    assert float(rows[0]["open_mIoU"]) == results["results"][0]["metrics"]["open_mIoU"]
    lines = (tmp_path / "out" / "per_image.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == streethazards.ids
    assert not (tmp_path / "out" / "work").exists()


def test_one_town_only_reports_null_with_reason(streethazards, tiny_forward, tmp_path):
    forward = tiny_forward(1, K)
    results = run_open_semantic(forward, streethazards, ["msp"], tmp_path / "out", limit=2)  # t5 frames only
    m, notes = results["results"][0]["metrics"], results["results"][0]["notes"]
    assert m["open_mIoU_t5"] is None and m["open_mIoU_t6"] is None and m["open_mIoU"] is None
    assert "no t6 frame" in notes["open_mIoU_t5"] and "no t6 frame evaluated" in notes["open_mIoU_t6"]
    assert m["mIoU_closed"] is not None and m["AP"] is not None


def test_class_count_mismatch_is_an_input_error(streethazards, tiny_forward, tmp_path):
    forward = tiny_forward(0, 5)
    with pytest.raises(InputError, match="known classes"):
        run_open_semantic(forward, streethazards, ["msp"], tmp_path / "out")


def test_wrong_dataset_and_limit_are_input_errors(streethazards, coco, tiny_forward, tmp_path):
    with pytest.raises(InputError, match="StreetHazards"):
        run_open_semantic(tiny_forward(0, K), coco, ["msp"], tmp_path / "a")
    with pytest.raises(InputError, match="^limit 0"):
        run_open_semantic(tiny_forward(0, K), streethazards, ["msp"], tmp_path / "b", limit=0)
    with pytest.raises(InputError, match="scorer"):
        run_open_semantic(tiny_forward(0, K), streethazards, ["nope"], tmp_path / "c")


def test_curves_file_holds_the_pooled_curves(streethazards, tiny_forward, tmp_path):
    results = run_open_semantic(tiny_forward(0, K), streethazards, ["msp"], tmp_path / "out")
    with np.load(tmp_path / "out" / "curves.npz") as z:
        assert sorted(z.files) == ["msp/pr_precision", "msp/pr_recall", "msp/roc_fpr", "msp/roc_tpr"]
        fpr, tpr = z["msp/roc_fpr"].astype(np.float64), z["msp/roc_tpr"].astype(np.float64)
        assert fpr.size <= 2000 and fpr[0] == 0 and tpr[-1] == 1
    auroc = float(np.trapezoid(tpr, fpr))  # of the downsampled curve: close to, not equal to, the exact AUROC
    assert auroc == pytest.approx(results["results"][0]["metrics"]["AUROC"], abs=1e-3)
