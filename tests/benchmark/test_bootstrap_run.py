"""Bootstrap intervals and FPR95 rules through `bench run` and `bench evaluate`.

References: a literal re-evaluation of every replicate from its drawn frames (``default_rng(seed).integers(0, F,
size=(B, F))[b]`` over the frames in ``per_image.jsonl`` order; sklearn for AP / AUROC / the FPR95 rules, fresh
accumulators for the threshold and the components), ``numpy.percentile`` over the defined replicates, and the
engine (:func:`maskbench.metrics.bootstrap.bootstrap`) on the frames ordered by stem for `bench evaluate`.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from maskbench.benchmark.evaluate import evaluate_dirs
from maskbench.benchmark.replicates import read_replicates
from maskbench.benchmark.run import run_benchmark
from maskbench.cli import main
from maskbench.datasets.replica import make
from maskbench.errors import InputError
from maskbench.metrics.bootstrap import METRICS, bootstrap
from maskbench.metrics.components import ComponentAccumulator
from maskbench.metrics.pixel import PixelAccumulator


def fpr95_reference(y, s, rule):
    """Each rule as its reference computes it from sklearn's roc_curve (see maskbench.metrics.exact_curve)."""
    fpr, tpr, _ = roc_curve(y, s)  # drop_intermediate=True, sklearn's default
    full_fpr, full_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    if rule == "first_geq":
        return full_fpr[np.argmax(full_tpr >= 0.95)]
    if rule == "strict_dropint":
        return fpr[np.argmax(tpr > 0.95)]
    if rule == "first_geq_dropint":
        return fpr[np.argmax(tpr >= 0.95)]
    if rule == "maskomaly_tpr90":
        return fpr[np.argmax(tpr > 0.90)]
    if rule == "interp":  # tayden/ood-metrics fpr_at_95_tpr
        if np.all(tpr < 0.95):
            return 0.0
        if np.all(tpr >= 0.95):
            return np.min(fpr[tpr >= 0.95])
        return np.interp(0.95, tpr, fpr)
    assert rule == "closest"  # hendrycks fpr_and_fdr_at_recall: from full recall down, first minimum
    fp, tp = full_fpr[1:], full_tpr[1:]
    last = int(np.argmax(tp == 1.0))
    recall, fps = tp[last::-1], fp[last::-1]
    return fps[np.argmin(np.abs(recall - 0.95))]


def stored_frames(out, n):
    """``[(scores {scorer: full map, void 0}, labels)]`` of ``work/<index>.npz`` in index order."""
    frames = []
    for index in range(n):
        with np.load(out / "work" / f"{index:06d}.npz") as z:
            labels = z["ood"]
            roi = labels <= 1
            maps = {}
            for name in z.files:
                if name != "ood":
                    maps[name] = np.zeros(labels.shape, z[name].dtype)
                    maps[name][roi] = z[name]
        frames.append((maps, labels))
    return frames


def literal_replicates(frames, name, rule, track, n_rep, seed):
    """Every replicate of scorer ``name`` re-evaluated from its drawn frames."""
    draws = np.random.default_rng(seed).integers(0, len(frames), size=(n_rep, len(frames)))
    out = {m: np.full(n_rep, np.nan) for m in METRICS}
    for b in range(n_rep):
        drawn = [(frames[i][0][name], frames[i][1]) for i in draws[b]]
        y = np.concatenate([g[g <= 1] for _, g in drawn])
        s = np.concatenate([m[g <= 1] for m, g in drawn])
        if not y.any():
            continue
        out["AP"][b] = average_precision_score(y, s)
        if not y.all():
            out["AUROC"][b] = roc_auc_score(y, s)
            out["FPR95"][b] = fpr95_reference(y, s, rule)
        acc = PixelAccumulator("exact", fpr95_rule=rule)
        for m, g in drawn:
            acc.update(m, g)
        px = acc.compute()
        out["MDM_F1_60"][b], out["MDM_F1_70"][b] = (np.nan if v is None else v for v in (px.mdm_f1_60, px.mdm_f1_70))
        comp = ComponentAccumulator(px.threshold, track=track, score_dtype=np.float32)
        for m, g in drawn:
            comp.update(m, g)
        c = comp.compute()
        for key, v in (("sIoU", c.siou), ("PPV", c.ppv), ("F1", c.f1)):
            out[key][b] = np.nan if v is None else v
    return out


def interval(values, level=95.0):
    defined = values[~np.isnan(values)]
    bounds = list(np.percentile(defined, [50 - level / 2, 50 + level / 2])) if defined.size else [None, None]
    return bounds, int(values.size - defined.size)


