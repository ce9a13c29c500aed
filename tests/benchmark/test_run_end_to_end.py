"""`bench run` end to end on 3-frame replicas with a fake forward: results files vs the schema, metric values vs
`bench evaluate` on independently written score maps, and vs sklearn for the exact protocol."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from maskbench.benchmark.evaluate import evaluate_dirs
from maskbench.benchmark.run import run_benchmark
from maskbench.datasets import load_dataset
from maskbench.scorers import get_scorer

RUN_KEYS = {"maskbench_version", "command", "started", "finished", "dataset", "checkpoint", "scorers", "protocol",
            "fpr95_rule", "resolution", "tta", "device", "limit", "versions"}
METRICS = {"AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70", "threshold"}


def independent_maps(kit, dataset, folder):
    """Score maps computed scorer by scorer (no runner), written as `bench evaluate` reads them."""
    ds = load_dataset(dataset, kit.replicas[dataset])
    pred, gt = folder / "pred", folder / "gt"
    maps = {}
    for sample in ds:
        class_logits, mask_logits = kit.fake_forward(sample.image)
        for name in kit.ALL_SCORERS:
            score = get_scorer(name)(class_logits, mask_logits).numpy()
            (pred / name).mkdir(parents=True, exist_ok=True)
            np.save(pred / name / f"{sample.id}.npy", score)
            maps.setdefault(name, []).append(score)
        gt.mkdir(exist_ok=True)
        Image.fromarray(sample.ood).save(gt / f"{sample.id}.png")
    return pred, gt, maps, [s.ood for s in ds]


@pytest.mark.parametrize("dataset, protocol", [("smiyc-ra21", "smiyc-anomaly"), ("smiyc-ro21", "smiyc-obstacle")])
def test_official_protocol_matches_bench_evaluate(kit, tmp_path, dataset, protocol):
    out = tmp_path / "out"
    results = run_benchmark(kit.config(out, dataset=dataset, save_maps=2), kit.fake_forward,
                            checkpoint=kit.checkpoint())
    pred, gt, _, _ = independent_maps(kit, dataset, tmp_path)

    # run.json / results.json
    run = json.loads((out / "run.json").read_text())
    assert RUN_KEYS <= set(run) and run["finished"] is not None and run["protocol"] == protocol
    assert run["dataset"]["info"]["track"] == protocol.split("-")[1] and run["checkpoint"]["sha256"] == "f" * 64
    assert run["scorers"]["maskomaly"]["lam"] == 0.6 and set(run["scorers"]) == set(kit.ALL_SCORERS)
    assert set(run["versions"]) == {"python", "torch", "numpy", "numba", "scipy"}
    stored = json.loads((out / "results.json").read_text())
    assert stored == json.loads(json.dumps(results)) and stored["run"] == run
    assert [e["scorer"] for e in stored["results"]] == list(kit.ALL_SCORERS)

    for entry in stored["results"]:
        expected = evaluate_dirs(pred / entry["scorer"], gt, protocol, workers=1)
        assert entry["protocol"] == protocol and entry["dataset"] == dataset
        assert METRICS <= set(entry["metrics"])
        for key in METRICS | {"n_pixels", "n_positive"}:
            assert entry["metrics"][key] == expected[key], (entry["scorer"], key)
        assert entry["metrics"]["images"] == 3
        assert entry["protocol_details"] == expected["protocol_details"]
        # the fake forward is not the Swin-L checkpoint of Maskomaly's published query ids (test_calibrate.py)
        published = {f"maskomaly.{k}": "published Swin-L ids (not fitted for this checkpoint)"
                     for k in ("accept", "ground")} if entry["scorer"] == "maskomaly" else {}
        assert entry["notes"] == {**published, **expected["notes"]}
        assert entry["metrics"]["AP"] is not None and entry["metrics"]["sIoU"] is not None

    # results.csv: one row per scorer, fractions as in results.json
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["scorer"] for r in rows] == list(kit.ALL_SCORERS)
    for row, entry in zip(rows, stored["results"]):
        assert row["protocol"] == protocol and row["dataset"] == dataset
        for key in METRICS:
            value = entry["metrics"][key]
            assert (row[key] == "") if value is None else float(row[key]) == value

    # per_image.jsonl
    lines = (out / "per_image.jsonl").read_text().splitlines()
    ds = load_dataset(dataset, kit.replicas[dataset])
    assert len(lines) == 3
    for index, (line, sample) in enumerate(zip(lines, ds)):
        row = json.loads(line)
        assert (row["id"], row["index"], row["height"], row["width"]) == (sample.id, index, *sample.ood.shape)
        assert row["n_valid"] == int((sample.ood <= 1).sum()) and row["n_anomaly"] == int((sample.ood == 1).sum())
        msp = np.load(pred / "msp" / f"{sample.id}.npy")
        assert row["scores"]["msp"]["max"] == float(msp.max())
        anomaly = sample.ood == 1
        expected_mean = float(msp[anomaly].mean()) if anomaly.any() else None
        assert row["scores"]["msp"]["mean_anomaly"] == pytest.approx(expected_mean, rel=1e-6)
        assert row["scores"]["msp"]["mean_inlier"] == pytest.approx(float(msp[sample.ood == 0].mean()), rel=1e-6)
        assert row["seconds"] >= 0

    # curves.npz and maps/
    with np.load(out / "curves.npz", allow_pickle=False) as curves:
        for name in kit.ALL_SCORERS:
            for key in ("pr_precision", "pr_recall", "roc_fpr", "roc_tpr"):
                arr = curves[f"{name}/{key}"]
                assert arr.dtype == np.float32 and 2 <= arr.size <= 2000
    assert sorted(p.stem for p in (out / "maps").iterdir()) == ds.ids[:2]
    with np.load(out / "maps" / f"{ds.ids[0]}.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["image"], ds[0].image)
        np.testing.assert_array_equal(z["ood"], ds[0].ood)
        np.testing.assert_array_equal(z["rba"], np.load(pred / "rba" / f"{ds.ids[0]}.npy").astype(np.float16))
    assert not (out / "work").exists()


def test_exact_protocol_matches_sklearn(kit, tmp_path):
    results = run_benchmark(kit.config(tmp_path / "out", scorers=("rba", "eam"), protocol="exact"),
                            kit.fake_forward, checkpoint=kit.checkpoint())
    _, _, maps, labels = independent_maps(kit, "smiyc-ra21", tmp_path)
    y = np.concatenate([g.ravel() for g in labels])
    assert results["run"]["protocol"] == "exact"
    for entry in results["results"]:
        s = np.concatenate([m.ravel() for m in maps[entry["scorer"]]])
        valid = y <= 1
        fpr, tpr, _ = roc_curve(y[valid], s[valid], drop_intermediate=False)
        m = entry["metrics"]
        assert m["AP"] == pytest.approx(average_precision_score(y[valid], s[valid]), rel=1e-12)
        assert m["AUROC"] == pytest.approx(roc_auc_score(y[valid], s[valid]), rel=1e-12)
        assert m["FPR95"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)], rel=1e-12)
        assert entry["protocol_details"]["score_dtype"] == "float32"


def test_obstacle_dataset_exact_uses_obstacle_components(kit, tmp_path):
    results = run_benchmark(kit.config(tmp_path / "out", dataset="smiyc-ro21", scorers=("msp",), protocol="exact"),
                            kit.fake_forward, checkpoint=kit.checkpoint())
    assert results["run"]["protocol"] == "exact-obstacle"
    assert results["results"][0]["protocol_details"]["min_pred_component_px"] == 50


def test_flip_tta_averages_scorer_maps(kit, tmp_path):
    out = tmp_path / "out"
    run_benchmark(kit.config(out, scorers=("msp", "rba"), tta="flip", save_maps=3), kit.fake_forward,
                  checkpoint=kit.checkpoint())
    ds = load_dataset("smiyc-ra21", kit.replicas["smiyc-ra21"])
    for sample in ds:
        image = sample.image
        plain = kit.fake_forward(image)
        flipped = kit.fake_forward(image[:, ::-1].copy())
        for name in ("msp", "rba"):
            scorer = get_scorer(name)
            expected = (scorer(*plain) + torch.flip(scorer(*flipped), dims=[-1])) / 2
            with np.load(out / "maps" / f"{sample.id}.npz") as z:
                np.testing.assert_array_equal(z[name], expected.numpy().astype(np.float16))
                assert not np.array_equal(z[name], scorer(*plain).numpy().astype(np.float16))
    assert json.loads((out / "run.json").read_text())["tta"] == "flip"
