"""`bench run --task semantic` end to end: on a Cityscapes replica against cityscapesScripts' own evaluator run on
the same prediction files, and on the world's val split through the shipped model against the train loop's
evaluation of the same frames."""

import importlib
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from maskbench.benchmark.run import RunConfig, run_benchmark
from maskbench.benchmark.table_formats import format_leaderboard
from maskbench.datasets import load_dataset
from maskbench.datasets.replica import make
from maskbench.errors import InputError

oracle_labels = pytest.importorskip("cityscapesscripts.helpers.labels")

CHECKPOINT = {"path": "controlled-forward", "sha256": "c" * 64, "config": None}
LABEL_OF_TRAIN = {lb.trainId: lb.id for lb in oracle_labels.labels if 0 <= lb.trainId < 255}


@pytest.fixture
def oracle(monkeypatch, tmp_path):
    """cityscapesScripts' evalPixelLevelSemanticLabeling, imported with its paths pointed into tmp_path."""
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path / "cs"))
    monkeypatch.delenv("CITYSCAPES_EXPORT_DIR", raising=False)
    if not hasattr(np, "in1d"):  # removed in numpy 2.4; the evaluator calls it: its documented equivalent
        monkeypatch.setattr(np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert),
                            raising=False)
    module = importlib.reload(importlib.import_module("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling"))
    module.args.quiet = True
    module.args.JSONOutput = False
    module.args.evalInstLevelScore = True
    return module


@pytest.fixture
def replica(tmp_path):
    return make("cityscapes", tmp_path / "rep", frames=5, seed=4)


def targets_for(ds, seed):
    """A chosen train-id prediction per frame: the ground truth's train ids, 30 % of the pixels (ignored ones
    included) replaced by random train ids 0..18."""
    rng = np.random.default_rng(seed)
    out = {}
    for sample in ds:
        target = np.where(sample.semantic == 255, 0, sample.semantic).astype(np.int64)
        noise = rng.random(target.shape) < 0.3
        target[noise] = rng.integers(0, 19, int(noise.sum()))
        out[sample.id] = target
    return out


def controlled_forward(ds, targets):
    """Query k has class k (logit 10, others -10) and mask logit +8 exactly where the chosen prediction is k,
    -8 elsewhere: argmax_k S_k is the chosen prediction (of the mirrored image: the mirrored prediction)."""
    table = {}
    classes = torch.full((19, 20), -10.0)
    classes[torch.arange(19), torch.arange(19)] = 10.0
    for sample in ds:
        for image, target in ((sample.image, targets[sample.id]), (sample.image[:, ::-1], targets[sample.id][:, ::-1])):
            target = torch.from_numpy(np.ascontiguousarray(target))
            table[np.ascontiguousarray(image).tobytes()] = (classes, torch.stack(
                [torch.where(target == k, 8.0, -8.0) for k in range(19)]))
    return lambda image: table[image.tobytes()]


def run_semantic(root, out, forward, **changes):
    config = RunConfig(task="semantic", dataset="cityscapes", root=root, out=out, workers=1, command=["test"], **changes)
    return run_benchmark(config, forward, checkpoint=dict(CHECKPOINT))


def official_scores(oracle, ds, targets, replica, tmp_path, n=None):
    """evaluateImgLists on labelId PNGs of the chosen predictions and the replica's own gtFine files."""
    preds, gts = [], []
    for fid in ds.ids[:n]:
        label_ids = np.vectorize(LABEL_OF_TRAIN.get)(targets[fid]).astype(np.uint8)
        path = tmp_path / f"{fid}_pred.png"
        Image.fromarray(label_ids).save(path)
        preds.append(str(path))
        gts.append(str(replica.files[fid]["label"]))
    return oracle.evaluateImgLists(preds, gts, oracle.args)


def close(ours, theirs):
    return math.isnan(theirs) if ours is None else abs(ours - theirs) <= 1e-12


def test_semantic_task_matches_cityscapes_scripts(oracle, replica, tmp_path):
    ds = load_dataset("cityscapes", replica.root)
    targets = targets_for(ds, 0)
    results = run_semantic(replica.root, tmp_path / "out", controlled_forward(ds, targets))
    official = official_scores(oracle, ds, targets, replica, tmp_path)
    (entry,) = results["results"]
    m = entry["metrics"]
    assert entry["scorer"] == "closed-set" and entry["protocol"] == "cityscapes-semantic" and m["images"] == 5
    assert close(m["mIoU"], official["averageScoreClasses"]) and close(m["iIoU"], official["averageScoreInstClasses"])
    evaluated = [lb.name for lb in oracle_labels.labels if lb.id >= 0 and not lb.ignoreInEval]
    assert list(m["IoU"]) == evaluated
    for name in evaluated:
        assert close(m["IoU"][name], official["classScores"][name]), name
    details = entry["protocol_details"]
    for name, value in official["classInstScores"].items():
        assert close(details["iIoU_per_class"].get(name), value), name
    for name, value in official["categoryScores"].items():
        assert close(details["categories"]["IoU"][name], value), name
    assert close(details["categories"]["iIoU"], official["averageScoreInstCategories"])
    assert details["pixels"] == int(np.asarray(official["confMatrix"]).sum())
    assert 0.2 < m["mIoU"] < 0.9  # neither degenerate nor perfect
    # results files: results.json as returned, the csv with one column per class, no scorer recorded
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == results
    header, row = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert header.split(",")[3:6] == ["mIoU", "iIoU", "IoU.road"]
    assert float(row.split(",")[5]) == m["IoU"]["road"]
    assert results["run"]["scorers"] == {} and results["run"]["task"] == "semantic"