@pytest.fixture(scope="module")
def six_frames(tmp_path_factory):
    return make("smiyc-ra21", tmp_path_factory.mktemp("six") / "r", frames=6, seed=3).root


def test_run_intervals_equal_a_literal_reevaluation(kit, tmp_path, six_frames):
    out = tmp_path / "out"
    n_rep, seed, level = 40, 5, 90.0
    results = run_benchmark(kit.config(out, root=six_frames, scorers=("msp", "rba"), protocol="exact",
                                       fpr95_rule="interp", bootstrap=n_rep, seed=seed, level=level, keep_work=True,
                                       workers=2),  # the passes and the replicates of the scorers in processes
                            kit.fake_forward, checkpoint=kit.checkpoint())
    assert results["run"]["bootstrap"] == {"replicates": n_rep, "seed": seed, "level": level,
                                           "frame_order": "per_image.jsonl order (frame index ascending)"}
    rows = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    frames = stored_frames(out, len(rows))
    ids, stored = read_replicates(out)
    assert ids == [r["id"] for r in rows]
    for entry in results["results"]:
        name = entry["scorer"]
        ref = literal_replicates(frames, name, "interp", "anomaly", n_rep, seed)
        for m in METRICS:
            np.testing.assert_allclose(stored[name].values[m], ref[m], rtol=1e-12, atol=0, err_msg=(name, m))
            ci = entry["ci"][m]
            (low, high), undefined = interval(ref[m], level)
            assert (ci["B"], ci["seed"], ci["level"], ci["undefined"]) == (n_rep, seed, level, undefined)
            assert (ci["low"], ci["high"]) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
        # the point values are those of the plain run: the FPR95 rule is sklearn's interp on the pooled frames
        y = np.concatenate([g[g <= 1] for _, g in frames])
        s = np.concatenate([f[name][g <= 1] for f, g in frames])
        assert entry["metrics"]["FPR95"] == pytest.approx(fpr95_reference(y, s, "interp"), rel=1e-12)
        assert entry["protocol_details"]["fpr95_rule"] == "interp"
    plain = run_benchmark(kit.config(tmp_path / "plain", root=six_frames, scorers=("msp", "rba"), protocol="exact",
                                     fpr95_rule="interp"), kit.fake_forward, checkpoint=kit.checkpoint())
    assert [{k: v for k, v in e.items() if k != "ci"} for e in kit.comparable(results)] == kit.comparable(plain)
    assert not (tmp_path / "plain" / "bootstrap.npz").exists() and "ci" not in plain["results"][0]


