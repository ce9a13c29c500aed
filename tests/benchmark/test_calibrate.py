"""`bench calibrate maskomaly` and `bench run --calibration`.

The oracle forward below knows each replica frame's labels and builds mask logits by hand, so the fitted ids are
known in advance: queries 7 and 42 cover the anomalies (42 exactly, 7 also the void pixels, which do not count:
both IoU 1, the tie goes to the lower id), query 3 covers them with probability 0.85 < t_bin (IoU 0); queries 88
(the whole street) and 5 (its lower half) predict road below mid-height, off the anomalies; query 60 covers the
other inlier pixels (class 2), the remaining queries are off and predict void.
"""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from maskbench.benchmark.cache import image_sha256
from maskbench.benchmark.calibrate import PUBLISHED_NOTE, CalibrateConfig, calibrate_checkpoint
from maskbench.benchmark.run import run_benchmark
from maskbench.benchmark.summary import run_summary
from maskbench.cli import main
from maskbench.datasets import load_dataset
from maskbench.errors import InputError
from maskbench.model import Predictor, load_model

QUERIES, CLASSES, ON, OFF = 100, 20, 12.0, -12.0
ACCEPT, GROUND = [7, 42], [88, 5]
ORACLE = {"path": "oracle-forward", "sha256": "a" * 64, "config": {"fake": True}}


