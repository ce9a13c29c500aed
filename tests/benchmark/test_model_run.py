"""`bench run` through a real (random-weight, tiny) Mask2Former checkpoint: single process vs `bench evaluate` on
maps from the Predictor, and `torchrun -m maskbench run` with 2 CPU processes giving the same results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from maskbench.benchmark.evaluate import evaluate_dirs
from maskbench.cli import main
from maskbench.datasets import load_dataset
from maskbench.model import Predictor, load_model
from maskbench.scorers import get_scorer

SCORERS = ("msp", "rba", "eam", "aem", "mask2anomaly")  # maskomaly's default query ids need 100 queries



def run_args(kit, checkpoint, out):
    return ["run", "--scorer", ",".join(SCORERS), "--dataset", "smiyc-ra21", "--root", str(kit.replicas["smiyc-ra21"]),
            "--checkpoint", str(checkpoint), "--out", str(out), "--workers", "1"]


def test_checkpoint_run_matches_evaluate_and_torchrun(kit, tmp_path, tiny_checkpoint, one_thread):
    single = tmp_path / "single"
    result = CliRunner().invoke(main, run_args(kit, tiny_checkpoint, single))
    assert result.exit_code == 0, result.output
    stored = json.loads((single / "results.json").read_text())
    assert stored["run"]["checkpoint"]["config"]["num_queries"] == 7
    assert len(stored["run"]["checkpoint"]["sha256"]) == 64

    # independent path: Predictor + each scorer alone, maps written for `bench evaluate`
    model, _ = load_model(tiny_checkpoint)
    predictor = Predictor(model, resize="native")
    (tmp_path / "gt").mkdir()
    for sample in load_dataset("smiyc-ra21", kit.replicas["smiyc-ra21"]):
        prediction = predictor(sample.image)
        for name in SCORERS:
            (tmp_path / name).mkdir(exist_ok=True)
            score = get_scorer(name)(prediction.class_logits, prediction.mask_logits).numpy()
            np.save(tmp_path / name / f"{sample.id}.npy", score)
        Image.fromarray(sample.ood).save(tmp_path / "gt" / f"{sample.id}.png")
    for entry in stored["results"]:
        expected = evaluate_dirs(tmp_path / entry["scorer"], tmp_path / "gt", "smiyc-anomaly", workers=1)
        for key in ("AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70", "threshold"):
            assert entry["metrics"][key] == expected[key], (entry["scorer"], key)

    # torchrun -m maskbench run, 2 processes on CPU (gloo)
    two = tmp_path / "two"
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "maskbench", *run_args(kit, tiny_checkpoint, two)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results: ") == 1 and "protocol smiyc-anomaly" in proc.stdout  # rank 0 alone reports
    merged = json.loads((two / "results.json").read_text())
    assert merged["run"]["world_size"] == 2 and merged["results"] == stored["results"]


def test_checkpoint_cache_stores_quarter_resolution_and_replays(kit, tmp_path, tiny_checkpoint):
    cache = tmp_path / "cache"
    filled = CliRunner().invoke(main, [*run_args(kit, tiny_checkpoint, tmp_path / "fill"), "--cache", str(cache),
                                       "--tta", "flip"])
    assert filled.exit_code == 0, filled.output
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 6  # 3 frames x 2 views
    model, _ = load_model(tiny_checkpoint)
    predictor = Predictor(model, resize="native")
    sample = load_dataset("smiyc-ra21", kit.replicas["smiyc-ra21"])[0]
    pixels, size = predictor.preprocess(sample.image)
    with torch.no_grad():
        raw = model(pixels)
    with np.load(next(e for e in entries if e.name.startswith(f"{sample.id}.native.none")), allow_pickle=False) as z:
        assert "mask_logits" not in z.files and z["mask_logits_quarter"].dtype == np.float16
        assert z["mask_logits_quarter"].shape == tuple(raw["pred_masks"].shape[1:])  # [Q, Hp/4, Wp/4]
        assert tuple(z["processed_size"]) == size
        np.testing.assert_array_equal(z["mask_logits_quarter"], raw["pred_masks"][0].half().numpy())
        np.testing.assert_array_equal(z["class_logits"], raw["pred_logits"][0].numpy())

    replay = CliRunner().invoke(main, ["run", "--scorer", ",".join(SCORERS), "--dataset", "smiyc-ra21",
                                       "--root", str(kit.replicas["smiyc-ra21"]), "--from-cache", str(cache),
                                       "--out", str(tmp_path / "replay"), "--tta", "flip", "--workers", "1"])
    assert replay.exit_code == 0, replay.output
    first = json.loads((tmp_path / "fill" / "results.json").read_text())
    second = json.loads((tmp_path / "replay" / "results.json").read_text())
    assert second["results"] == first["results"]
    assert second["run"]["checkpoint"]["config"]["num_queries"] == 7  # recorded with the cache
