"""torchrun with 2 CPU processes (gloo): frames sharded across ranks, accumulators merged exactly; every rank loads
the scorer plug-ins, and the bootstrap intervals (frames in per_image order) equal a single process's."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from maskbench.benchmark.run import run_benchmark
from maskbench.scorers import _registry, plugins

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "my_scorer.py"
SCORERS = ("msp", "rba", "maskomaly", "mine")

SCRIPT = textwrap.dedent("""
    import importlib.util, json, os, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("bench_conftest", sys.argv[1])
    kit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit)
    from maskbench.benchmark.run import run_benchmark
    replicas = {"smiyc-ra21": Path(sys.argv[2])}
    config = kit.config(replicas, Path(sys.argv[3]), scorers=("msp", "rba", "maskomaly", "mine"),
                        plugins=(sys.argv[4],), bootstrap=25, seed=4)
    results = run_benchmark(config, kit.fake_forward, checkpoint=dict(kit.FAKE_CHECKPOINT))
    Path(sys.argv[3], f"rank{os.environ['RANK']}.json").write_text(json.dumps(results["results"]))
""")


def _rows(out):
    rows = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("seconds")
    return rows


def test_torchrun_two_processes_equal_one(kit, tmp_path, monkeypatch):
    monkeypatch.setattr(_registry, "_REGISTRY", _registry._REGISTRY.copy())  # the plug-in stays in this test
    monkeypatch.setattr(plugins, "_LOADED", {})
    script = tmp_path / "two_ranks.py"
    script.write_text(SCRIPT)
    conftest = Path(__file__).with_name("conftest.py")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    out = tmp_path / "two"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(conftest), str(kit.replicas["smiyc-ra21"]), str(out), str(PLUGIN)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = run_benchmark(kit.config(tmp_path / "one", scorers=SCORERS, plugins=(str(PLUGIN),), bootstrap=25, seed=4),
                           kit.fake_forward, checkpoint=kit.checkpoint())
    two = json.loads((out / "results.json").read_text())
    assert two["run"]["world_size"] == 2
    assert two["results"] == kit.comparable(single)
    assert all(e["metrics"]["sIoU"] is not None for e in two["results"])  # both passes ran
    assert [e["scorer"] for e in two["results"]] == list(SCORERS) and two["run"]["plugins"][0]["scorers"] == ["mine"]
    assert all(e["ci"]["sIoU"]["low"] is not None for e in two["results"])
    with np.load(out / "bootstrap.npz") as a, np.load(tmp_path / "one" / "bootstrap.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for rank in (0, 1):  # every rank returns the merged results
        assert json.loads((out / f"rank{rank}.json").read_text()) == kit.comparable(single)
    assert _rows(out) == _rows(tmp_path / "one")
    assert not (out / "work").exists()
