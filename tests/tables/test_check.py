"""`bench check`: golden files written by hand (and by --update) against hand-written results."""

import json

import pytest
from click.testing import CliRunner

from maskbench.benchmark.golden import DEFAULT_TOLERANCE, check, parse_tolerances
from maskbench.errors import InputError


@pytest.fixture
def run_dir(results_dir, entry):
    return results_dir("run", "smiyc-ra21", [
        entry("msp", "smiyc-ra21", "smiyc-anomaly", AP=0.2797, FPR95=0.7202, sIoU=None),
        entry("rba", "smiyc-ra21", "smiyc-anomaly", AP=0.9, FPR95=0.1, sIoU=0.45),
    ])


def golden(path, entries, tolerance=None):
    data = {"maskbench_golden": 1, "produced_by": {"command": ["hand-written"]},
            "tolerance": tolerance or {}, "entries": entries}
    path.write_text(json.dumps(data))
    return path


def g(scorer, **metrics):
    return {"scorer": scorer, "dataset": "smiyc-ra21", "protocol": "smiyc-anomaly", "metrics": metrics}


def invoke(*args):
    from maskbench.cli import main

    return CliRunner().invoke(main, ["check", *map(str, args)])


def test_identical_passes(run_dir, tmp_path):
    path = golden(tmp_path / "g.json", [g("msp", AP=0.2797, FPR95=0.7202, sIoU=None), g("rba", AP=0.9, sIoU=0.45)])
    res = invoke("--golden", path, run_dir, "--tolerance", "0")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[-1].startswith("OK: 5 metrics of 2 golden entries compared; 0 drift, 0 missing, 2 extra")
    # metrics of the results that the golden file does not hold: one row per entry, reported only
    assert [line.split()[:5] for line in lines[2:-1]] == [
        ["extra", "msp", "smiyc-ra21", "smiyc-anomaly", "AUROC,PPV,F1,MDM_F1_60,MDM_F1_70,threshold"],
        ["extra", "rba", "smiyc-ra21", "smiyc-anomaly", "AUROC,FPR95,PPV,F1,MDM_F1_60,MDM_F1_70,threshold"]]


def test_drift_beyond_tolerance_fails_with_table(run_dir, tmp_path):
    path = golden(tmp_path / "g.json", [g("msp", AP=0.2807, FPR95=0.72025), g("rba", AP=0.9)])
    res = invoke("--golden", path, run_dir)
    assert res.exit_code == 1
    lines = res.output.splitlines()
    assert lines[0].split() == ["status", "scorer", "dataset", "protocol", "metric", "golden", "got", "|diff|",
                                "tolerance"]
    drift = [line.split() for line in lines if line.startswith("drift")]
    # AP off by 1e-3 > 1e-4 drifts; FPR95 off by 5e-5 <= 1e-4 does not
    assert len(drift) == 1
    assert drift[0][:7] == ["drift", "msp", "smiyc-ra21", "smiyc-anomaly", "AP", "0.2807", "0.2797"]
    assert float(drift[0][7]) == pytest.approx(1e-3) and float(drift[0][8]) == DEFAULT_TOLERANCE
    assert lines[-1].startswith("FAIL: 3 metrics of 2 golden entries compared; 1 drift")
    # a wider tolerance for AP (file or command line) passes
    assert invoke("--golden", path, run_dir, "--tolerance", "AP=0.002").exit_code == 0
    golden(path, [g("msp", AP=0.2807)], tolerance={"AP": 0.002})
    assert invoke("--golden", path, run_dir).exit_code == 0
    # tolerance 0 = bit-identical: one ulp is drift
    golden(path, [g("rba", AP=0.9000000000000001)])
    assert invoke("--golden", path, run_dir, "--tolerance", "0").exit_code == 1


