"""Scorer plug-ins through `bench run` as a user runs them: a file, a module and an entry point beside the
built-ins, their hyperparameters and smoothing, run.json records, resume refusal, `bench scorers`, `bench check`.

References: every plug-in map is a literal float64 transcription of its formula on the fake forward's outputs
(Gaussian smoothing by scipy), and AP / AUROC of the stored scores come from sklearn.
"""

import hashlib
import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.ndimage import gaussian_filter
from sklearn.metrics import average_precision_score, roc_auc_score

from maskbench.benchmark.forward import open_source
from maskbench.benchmark.run import run_benchmark
from maskbench.cli import main
from maskbench.datasets import load_dataset
from maskbench.errors import InputError
from maskbench.scorers import _registry, plugins

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "my_scorer.py"

MODULE_PLUGIN = '''
import torch
from maskbench.scorers import register_scorer

def negmax(queries, *, offset: float = 0.0):
    "``negmax(x) = offset − max_k S_k(x)``."
    return lambda px: torch.neg(px.max_class_score, out=px.buffer("negmax")).add_(offset)

register_scorer("negmax", negmax)
'''

ENTRY_POINT_PLUGIN = '''
import torch
from maskbench.scorers import register_map_scorer

def mean_sigmoid(class_logits, mask_logits, *, scale: float = 1.0):
    "``scale · mean_q σ(M_q(x))`` (the logits come in the forward's dtype: float16 from a forward cache)."
    return torch.sigmoid(mask_logits.float()).mean(dim=0) * scale

register_map_scorer("ep_mean_sigmoid", mean_sigmoid)
'''


BUILT_INS = _registry._REGISTRY.copy()  # before any test registers anything


def reset_plugins(monkeypatch):
    """The built-in registry and an empty plug-in cache, as a new `bench` process has them."""
    monkeypatch.setattr(_registry, "_REGISTRY", BUILT_INS.copy())
    monkeypatch.setattr(_registry, "_PLUGIN_ERRORS", [])
    monkeypatch.setattr(_registry, "_entry_points_loaded", False)
    monkeypatch.setattr(plugins, "_LOADED", {})


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    reset_plugins(monkeypatch)
    yield
    for name in [m for m in sys.modules if m.startswith(("mb_run_", "maskbench_plugin_"))]:
        sys.modules.pop(name)