def test_resume_gives_the_intervals_of_an_uninterrupted_run(kit, tmp_path, six_frames):
    cfg = dict(root=six_frames, scorers=("msp", "eam"), bootstrap=30, seed=1)
    clean = run_benchmark(kit.config(tmp_path / "clean", **cfg), kit.fake_forward, checkpoint=kit.checkpoint())
    out = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(kit.config(out, **cfg), kit.CountingForward(fail_at=4), checkpoint=kit.checkpoint())
    with pytest.raises(InputError, match="different bootstrap"):  # the intervals of a run are fixed with it
        run_benchmark(kit.config(out, **{**cfg, "seed": 2}), kit.fake_forward, checkpoint=kit.checkpoint())
    resumed = run_benchmark(kit.config(out, **cfg), kit.fake_forward, checkpoint=kit.checkpoint())
    assert kit.comparable(resumed) == kit.comparable(clean)
    assert all(e["ci"]["AP"]["low"] is not None for e in resumed["results"])
    with np.load(out / "bootstrap.npz") as a, np.load(tmp_path / "clean" / "bootstrap.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_bootstrap_settings_are_checked(kit, tmp_path):
    for changes, message in [
        (dict(seed=3), "seed: only used with bootstrap"),
        (dict(bootstrap=0), "bootstrap 0: the number of replicates must be an integer >= 1"),
        (dict(bootstrap=10, level=100), "level 100: must be a percentage strictly between 0 and 100"),
        (dict(bootstrap=10, task="predict"), "bootstrap: task predict has no bootstrap intervals"),
    ]:
        with pytest.raises(InputError, match=message):
            run_benchmark(kit.config(tmp_path / "out", **changes), kit.fake_forward, checkpoint=kit.checkpoint())
    result = CliRunner().invoke(main, ["run", "--dataset", "smiyc-ra21", "--root", str(kit.replicas["smiyc-ra21"]),
                                       "--from-cache", str(tmp_path / "c"), "--out", str(tmp_path / "o"),
                                       "--level", "90"])
    assert result.exit_code == 1 and "--level: only used with --bootstrap (the number of replicates)" in result.output


def write_frames(root, frames):
    pred, gt = root / "pred", root / "gt"
    pred.mkdir(parents=True)
    gt.mkdir()
    for stem, (scores, labels) in frames.items():
        np.save(pred / f"{stem}.npy", scores)
        Image.fromarray(labels).save(gt / f"{stem}.png")
    return pred, gt


def frames_by_stem(seed):
    """Eight frames whose stems sort differently as strings and as numbers (f1, f10, f11, f2, ...)."""
    rng = np.random.default_rng(seed)
    frames = {}
    for i in (1, 2, 3, 10, 11, 20, 21, 100):
        labels = np.zeros((30, 40), np.uint8)
        if i % 3:
            r, c = rng.integers(0, 20, size=2)
            labels[r:r + 8, c:c + 12] = 1
        labels[rng.random(labels.shape) < 0.05] = 255
        scores = rng.random(labels.shape) * 0.7 + 0.35 * (labels == 1) * rng.random()
        frames[f"f{i}"] = (scores.astype(np.float32), labels)
    return frames


@pytest.mark.parametrize("rule", ["first_geq", "strict_dropint", "closest", "interp", "first_geq_dropint",
                                  "maskomaly_tpr90"])
def test_evaluate_fpr95_rules_equal_their_references(tmp_path, rule):
    frames = frames_by_stem(4)
    pred, gt = write_frames(tmp_path, frames)
    out = tmp_path / "m.json"
    result = CliRunner().invoke(main, ["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol", "exact",
                                       "--fpr95-rule", rule, "--json", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    y = np.concatenate([g[g <= 1] for _, g in frames.values()])
    s = np.concatenate([m[g <= 1] for m, g in frames.values()])
    assert got["FPR95"] == pytest.approx(fpr95_reference(y, s, rule), rel=1e-12)
    assert got["protocol_details"]["fpr95_rule"] == rule and f"FPR95 rule {rule}" in result.output
    assert "ci" not in got


def test_evaluate_intervals_equal_the_engine_on_stems_sorted_as_strings(tmp_path):
    frames = frames_by_stem(7)
    pred, gt = write_frames(tmp_path, frames)
    out = tmp_path / "m.json"
    result = CliRunner().invoke(main, ["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol",
                                       "exact16-obstacle", "--fpr95-rule", "maskomaly_tpr90", "--bootstrap", "60",
                                       "--seed", "9", "--level", "80", "--json", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    got = json.loads(out.read_text())
    ordered = [frames[stem] for stem in sorted(frames)]  # f1, f10, f100, f11, f2, ...
    engine = bootstrap(ordered, "exact16", track="obstacle", fpr95_rule="maskomaly_tpr90", n_replicates=60, seed=9)
    assert got["ci"] == engine.intervals(80.0)
    assert got["bootstrap"] == {"replicates": 60, "seed": 9, "level": 80.0,
                                "frame_order": "frame ids (stems) sorted as strings"}
    numeric = bootstrap([frames[f"f{i}"] for i in (1, 2, 3, 10, 11, 20, 21, 100)], "exact16", track="obstacle",
                        fpr95_rule="maskomaly_tpr90", n_replicates=60, seed=9)
    assert numeric.intervals(80.0) != got["ci"]  # the order matters, and it is the string order
    low, high = got["ci"]["AP"]["low"], got["ci"]["AP"]["high"]
    assert f"[{100 * low:.2f}, {100 * high:.2f}]" in result.output and "80% percentile bootstrap" in result.output
    assert evaluate_dirs(pred, gt, "exact16-obstacle", fpr95_rule="maskomaly_tpr90", bootstrap=60, seed=9,
                         level=80.0, workers=1) == got


def test_evaluate_refuses_rules_the_smiyc_protocols_do_not_define(tmp_path):
    pred, gt = write_frames(tmp_path, frames_by_stem(1))
    result = CliRunner().invoke(main, ["evaluate", "--pred", str(pred), "--gt", str(gt), "--protocol",
                                       "smiyc-obstacle", "--fpr95-rule", "interp"])
    assert result.exit_code == 1
    assert ("--fpr95-rule interp with protocol smiyc-obstacle: the SMIYC protocols define only first_geq"
            in result.output)
    helped = CliRunner().invoke(main, ["evaluate", "--help"]).output
    assert "maskomaly_tpr90" in helped and "Maskomaly's published 'FPR95' column" in " ".join(helped.split())
