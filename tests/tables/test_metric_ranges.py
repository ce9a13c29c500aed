"""Metric keys and ranges: tables and golden checks refuse values outside a key's range and unknown names."""

import json
from pathlib import Path

import pytest

from maskbench.benchmark.golden import check, load_golden, parse_tolerances
from maskbench.benchmark.metric_keys import COUNTS, FRACTIONS, KNOWN_METRICS, SCORES, is_known, value_problem
from maskbench.benchmark.tables import build_leaderboard, load_results, validate_results
from maskbench.errors import InputError
from maskbench.benchmark.tasks import TASKS

ROOT = Path(__file__).resolve().parents[2]


def test_every_key_the_project_writes_is_known():
    shipped = [json.loads(p.read_text()) for p in sorted((ROOT / "results").rglob("results.json"))]
    assert shipped
    for data in shipped:
        validate_results(data)  # the shipped results of real runs pass
    written = {k for data in shipped for e in data["results"] for k in e["metrics"]}
    declared = {k for name in TASKS.names() for k in (*TASKS.get(name).csv_keys, *TASKS.get(name).table_metrics)}
    assert written <= KNOWN_METRICS and all(is_known(k) for k in declared)  # declared: also IoU.<class>
    assert not (FRACTIONS & COUNTS or FRACTIONS & SCORES or COUNTS & SCORES)


@pytest.mark.parametrize("name,value,problem", [
    ("AP", 5.0, "metric 'AP' is 5.0; expected a fraction in [0, 1] (results store fractions, not percentages)"),
    ("FPR95", -0.01, "metric 'FPR95' is -0.01; expected a fraction in [0, 1]"),
    ("PQ_unk", 1.0000001, "metric 'PQ_unk' is 1.0000001; expected a fraction in [0, 1]"),
    ("images", 2.5, "metric 'images' is 2.5; expected a count (an integer >= 0)"),
    ("n_pixels", -1, "metric 'n_pixels' is -1; expected a count"),
    ("sIoU", True, "metric 'sIoU' is True; expected a finite number or null"),
    ("AUROC", "0.9", "metric 'AUROC' is '0.9'; expected a finite number or null"),
    ("ap", 0.5, "unknown metric 'ap' (did you mean AP?); known metrics: anomaly_IoU_t5, anomaly_IoU_t6, AP,"),
    ("IoU", 0.5, "metric 'IoU' is 0.5; expected a mapping {class name: fraction or null}"),
    ("IoU", {"road": 0.9, "car": 98.0}, "metric 'IoU.car' is 98.0; expected a fraction in [0, 1]"),
    ("IoU", {"": 0.5}, "metric 'IoU' is {'': 0.5}; expected a mapping"),
    ("IoU.road", 1.5, "metric 'IoU.road' is 1.5; expected a fraction in [0, 1]"),
    ("mIoU.road", 0.5, "unknown metric 'mIoU.road'"),
])
def test_values_outside_their_range(name, value, problem):
    assert value_problem(name, value).startswith(problem)


@pytest.mark.parametrize("name,value", [("AP", 0.0), ("AP", 1), ("F1", None), ("threshold", -3.75),
                                        ("threshold", 1e9), ("images", 40), ("n_positive", 0), ("mIoU", 0.8),
                                        ("iIoU", None), ("IoU", {"road": 0.98, "rider": None}), ("IoU.road", 0.5)])
def test_values_inside_their_range(name, value):
    assert value_problem(name, value) is None


def test_table_refuses_a_percentage_stored_as_a_fraction(results_dir, entry):
    d = results_dir("a", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.25),
                                    entry("rba", "fs-laf", "exact", AP=5.0)], protocol="exact")
    with pytest.raises(InputError) as err:
        load_results(d)
    assert str(err.value) == (f"{d / 'results.json'}: results[1] (rba/fs-laf): metric 'AP' is 5.0; expected a "
                              "fraction in [0, 1] (results store fractions, not percentages)")
    with pytest.raises(InputError, match=r"^metrics: unknown metric 'FPR'; known metrics: "):
        build_leaderboard([results_dir("b", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.25)],
                                       protocol="exact")], ["AP", "FPR"])


def test_check_refuses_unknown_tolerances_and_bad_golden_values(results_dir, entry, tmp_path):
    run_dir = results_dir("run", "smiyc-ra21", [entry("msp", "smiyc-ra21", "smiyc-anomaly", AP=0.2797)])
    with pytest.raises(InputError) as err:
        parse_tolerances(["foo=0.1"])
    assert str(err.value).startswith("tolerance 'foo=0.1': unknown metric 'foo'; known metrics: anomaly_IoU_t5")
    with pytest.raises(InputError, match=r"unknown metric 'fpr95' \(did you mean FPR95\?\)"):
        parse_tolerances(["fpr95=0.1"])
    assert parse_tolerances(["0.1", "threshold=1"]) == {"default": 0.1, "threshold": 1.0}
    path = tmp_path / "g.json"
    golden = {"scorer": "msp", "dataset": "smiyc-ra21", "protocol": "smiyc-anomaly", "metrics": {"AP": 27.97}}
    path.write_text(json.dumps({"maskbench_golden": 1, "tolerance": {}, "entries": [golden]}))
    with pytest.raises(InputError) as err:
        check(path, [run_dir])
    assert str(err.value) == (f"{path}: entries[0] msp/smiyc-ra21/smiyc-anomaly: metric 'AP' is 27.97; expected a "
                              "fraction in [0, 1] (results store fractions, not percentages)")
    golden["metrics"] = {"AP": 0.2797}
    path.write_text(json.dumps({"maskbench_golden": 1, "tolerance": {"AP_x": 0.1}, "entries": [golden]}))
    with pytest.raises(InputError, match=r"g\.json: \"tolerance\": unknown metric 'AP_x'; known metrics"):
        load_golden(path)