def test_limit_resume_and_cache_give_the_oracle_numbers(oracle, replica, tmp_path):
    ds = load_dataset("cityscapes", replica.root)
    targets = targets_for(ds, 1)
    forward = controlled_forward(ds, targets)
    partial = run_semantic(replica.root, tmp_path / "a", forward, limit=2, cache=tmp_path / "cache")
    official = official_scores(oracle, ds, targets, replica, tmp_path, n=2)
    assert close(partial["results"][0]["metrics"]["mIoU"], official["averageScoreClasses"])
    assert partial["results"][0]["metrics"]["images"] == 2

    def refuse(image):
        raise AssertionError("cached frames must not run the forward")

    # the same frames again from the cache (float16 mask logits: +-8 is exact), in another folder
    again = run_semantic(replica.root, tmp_path / "b", refuse, limit=2, from_cache=tmp_path / "cache")
    assert again["results"] == partial["results"]


def test_flip_tta_averages_the_semantic_scores_of_the_flipped_view_flipped_back(replica, tmp_path):
    ds = load_dataset("cityscapes", replica.root)
    forward = controlled_forward(ds, targets_for(ds, 3))
    plain = run_semantic(replica.root, tmp_path / "a", forward)
    flip = run_semantic(replica.root, tmp_path / "b", forward, tta="flip")
    assert flip["results"][0]["metrics"] == plain["results"][0]["metrics"] and flip["run"]["tta"] == "flip"


def test_refusals(replica, tmp_path):
    ds = load_dataset("cityscapes", replica.root)
    forward = controlled_forward(ds, targets_for(ds, 0))
    with pytest.raises(InputError, match="^scorers .*not used by task semantic"):
        run_semantic(replica.root, tmp_path / "a", forward, scorers=("msp",))
    with pytest.raises(InputError, match="labels=labelTrainIds: the semantic task reads the labelIds"):
        run_semantic(replica.root, tmp_path / "b", forward, dataset_options={"labels": "labelTrainIds"})
    sh = make("streethazards", tmp_path / "sh", frames=2, seed=0)
    with pytest.raises(InputError, match="streethazards: the semantic task evaluates Cityscapes labelIds"):
        run_benchmark(RunConfig(task="semantic", dataset="streethazards", root=sh.root, out=tmp_path / "c",
                                command=["test"]), forward, checkpoint=dict(CHECKPOINT))

    def twelve_classes(image):
        c, m = forward(image)
        return c[:12, 7:], m[:12]

    with pytest.raises(InputError, match="the model has 12 classes; the Cityscapes evaluation maps its 19"):
        run_semantic(replica.root, tmp_path / "d", twelve_classes)


def test_tables_show_per_class_iou_only_when_named(replica, tmp_path):
    ds = load_dataset("cityscapes", replica.root)
    targets = targets_for(ds, 2)
    results = run_semantic(replica.root, tmp_path / "out", controlled_forward(ds, targets))
    m = results["results"][0]["metrics"]
    text = format_leaderboard(tmp_path / "out", "csv", metrics=["mIoU", "IoU.road", "IoU.car"])
    values = text.splitlines()[-1].split(",")
    assert values[0] == "closed-set" and [float(v) for v in values[1:]] == [m["mIoU"], m["IoU"]["road"],
                                                                             m["IoU"]["car"]]
    default = format_leaderboard(tmp_path / "out", "text")  # without --metrics: the scalar keys, never the mapping
    assert "mIoU" in default and "IoU.road" not in default
    with pytest.raises(InputError, match="IoU is per class; name one class as IoU.<class>, e.g. IoU.road"):
        format_leaderboard(tmp_path / "out", "text", metrics=["IoU"])


def test_world_val_through_the_shipped_model_equals_the_train_loop_evaluation(tmp_path):
    """The task on the world's val frames (a few, to stay fast) with the shipped weights, against
    ``maskbench.train.loop.evaluate_miou`` on the same frames: the same per-class IoU and mean, bit for bit (the
    model predicts no class that is absent from these frames, so averaging over the classes with a defined IoU
    (cityscapesScripts) and over the classes present in the ground truth (train loop) agree)."""
    from maskbench.benchmark.embedded import EMBEDDED_WEIGHTS
    from maskbench.datasets.cityscapes_labels import TRAIN_CLASSES
    from maskbench.datasets.world import ensure_world
    from maskbench.model.checkpoint import load_model
    from maskbench.train.loop import evaluate_miou, load_split

    n = 6
    world = ensure_world(("val",))
    results = run_benchmark(RunConfig(task="semantic", dataset="cityscapes", root=world.path("val"),
                                      out=tmp_path / "out", checkpoint=EMBEDDED_WEIGHTS, limit=n, command=["test"]))
    m = results["results"][0]["metrics"]
    images, labels = load_split(world.dataset("val"))
    model, _ = load_model(EMBEDDED_WEIGHTS)
    miou, per_class = evaluate_miou(model, images[:n], labels[:n], len(TRAIN_CLASSES))
    assert m["mIoU"] == miou
    assert list(m["IoU"].values()) == per_class
    assert m["iIoU"] is not None  # the world's val split ships instanceIds
