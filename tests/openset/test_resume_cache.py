"""The open-set tasks get the runner's resume, forward cache and torchrun sharding: a SIGKILLed open-semantic run
resumes to the same results, runs from the cache equal the runs that filled it, two torchrun ranks equal one."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from maskbench.benchmark.run import RunConfig, run_benchmark

ROOT = Path(__file__).resolve().parents[2]
BENCH_CONFTEST = ROOT / "tests" / "benchmark" / "conftest.py"
_spec = importlib.util.spec_from_file_location("bench_conftest", BENCH_CONFTEST)
kit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kit)

SCORERS = ("msp", "rba", "eam")
#: The runner of a subprocess: the fake forward of tests/benchmark (a fixed function of the image), hanging from
#: call ``argv[4]`` on (argv[4] = 0: never), one thread.
SCRIPT = textwrap.dedent("""
    import importlib.util, json, os, sys, time
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("bench_conftest", sys.argv[1])
    kit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit)
    from maskbench.benchmark.run import RunConfig, run_benchmark
    hang_at, calls = int(sys.argv[4]), [0]

    def forward(image):
        calls[0] += 1
        if hang_at and calls[0] >= hang_at:
            time.sleep(600)
        return kit.fake_forward(image)

    config = RunConfig(task="open-semantic", dataset="streethazards", root=Path(sys.argv[2]), out=Path(sys.argv[3]),
                       scorers=("msp", "rba", "eam"), fpr95_rule="strict_dropint", workers=1, command=["test"])
    results = run_benchmark(config, forward, checkpoint=dict(kit.FAKE_CHECKPOINT))
    Path(sys.argv[3], f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(results["results"]))
""")



def semantic(root, out, **changes):
    return RunConfig(task="open-semantic", dataset="streethazards", root=root, out=out, scorers=SCORERS,
                     fpr95_rule="strict_dropint", workers=1, command=["test"], **changes)


def rows(out):
    lines = [json.loads(line) for line in (out / "per_image.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in lines]


def subprocess_env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1")


def test_sigkilled_open_semantic_run_resumes_to_the_same_results(streethazards, tmp_path, one_thread):
    clean = run_benchmark(semantic(streethazards.root, tmp_path / "clean"), kit.fake_forward,
                          checkpoint=kit.FAKE_CHECKPOINT)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(BENCH_CONFTEST), str(streethazards.root), str(out), "3"],
                            env=subprocess_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not ((out / "per_image.jsonl").is_file() and len((out / "per_image.jsonl").read_text().splitlines()) >= 2):
            assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
            assert time.monotonic() < deadline, "the subprocess did not store two frames in time"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)  # while the third frame's forward hangs
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((out / "run.json").read_text())["finished"] is None and not (out / "results.json").exists()

    again = kit.CountingForward()
    resumed = run_benchmark(semantic(streethazards.root, out), again, checkpoint=kit.FAKE_CHECKPOINT)
    assert again.calls == len(streethazards) - 2  # only the frames not stored before the kill
    assert kit.comparable(resumed) == kit.comparable(clean)
    assert rows(out) == rows(tmp_path / "clean")
    assert not (out / "work").exists()


def test_open_semantic_from_cache_equals_the_run_that_filled_it(streethazards, tmp_path):
    cache = tmp_path / "cache"
    counting = kit.CountingForward()
    filled = run_benchmark(semantic(streethazards.root, tmp_path / "fill", cache=cache, tta="flip"), counting,
                           checkpoint=kit.FAKE_CHECKPOINT)
    assert counting.calls == 2 * len(streethazards)  # two views per frame
    replay = run_benchmark(semantic(streethazards.root, tmp_path / "replay", from_cache=cache, tta="flip"),
                           kit.never_called)
    assert kit.comparable(replay) == kit.comparable(filled)
    assert replay["run"]["source"] == "cache" and replay["run"]["checkpoint"]["sha256"] == "f" * 64
    assert rows(tmp_path / "replay") == rows(tmp_path / "fill")


def test_open_panoptic_from_cache_and_resume(coco, panoptic_oracle, tmp_path):
    forward = panoptic_oracle(coco)

    def config(out, **changes):
        return RunConfig(task="open-panoptic", dataset="coco-open-panoptic", root=coco.root,
                         dataset_options={"split": "K20"}, scorers=("msp",), out=out, workers=1, command=["test"],
                         task_options={"min_pixels": 20}, **changes)

    cache = tmp_path / "cache"
    filled = run_benchmark(config(tmp_path / "fill", cache=cache), forward, checkpoint=kit.FAKE_CHECKPOINT)
    replay = run_benchmark(config(tmp_path / "replay", from_cache=cache), kit.never_called)
    strip = lambda results: [{**e, "protocol_details": {k: v for k, v in e["protocol_details"].items()  # noqa: E731
                                                          if not k.endswith(("_json", "_dir"))}}
                             for e in kit.comparable(results)]
    assert strip(replay) == strip(filled)
    assert [json.loads(p.read_text()) for p in sorted((tmp_path / "replay" / "panoptic").glob("*.json"))] == \
           [json.loads(p.read_text()) for p in sorted((tmp_path / "fill" / "panoptic").glob("*.json"))]

    # interrupted after the calibration frame and one evaluated frame, resumed: one forward for the calibration
    # frame (begin), one for the frame in flight; the same results as an uninterrupted run (both without cache)
    clean = run_benchmark(config(tmp_path / "clean"), forward, checkpoint=kit.FAKE_CHECKPOINT)
    out = tmp_path / "crashed"

    class Crashing:
        def __init__(self, fail_at=None):
            self.calls, self.fail_at = 0, fail_at

        def __call__(self, image):
            self.calls += 1
            if self.calls == self.fail_at:
                raise KeyboardInterrupt("simulated crash")
            return forward(image)

    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config(out), Crashing(fail_at=3), checkpoint=kit.FAKE_CHECKPOINT)
    again = Crashing()
    resumed = run_benchmark(config(out), again, checkpoint=kit.FAKE_CHECKPOINT)
    assert again.calls == 2
    assert strip(resumed) == strip(clean)


def test_torchrun_two_processes_equal_one_on_open_semantic(streethazards, tmp_path, one_thread):
    script = tmp_path / "two_ranks.py"
    script.write_text(SCRIPT)
    out = tmp_path / "two"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(BENCH_CONFTEST), str(streethazards.root), str(out), "0"],
        env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = run_benchmark(semantic(streethazards.root, tmp_path / "one"), kit.fake_forward,
                           checkpoint=kit.FAKE_CHECKPOINT)
    two = json.loads((out / "results.json").read_text())
    assert two["run"]["world_size"] == 2
    assert two["results"] == kit.comparable(single)
    assert all(e["metrics"]["open_mIoU"] is not None for e in two["results"])  # both towns, both passes ran
    for rank in (0, 1):  # every rank returns the merged results
        assert json.loads((out / f"rank{rank}.json").read_text()) == kit.comparable(single)
    assert rows(out) == rows(tmp_path / "one")
