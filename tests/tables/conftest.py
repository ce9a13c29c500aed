"""Hand-written results directories following RESULTS_SCHEMA.md, exposed as fixtures."""

import csv
import json

import numpy as np
import pytest

METRIC_KEYS = ("AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70", "threshold")
PROTOCOLS = {
    "smiyc-anomaly": ("official SMIYC AnomalyTrack: float16 scores, per-frame 768-quantile bins, "
                      "components >= 500 px, GT components >= 100 px", "smiyc"),
    "smiyc-obstacle": ("official SMIYC ObstacleTrack: float16 scores, per-frame 768-quantile bins, "
                       "components >= 50 px, GT components >= 10 px", "smiyc"),
    "exact": ("exact pooled curve on float32 scores (sklearn-identical); anomaly-track component filters at "
              "the exact best-F1 threshold", "exact"),
}


def run_meta(dataset, scorers, protocol="smiyc-anomaly", checkpoint="m2a_cityscapes.pth", sha="ab" * 32,
             resolution="native", tta="none"):
    """The run.json content of RESULTS_SCHEMA.md."""
    return {
        "maskbench_version": "0.1.0",
        "command": ["bench", "run", "--dataset", dataset],
        "started": "2026-11-21T10:00:00Z",
        "finished": "2026-11-21T10:05:00Z",
        "dataset": {"name": dataset, "root": f"/data/{dataset}", "info": {"version": "1", "track": "anomaly"}},
        "checkpoint": {"path": f"/ckpt/{checkpoint}", "sha256": sha, "config": {"num_queries": 100}},
        "scorers": {s: {} for s in scorers},
        "protocol": protocol,
        "fpr95_rule": f"{PROTOCOLS[protocol][1]}-fpr95-rule",
        "resolution": resolution,
        "tta": tta,
        "device": "cpu",
        "limit": None,
        "versions": {"python": "3.11.7", "torch": "2.13.0", "numpy": "2.4.6", "numba": "0.68.1", "scipy": "1.17.1"},
    }


def result_entry(scorer, dataset, protocol, notes=None, **metrics):
    full = {k: metrics.get(k) for k in METRIC_KEYS}
    return {
        "scorer": scorer, "dataset": dataset, "protocol": protocol, "metrics": full,
        "protocol_details": {"description": PROTOCOLS[protocol][0], "pixel_protocol": PROTOCOLS[protocol][1],
                             "fpr95_rule": f"{PROTOCOLS[protocol][1]}-fpr95-rule"},
        "notes": notes or {},
    }


def write_results_dir(path, dataset, entries, protocol="smiyc-anomaly", curves=None, maps=None, **run_kw):
    """Write DIR/run.json, per_image.jsonl, results.json, results.csv (+ curves.npz, maps/<id>.npz)."""
    path.mkdir(parents=True, exist_ok=True)
    scorers = list(dict.fromkeys(e["scorer"] for e in entries))
    run = run_meta(dataset, scorers, protocol, **run_kw)
    (path / "run.json").write_text(json.dumps(run, indent=2))
    with open(path / "per_image.jsonl", "w") as f:
        f.write(json.dumps({"id": "frame0", "index": 0, "height": 8, "width": 8, "n_valid": 64, "n_anomaly": 4,
                            "seconds": 0.1, "scores": {s: {"min": 0.0, "max": 1.0, "mean_anomaly": 0.8,
                                                           "mean_inlier": 0.1} for s in scorers}}) + "\n")
    (path / "results.json").write_text(json.dumps({"run": run, "results": entries}, indent=2))
    with open(path / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scorer", "dataset", "protocol", *METRIC_KEYS])
        for e in entries:
            w.writerow([e["scorer"], e["dataset"], e["protocol"], *("" if e["metrics"][k] is None else
                                                                    repr(e["metrics"][k]) for k in METRIC_KEYS)])
    if curves is not None:
        np.savez(path / "curves.npz", **{k: np.asarray(v, dtype=np.float32) for k, v in curves.items()})
    if maps is not None:
        (path / "maps").mkdir(exist_ok=True)
        for fid, arrays in maps.items():
            np.savez_compressed(path / "maps" / f"{fid}.npz", **arrays)
    return path


@pytest.fixture
def results_dir(tmp_path):
    """``results_dir(name, dataset, entries, **kw)`` -> a results directory under this test's tmp_path."""

    def make(name, dataset, entries, **kw):
        return write_results_dir(tmp_path / name, dataset, entries, **kw)

    return make


@pytest.fixture
def entry():
    return result_entry
