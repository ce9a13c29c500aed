"""torchrun with 2 CPU processes (gloo): frames sharded across ranks, accumulators merged exactly."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from maskbench.benchmark.run import run_benchmark

SCRIPT = textwrap.dedent("""
    import importlib.util, json, os, sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("bench_conftest", sys.argv[1])
    kit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit)
    from maskbench.benchmark.run import run_benchmark
    replicas = {"smiyc-ra21": Path(sys.argv[2])}
    config = kit.config(replicas, Path(sys.argv[3]), scorers=("msp", "rba", "maskomaly"))
    results = run_benchmark(config, kit.fake_forward, checkpoint=dict(kit.FAKE_CHECKPOINT))
    Path(sys.argv[3], f"rank{os.environ['RANK']}.json").write_text(json.dumps(results["results"]))
""")


def _rows(out):
    rows = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("seconds")
    return rows


def test_torchrun_two_processes_equal_one(kit, tmp_path):
    script = tmp_path / "two_ranks.py"
    script.write_text(SCRIPT)
    conftest = Path(__file__).with_name("conftest.py")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    out = tmp_path / "two"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(conftest), str(kit.replicas["smiyc-ra21"]), str(out)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = run_benchmark(kit.config(tmp_path / "one", scorers=("msp", "rba", "maskomaly")), kit.fake_forward,
                           checkpoint=kit.checkpoint())
    two = json.loads((out / "results.json").read_text())
    assert two["run"]["world_size"] == 2
    assert two["results"] == kit.comparable(single)
    assert all(e["metrics"]["sIoU"] is not None for e in two["results"])  # both passes ran
    for rank in (0, 1):  # every rank returns the merged results
        assert json.loads((out / f"rank{rank}.json").read_text()) == kit.comparable(single)
    assert _rows(out) == _rows(tmp_path / "one")
    assert not (out / "work").exists()