def test_null_vs_number_is_drift(run_dir, tmp_path):
    report = check(golden(tmp_path / "g.json", [g("msp", sIoU=0.1), g("rba", sIoU=None)]), [run_dir])
    assert not report.ok
    assert [(f.scorer, f.metric, f.golden, f.got) for f in report.failed] == [("msp", "sIoU", 0.1, None),
                                                                               ("rba", "sIoU", None, 0.45)]
    res = invoke("--golden", tmp_path / "g.json", run_dir)
    assert res.exit_code == 1 and "null" in res.output


def test_missing_entry_and_metric_fail_extra_reported(run_dir, tmp_path):
    path = golden(tmp_path / "g.json", [g("msp", AP=0.2797, AP_per_image=0.5),
                                        {**g("msp", AP=0.2), "dataset": "road-anomaly"}])
    report = check(path, [run_dir])
    status = sorted((f.status, f.scorer, f.dataset, f.metric) for f in report.findings if f.status != "ok")
    assert ("missing", "msp", "road-anomaly", "(entry)") in status
    assert ("missing", "msp", "smiyc-ra21", "AP_per_image") in status
    assert ("extra", "rba", "smiyc-ra21", "(entry)") in status
    assert not report.ok
    # an extra entry alone does not fail
    report = check(golden(path, [g("msp", AP=0.2797)]), [run_dir])
    assert report.ok and any(f.status == "extra" and f.scorer == "rba" for f in report.findings)


def test_update_writes_a_golden_that_passes(run_dir, tmp_path):
    path = tmp_path / "golden.json"
    res = invoke("--golden", path, run_dir, "--update", "--tolerance", "0", "--tolerance", "threshold=0.01")
    assert res.exit_code == 0, res.output
    data = json.loads(path.read_text())
    assert data["tolerance"] == {"default": 0.0, "threshold": 0.01}
    assert data["produced_by"]["runs"][0]["checkpoint_sha256"] == "ab" * 32
    assert data["produced_by"]["command"] == ["bench", "check", "--golden", str(path), str(run_dir),
                                              "--tolerance=0", "--tolerance=threshold=0.01", "--update"]
    assert [e["scorer"] for e in data["entries"]] == ["msp", "rba"]
    assert data["entries"][0]["metrics"]["AP"] == 0.2797 and data["entries"][0]["metrics"]["sIoU"] is None
    res = invoke("--golden", path, run_dir)
    assert res.exit_code == 0, res.output
    assert "0 drift, 0 missing" in res.output


def test_check_without_golden_does_not_create_it(run_dir, tmp_path):
    res = invoke("--golden", tmp_path / "absent.json", run_dir)
    assert res.exit_code == 1 and "golden file not found" in res.output
    assert not (tmp_path / "absent.json").exists()


def test_tolerance_parsing_and_bad_golden(tmp_path, run_dir):
    assert parse_tolerances(["1e-3", "AP=0"]) == {"default": 1e-3, "AP": 0.0}
    for bad in ("x", "AP=-1", "=1", "AP=nan"):
        with pytest.raises(InputError, match="^tolerance"):
            parse_tolerances([bad])
    (tmp_path / "bad.json").write_text('{"entries": []}')
    with pytest.raises(InputError, match="bad.json: not a maskbench golden file"):
        check(tmp_path / "bad.json", [run_dir])


def test_per_class_iou_is_compared_class_by_class(results_dir, entry, tmp_path):
    e = entry("closed-set", "cityscapes", "exact", AP=None)
    e["metrics"].update(mIoU=0.5, IoU={"road": 0.9, "car": 0.1, "bus": None})
    run = results_dir("sem", "cityscapes", [e], protocol="exact")
    want = {"scorer": "closed-set", "dataset": "cityscapes", "protocol": "exact",
            "metrics": {"mIoU": 0.5, "IoU": {"road": 0.9, "car": 0.1004, "bus": 0.2}}}
    report = check(golden(tmp_path / "g.json", [want], {"IoU.car": 1e-3}), [run])
    assert [(f.metric, f.golden, f.got) for f in report.failed] == [("IoU.bus", 0.2, None)]
    assert report.compared == 4