@pytest.fixture
def plugin_paths(tmp_path, monkeypatch):
    """A module plug-in on the path and an installed distribution with an entry point (one broken)."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "mb_run_mod.py").write_text(MODULE_PLUGIN)
    dist = mods / "mb_run_dist-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mb-run-dist\nVersion: 2.0\n")
    (dist / "entry_points.txt").write_text("[maskbench.scorers]\nmean = mb_run_ep\n")
    (mods / "mb_run_ep.py").write_text(ENTRY_POINT_PLUGIN)
    monkeypatch.syspath_prepend(str(mods))
    return mods


def literal_maps(class_logits, mask_logits):
    """float64 S_k(x) (K, H, W), σ(M) (Q, H, W) of one forward output."""
    c = class_logits.double().numpy()
    p = np.exp(c - c.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    sig = 1 / (1 + np.exp(-mask_logits.double().numpy()))
    return np.einsum("qk,qhw->khw", p[:, :-1], sig), sig


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_file_module_and_entry_point_plugins_through_bench_run(kit, tmp_path, plugin_paths):
    cache = tmp_path / "cache"
    run_benchmark(kit.config(tmp_path / "fill", cache=cache, scorers=("msp",)), kit.fake_forward,
                  checkpoint=kit.checkpoint())
    out = tmp_path / "out"
    result = invoke("run", "--plugin", EXAMPLE, "--plugin", "mb_run_mod",
                    "--scorer", "msp,mine,negmax,ep_mean_sigmoid,rba", "--param", "mine.temperature=0.5",
                    "--param", "negmax.offset=2", "--param", "ep_mean_sigmoid.scale=3",
                    "--param", "msp.smoothing=gaussian", "--dataset", "smiyc-ra21",
                    "--root", kit.replicas["smiyc-ra21"], "--from-cache", cache, "--protocol", "exact",
                    "--keep-work", "--bootstrap", 15, "--out", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    printed = {line.split()[0]: line for line in result.output.splitlines() if "|" in line and line.split()}
    for name in ("mine", "negmax", "ep_mean_sigmoid"):  # in the printed leaderboard beside the built-ins
        assert name in printed and printed[name].count("[") == 5  # with the intervals of the five metrics

    run = json.loads((out / "run.json").read_text())
    module = plugin_paths / "mb_run_mod.py"
    assert run["plugins"] == [
        {"spec": str(EXAMPLE), "kind": "file", "path": str(EXAMPLE), "scorers": ["mine"],
         "sha256": hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()},
        {"spec": "mb_run_mod", "kind": "module", "path": str(module), "scorers": ["negmax"],
         "sha256": hashlib.sha256(module.read_bytes()).hexdigest()}]
    sources = run["scorer_sources"]
    assert sources["msp"] == {"kind": "built-in", "module": "maskbench.scorers.msp"}
    assert sources["mine"]["kind"] == "plug-in file" and sources["mine"]["path"] == str(EXAMPLE)
    assert sources["negmax"]["kind"] == "plug-in module" and sources["negmax"]["spec"] == "mb_run_mod"
    assert sources["ep_mean_sigmoid"]["kind"] == "entry point"
    assert sources["ep_mean_sigmoid"]["distribution"] == "mb-run-dist 2.0"
    assert sources["ep_mean_sigmoid"]["sha256"] == hashlib.sha256(
        (plugin_paths / "mb_run_ep.py").read_bytes()).hexdigest()
    assert run["scorers"]["mine"] == {"temperature": 0.5} and run["scorers"]["negmax"] == {"offset": 2.0}
    assert run["scorers"]["ep_mean_sigmoid"] == {"scale": 3} and run["scorers"]["msp"] == {"smoothing": "gaussian"}

    # every stored score equals the literal formula on the (cached) forward outputs; AP / AUROC equal sklearn's
    ds = load_dataset("smiyc-ra21", kit.replicas["smiyc-ra21"])
    source = open_source(ds, from_cache=cache)
    pooled = {}
    for index, sample in enumerate(ds):
        s, sig = literal_maps(*source(sample.id, source.image_hash(sample.image), sample.image, "none"))
        literal = {"mine": -np.tanh(s / 0.5).sum(axis=0), "negmax": 2 - s.max(axis=0),
                   "ep_mean_sigmoid": 3 * sig.mean(axis=0),
                   "msp": gaussian_filter(1 - s.max(axis=0), 1.0, mode="mirror", truncate=3.0)}
        with np.load(out / "work" / f"{index:06d}.npz") as z:
            roi = z["ood"] <= 1
            for name, expected in literal.items():
                assert z[name].dtype == np.float32
                np.testing.assert_allclose(z[name], expected[roi], rtol=1e-5, atol=1e-5, err_msg=name)
            for name in literal:
                pooled.setdefault(name, []).append(z[name])
            pooled.setdefault("labels", []).append(z["ood"][roi])
    y = np.concatenate(pooled["labels"])
    entries = {e["scorer"]: e for e in json.loads((out / "results.json").read_text())["results"]}
    for name in ("mine", "negmax", "ep_mean_sigmoid", "msp"):
        scores = np.concatenate(pooled[name])
        assert entries[name]["metrics"]["AP"] == pytest.approx(average_precision_score(y, scores), rel=1e-12)
        assert entries[name]["metrics"]["AUROC"] == pytest.approx(roc_auc_score(y, scores), rel=1e-12)

    # golden checks key entries by scorer name: plug-ins included
    golden = tmp_path / "golden.json"
    assert invoke("check", "--golden", golden, out, "--update").exit_code == 0
    assert {e["scorer"] for e in json.loads(golden.read_text())["entries"]} >= {"mine", "negmax", "ep_mean_sigmoid"}
    checked = invoke("check", "--golden", golden, out)
    assert checked.exit_code == 0 and "OK: " in checked.output
    data = json.loads(golden.read_text())
    next(e for e in data["entries"] if e["scorer"] == "mine")["metrics"]["AP"] += 0.01
    golden.write_text(json.dumps(data))
    drifted = invoke("check", "--golden", golden, out)
    assert drifted.exit_code == 1 and "mine" in drifted.output


def test_plugin_errors_on_the_command_line(kit, tmp_path):
    common = ["--dataset", "smiyc-ra21", "--root", kit.replicas["smiyc-ra21"], "--from-cache", tmp_path / "c",
              "--out", tmp_path / "out"]
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('broken on purpose')\n")
    for args, message in [
        (["--plugin", broken, "--scorer", "msp"], f"plug-in {broken}: RuntimeError: broken on purpose"),
        (["--plugin", tmp_path / "missing.py", "--scorer", "msp"], "missing.py: file not found"),
        (["--plugin", EXAMPLE, "--scorer", "mine", "--param", "mine.temperature=-1"],
         "temperature must be a positive number"),
        (["--plugin", EXAMPLE, "--scorer", "mine", "--param", "mine.nosuch=1"], "unknown hyperparameter(s) ['nosuch']"),
    ]:
        result = invoke("run", *args, *common)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_changed_plugin_file_refuses_to_resume(kit, tmp_path, monkeypatch):
    plugin = tmp_path / "mine_copy.py"
    shutil.copy(EXAMPLE, plugin)
    out = tmp_path / "out"
    cfg = dict(scorers=("msp", "mine"), plugins=(str(plugin),))
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(kit.config(out, **cfg), kit.CountingForward(fail_at=2), checkpoint=kit.checkpoint())
    plugin.write_text(plugin.read_text() + "\n# edited\n")
    reset_plugins(monkeypatch)
    with pytest.raises(InputError, match="different plugins, scorer_sources"):
        run_benchmark(kit.config(out, **cfg), kit.fake_forward, checkpoint=kit.checkpoint())
    shutil.copy(EXAMPLE, plugin)  # the same file again: the run resumes
    reset_plugins(monkeypatch)
    again = kit.CountingForward()
    resumed = run_benchmark(kit.config(out, **cfg), again, checkpoint=kit.checkpoint())
    assert again.calls == 2 and [e["scorer"] for e in resumed["results"]] == ["msp", "mine"]


def test_bench_scorers_lists_every_scorer(tmp_path, plugin_paths, monkeypatch):
    result = invoke("scorers", "--plugin", EXAMPLE, "--plugin", "mb_run_mod")
    assert result.exit_code == 0, result.output
    text = result.output
    sha = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    for line in ["msp (per-pixel): no hyperparameters", "    from: built-in maskbench.scorers.msp",
                 "maskomaly (per-pixel): accept=(49, 31, 83, 32), ground=(19, 24), lam=0.6, t_mask=0.7, t_border=0.1",
                 "uno (per-pixel): negative=None",
                 "mine (per-pixel): temperature=1.0",
                 "    ``mine(x) = −Σ_k tanh(S_k(x) / T)``: RbA (Nayal et al., ICCV'23) with a temperature ``T`` "
                 "(T = 1: RbA).",
                 f"    from: plug-in file {EXAMPLE} (sha256 {sha})",
                 "negmax (per-pixel): offset=0.0", "    ``negmax(x) = offset − max_k S_k(x)``.",
                 "ep_mean_sigmoid (map): scale=1.0"]:
        assert line in text.splitlines(), line
    listed = json.loads(invoke("scorers", "--plugin", EXAMPLE, "--json").output)
    mine = next(s for s in listed["scorers"] if s["name"] == "mine")
    assert mine["params"] == {"temperature": 1.0} and mine["source"]["sha256"] == sha
    assert listed["failed_plugins"] == []

    (plugin_paths / "mb_run_dist-2.0.dist-info" / "entry_points.txt").write_text(
        "[maskbench.scorers]\nmean = mb_run_ep\nbad = mb_run_missing_module\n")
    reset_plugins(monkeypatch)  # a new process
    failed = invoke("scorers")
    assert failed.exit_code == 1
    assert "FAILED plug-in bad (mb_run_missing_module): ModuleNotFoundError" in failed.output
    assert "plug-in(s) failed to load: bad (mb_run_missing_module)" in failed.output
    broken = tmp_path / "broken.py"
    broken.write_text("import nonexistent_dependency_xyz\n")
    result = invoke("scorers", "--plugin", broken)
    assert result.exit_code == 1 and f"plug-in {broken}: ModuleNotFoundError" in result.output


def test_embedded_run_takes_plugins_params_and_bootstrap(tmp_path):
    out = tmp_path / "embedded"
    result = invoke("run", "--plugin", EXAMPLE, "--scorer", "msp,mine", "--param", "mine.temperature=0.5",
                    "--limit", 1, "--bootstrap", 20, "--seed", 3, "--out", out, "--workers", 1)
    assert result.exit_code == 0, result.output
    for track in ("anomaly", "obstacle"):
        run = json.loads((out / track / "run.json").read_text())
        assert run["scorers"]["mine"] == {"temperature": 0.5} and run["plugins"][0]["scorers"] == ["mine"]
        assert run["bootstrap"] == {"replicates": 20, "seed": 3, "level": 95.0,
                                    "frame_order": "per_image.jsonl order (frame index ascending)"}
        entries = json.loads((out / track / "results.json").read_text())["results"]
        assert [e["scorer"] for e in entries] == ["msp", "mine"]
        assert all(e["ci"]["AP"]["B"] == 20 and e["ci"]["AP"]["seed"] == 3 for e in entries)
    board = (out / "leaderboard.txt").read_text()
    mine = next(line for line in board.splitlines() if line.startswith("mine"))
    ap = entries[1]["metrics"]["AP"]
    low, high = entries[1]["ci"]["AP"]["low"], entries[1]["ci"]["AP"]["high"]
    assert f"{100 * ap:.1f}" in mine and f"[{100 * low:.1f}, {100 * high:.1f}]" in mine
    assert "95% percentile bootstrap interval" in board and "B = 20, seed 3" in board
    assert "<metric>" not in (out / "leaderboard.csv").read_text() and "AP.low" in (out / "leaderboard.csv").read_text()


def test_calibrate_loads_and_records_plugins(kit, tmp_path):
    from maskbench.benchmark.calibrate import CalibrateConfig, calibrate_checkpoint

    config = CalibrateConfig(dataset="smiyc-ra21", root=kit.replicas["smiyc-ra21"], out=tmp_path / "cal",
                             plugins=(str(EXAMPLE),), street_classes=tuple(range(19)))  # fake forward: any class
    record = calibrate_checkpoint(config, kit.fake_forward, checkpoint=kit.checkpoint())
    assert record["plugins"] == [{"spec": str(EXAMPLE), "kind": "file", "path": str(EXAMPLE), "scorers": ["mine"],
                                  "sha256": hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()}]
    broken = tmp_path / "broken.py"
    broken.write_text("raise ValueError('no')\n")
    result = invoke("calibrate", "maskomaly", "--plugin", broken, "--dataset", "smiyc-ra21", "--root",
                    kit.replicas["smiyc-ra21"], "--out", tmp_path / "x")
    assert result.exit_code == 1 and f"plug-in {broken}: ValueError: no" in result.output