class OracleForward:
    """Mask logits drawn from the labels of the frame (looked up by the image's sha256)."""

    def __init__(self, root):
        self.labels = {image_sha256(s.image): s.ood for s in load_dataset("smiyc-ra21", root)}
        self.calls = 0

    def __call__(self, image):
        self.calls += 1
        ood = torch.from_numpy(self.labels[image_sha256(image)].copy())
        h, w = ood.shape
        rows = torch.arange(h)[:, None].expand(h, w)
        anomaly, void, inlier = ood == 1, ood == 255, ood == 0
        masks = torch.full((QUERIES, h, w), OFF)
        on = lambda region: torch.where(region, torch.tensor(ON), torch.tensor(OFF))  # noqa: E731
        masks[42] = on(anomaly)
        masks[7] = on(anomaly | void)
        masks[3] = torch.where(anomaly, torch.tensor(float(np.log(0.85 / 0.15))), torch.tensor(OFF))
        masks[88] = on((rows >= h // 2) & ~anomaly)
        masks[5] = on((rows >= 3 * h // 4) & ~anomaly)
        masks[60] = on((rows < h // 2) & inlier)
        classes = torch.zeros(QUERIES, CLASSES)
        classes[:, CLASSES - 1] = ON  # void
        for q, k in ((42, 8), (7, 8), (3, 2), (88, 0), (5, 0), (60, 2)):
            classes[q] = 0.0
            classes[q, k] = ON
        return classes, masks


@pytest.fixture(scope="module")
def oracle(replicas):
    return OracleForward(replicas["smiyc-ra21"])


def fit(replicas, out, oracle, **changes):
    config = CalibrateConfig(dataset="smiyc-ra21", root=replicas["smiyc-ra21"], out=out, command=["test"], **changes)
    return calibrate_checkpoint(config, oracle, checkpoint=dict(ORACLE))


def test_calibration_finds_the_constructed_queries(replicas, tmp_path, oracle):
    record = fit(replicas, tmp_path, oracle)
    assert record["accept"] == ACCEPT and record["ground"] == GROUND
    iou = record["per_query_iou"]
    assert len(iou) == QUERIES and iou[7] == iou[42] == 1.0 and iou[3] == 0.0
    assert all(iou[q] == 0.0 for q in range(QUERIES) if q not in (7, 42))
    street = record["per_query_street_iou"]
    assert street[88] == 1.0 and 0.25 < street[5] < 1.0
    assert record["frames"] == 3 and record["images_with_anomalies"] == 3 and record["t_iou"] == 0.25
    assert record["checkpoint"] == {"path": ORACLE["path"], "sha256": ORACLE["sha256"]}
    assert record["dataset"]["name"] == "smiyc-ra21" and record["dataset"]["info"]["official_count"]
    assert set(record["versions"]) >= {"python", "torch", "numpy"} and record["command"] == ["test"]
    assert json.loads((tmp_path / "calibration.json").read_text()) == record


def test_calibration_limit_and_t_iou(replicas, tmp_path, oracle):
    record = fit(replicas, tmp_path, oracle, limit=1, t_iou=1.0)
    assert record["frames"] == 1 and record["accept"] == [] and record["ground"] == []  # IoU 1 is not > 1


def test_calibration_bad_input(kit, tmp_path):
    """A split without anomaly labels (the Cityscapes replica: 0 / 255 only) cannot rank accept queries."""
    from maskbench.datasets.replica import make

    root = make("cityscapes", tmp_path / "cs", frames=2, seed=0).root
    config = CalibrateConfig(dataset="cityscapes", root=root, out=tmp_path / "out", command=["test"])
    with pytest.raises(InputError, match="^dataset cityscapes: ood_gt: no image has anomaly pixels"):
        calibrate_checkpoint(config, kit.fake_forward, checkpoint=dict(ORACLE))
    assert not (tmp_path / "out" / "calibration.json").exists()
    bad_limit = CalibrateConfig(dataset="smiyc-ra21", root=kit.replicas["smiyc-ra21"], out=tmp_path, limit=0)
    with pytest.raises(InputError, match="^limit 0"):
        calibrate_checkpoint(bad_limit, kit.fake_forward, checkpoint=dict(ORACLE))
    result = CliRunner().invoke(main, ["calibrate", "maskomaly", "--dataset", "smiyc-ra21", "--root",
                                       str(kit.replicas["smiyc-ra21"]), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "--checkpoint: required" in result.output and "Traceback" not in result.output


def test_cli_writes_calibration_from_cache(replicas, tmp_path, oracle):
    cache = tmp_path / "cache"
    fit(replicas, tmp_path / "fill", oracle, cache=cache)  # the oracle's outputs, cached as `bench run --cache` does
    result = CliRunner().invoke(main, ["calibrate", "maskomaly", "--dataset", "smiyc-ra21", "--root",
                                       str(replicas["smiyc-ra21"]), "--from-cache", str(cache), "--out",
                                       str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "cli" / "calibration.json").read_text())
    assert record["accept"] == ACCEPT and record["ground"] == GROUND and record["source"] == "cache"
    assert record["checkpoint"]["sha256"] == ORACLE["sha256"]
    assert "accept (mean IoU > 0.25 with anomalies): 7 (1.000), 42 (1.000)" in result.output


def test_run_uses_calibration_and_rejects_another_checkpoint(kit, replicas, tmp_path, oracle):
    fit(replicas, tmp_path / "cal", oracle)
    calibration = tmp_path / "cal" / "calibration.json"
    scorers = ("msp", "maskomaly", "maskomaly_reject", "maskomaly_accept")
    results = run_benchmark(kit.config(tmp_path / "run", scorers=scorers, calibration=calibration), oracle,
                            checkpoint=dict(ORACLE))
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["scorers"]["maskomaly"]["accept"] == ACCEPT and run["scorers"]["maskomaly"]["ground"] == GROUND
    assert run["scorers"]["maskomaly_reject"]["ground"] == GROUND
    assert run["scorers"]["maskomaly_accept"]["accept"] == ACCEPT
    assert run["calibration"]["path"] == str(calibration)
    assert all("maskomaly.accept" not in e["notes"] for e in results["results"])
    assert "WARNING" not in run_summary(results)
    # the fitted accept queries are exactly the anomalies: Acc = 1 there, 0 elsewhere -> AP 1
    accept_entry = next(e for e in results["results"] if e["scorer"] == "maskomaly_accept")
    assert accept_entry["metrics"]["AP"] == pytest.approx(1.0)

    other = dict(ORACLE, sha256="b" * 64, path="other.pth")
    with pytest.raises(InputError, match=f"{'a' * 64}.*other.pth \\(sha256 {'b' * 64}\\)"):
        run_benchmark(kit.config(tmp_path / "other", scorers=scorers, calibration=calibration), oracle,
                      checkpoint=other)
    with pytest.raises(InputError, match="give one"):
        run_benchmark(kit.config(tmp_path / "both", scorers=scorers, calibration=calibration,
                                 scorer_params={"maskomaly": {"accept": [1]}}), oracle, checkpoint=dict(ORACLE))
    with pytest.raises(InputError, match="none of which is in scorers msp"):
        run_benchmark(kit.config(tmp_path / "msp", scorers=("msp",), calibration=calibration), oracle,
                      checkpoint=dict(ORACLE))


def test_cli_run_rejects_mismatched_calibration(replicas, tmp_path, oracle):
    cache = tmp_path / "cache"
    fit(replicas, tmp_path / "cal", oracle, cache=cache)
    record = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    record["checkpoint"] = {"path": "swin_l.pkl", "sha256": "c" * 64}
    (tmp_path / "wrong.json").write_text(json.dumps(record))
    args = ["run", "--scorer", "maskomaly", "--dataset", "smiyc-ra21", "--root", str(replicas["smiyc-ra21"]),
            "--from-cache", str(cache), "--workers", "1"]
    wrong = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "wrong"), "--calibration",
                                      str(tmp_path / "wrong.json")])
    assert wrong.exit_code == 1 and "c" * 64 in wrong.output and "a" * 64 in wrong.output
    assert "Traceback" not in wrong.output and not (tmp_path / "wrong" / "run.json").exists()
    ok = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "ok"), "--calibration",
                                   str(tmp_path / "cal" / "calibration.json")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "ok" / "run.json").read_text())["scorers"]["maskomaly"]["accept"] == ACCEPT


def test_run_without_calibration_warns_about_published_ids(kit, tmp_path, oracle):
    results = run_benchmark(kit.config(tmp_path / "run", scorers=("maskomaly", "maskomaly_accept", "msp")), oracle,
                            checkpoint=dict(ORACLE))
    notes = {e["scorer"]: e["notes"] for e in results["results"]}
    assert notes["maskomaly"]["maskomaly.accept"] == PUBLISHED_NOTE
    assert notes["maskomaly"]["maskomaly.ground"] == PUBLISHED_NOTE
    assert notes["maskomaly_accept"]["maskomaly.accept"] == PUBLISHED_NOTE and "maskomaly.accept" not in notes["msp"]
    summary = run_summary(results)
    assert "WARNING: maskomaly uses the published Swin-L Cityscapes query ids (accept, ground)" in summary
    # ids chosen explicitly are the user's: no note
    chosen = run_benchmark(kit.config(tmp_path / "chosen", scorers=("maskomaly_accept",),
                                      scorer_params={"maskomaly_accept": {"accept": [42]}}), oracle,
                           checkpoint=dict(ORACLE))
    assert "maskomaly.accept" not in chosen["results"][0]["notes"] and "WARNING" not in run_summary(chosen)


def test_tiny_checkpoint_end_to_end(kit, tmp_path, tiny_checkpoint):
    """Random-weight checkpoint: calibrate through load_model/Predictor vs a literal per-query IoU, then run with it."""
    root = kit.replicas["smiyc-ra21"]
    model, _ = load_model(tiny_checkpoint)
    predictor = Predictor(model, resize="native")
    frames = [(predictor(s.image).mask_logits.sigmoid().numpy(), s.ood) for s in load_dataset("smiyc-ra21", root)]
    t_bin = float(np.median(frames[0][0]))  # random weights: binarise where some masks are on
    sums, street_sums = np.zeros(7), np.zeros(7)
    for probs, ood in frames:
        valid, gt = ood != 255, ood == 1
        for q in range(7):
            b = (probs[q] > t_bin) & valid
            union = (b | gt).sum()
            sums[q] += (b & gt).sum() / union if union else 0.0
            street_sums[q] += b.sum() / valid.sum()  # every class is street: the street is every pixel
    n = len(frames)
    cal = CliRunner().invoke(main, ["calibrate", "maskomaly", "--checkpoint", str(tiny_checkpoint), "--dataset",
                                    "smiyc-ra21", "--root", str(root), "--out", str(tmp_path / "res"),
                                    f"--t-bin={t_bin}", *(f"--street-class={k}" for k in range(19))])
    assert cal.exit_code == 0, cal.output
    record = json.loads((tmp_path / "res" / "calibration.json").read_text())
    np.testing.assert_allclose(record["per_query_iou"], sums / n, rtol=0, atol=1e-12)
    expected = [q for q in sorted(range(7), key=lambda q: (-sums[q], q)) if sums[q] / n > 0.25]
    assert record["accept"] == expected and record["t_bin"] == t_bin
    np.testing.assert_allclose(record["per_query_street_iou"], street_sums / n, rtol=0, atol=1e-12)
    assert record["ground"] == [q for q in sorted(range(7), key=lambda q: (-street_sums[q], q))
                                if street_sums[q] / n > 0.25 and q not in expected]
    assert record["ground"]  # some random masks cover more than a quarter of the image
    assert record["street_classes"] == list(range(19))

    run = CliRunner().invoke(main, ["run", "--scorer", "maskomaly", "--dataset", "smiyc-ra21", "--root", str(root),
                                    "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "res"),
                                    "--workers", "1", "--calibration", str(tmp_path / "res" / "calibration.json")])
    assert run.exit_code == 0, run.output
    params = json.loads((tmp_path / "res" / "run.json").read_text())["scorers"]["maskomaly"]
    assert params["accept"] == record["accept"] and params["ground"] == record["ground"]
    assert "WARNING" not in run.output


def test_published_ids_are_not_flagged_on_the_published_checkpoint():
    import dataclasses

    from maskbench.benchmark.calibrate import maskomaly_ids
    from maskbench.model import Mask2FormerConfig

    def notes(scorers, params, record):
        return maskomaly_ids(scorers, params, params, None, record)[2]

    swin_l = dataclasses.asdict(Mask2FormerConfig(backbone="swin"))  # Swin-L, 19 classes, 100 queries, 9 layers
    published = {"path": "/ckpt/model_final_17c1ee.pkl", "sha256": "d" * 64, "config": swin_l}
    assert notes(("maskomaly", "msp"), {}, published) == {}
    renamed = dict(published, path="/ckpt/swin_l.pkl")
    other_arch = dict(published, config=dict(swin_l, num_queries=200))
    for record in (renamed, other_arch):
        assert notes(("maskomaly", "msp"), {}, record) == {
            "maskomaly": {"maskomaly.accept": PUBLISHED_NOTE, "maskomaly.ground": PUBLISHED_NOTE}}
    assert notes(("maskomaly_reject",), {"maskomaly_reject": {"ground": [1]}}, renamed) == {}