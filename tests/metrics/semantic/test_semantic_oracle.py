"""mIoU / IoU / iIoU against cityscapesScripts' own evaluator (evalPixelLevelSemanticLabeling) run on files."""

import importlib
import math

import numpy as np
import pytest
from PIL import Image

from maskbench.errors import InputError
from maskbench.metrics.semantic import SemanticAccumulator

oracle_labels = pytest.importorskip("cityscapesscripts.helpers.labels")


@pytest.fixture
def oracle(monkeypatch, tmp_path):
    """The official module, imported with its dataset / export paths pointed into tmp_path (it reads them at import)."""
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path / "cs"))
    monkeypatch.delenv("CITYSCAPES_EXPORT_DIR", raising=False)
    if not hasattr(np, "in1d"):  # removed in numpy 2.4; the evaluator calls it: its documented equivalent
        monkeypatch.setattr(np, "in1d", lambda a, b, invert=False: np.isin(np.ravel(a), b, invert=invert),
                            raising=False)
    module = importlib.import_module("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
    module = importlib.reload(module)
    module.args.quiet = True
    module.args.JSONOutput = False
    module.args.evalInstLevelScore = True
    return module


def _frame(rng, h, w, *, with_caravan=True):
    """GT labelIds with thing instances (instanceIds: id*1000+k, groups left as id), and a noisy prediction."""
    gt = np.full((h, w), 7, np.uint8)
    inst = np.full((h, w), 7, np.int32)
    for value in rng.choice([0, 1, 4, 8, 11, 13, 17, 20, 21, 23, 9, 14], size=7):
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        sl = np.s_[y:y + rng.integers(3, h // 2), x:x + rng.integers(3, w // 2)]
        gt[sl] = value
        inst[sl] = value
    things = [24, 24, 25, 26, 26, 26, 27, 33] + ([29] if with_caravan else [])
    counts = {}
    for value in things:
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        sl = np.s_[y:y + rng.integers(2, h // 3), x:x + rng.integers(2, w // 3)]
        gt[sl] = value
        k = counts.get(value, 0)
        counts[value] = k + 1
        inst[sl] = value * 1000 + k if rng.random() > 0.2 else value  # some groups: no instance id
    pred = gt.copy()
    noise = rng.random((h, w)) < 0.3
    pred[noise] = rng.choice([7, 8, 11, 24, 25, 26, 27, 28, 29, 0, 33], size=int(noise.sum()))
    return pred, gt, inst


def _write(tmp_path, frames):
    preds, gts = [], []
    for i, (pred, gt, inst) in enumerate(frames):
        p = tmp_path / f"pred_{i}.png"
        g = tmp_path / f"city_{i:06d}_000019_gtFine_labelIds.png"
        Image.fromarray(pred).save(p)
        Image.fromarray(gt).save(g)
        Image.fromarray(inst.astype(np.uint16)).save(tmp_path / f"city_{i:06d}_000019_gtFine_instanceIds.png")
        preds.append(str(p))
        gts.append(str(g))
    return preds, gts


def _close(ours, theirs):
    if ours is None:
        return math.isnan(theirs)
    return abs(ours - theirs) <= 1e-12


def _compare(result, official):
    names = {lb.name for lb in oracle_labels.labels if lb.id >= 0 and not lb.ignoreInEval}
    assert set(result["IoU"]) == names
    for name, value in official["classScores"].items():
        if name in names:
            assert _close(result["IoU"][name], value), name
        else:
            assert math.isnan(value)
    for name, value in official["classInstScores"].items():
        if name in result["iIoU_per_class"]:
            assert _close(result["iIoU_per_class"][name], value), name
        else:
            assert math.isnan(value), name
    for name, value in official["categoryScores"].items():
        assert _close(result["IoU_categories"][name], value), name
    for name, value in official["categoryInstScores"].items():
        assert _close(result["iIoU_per_category"].get(name), value), name
    assert _close(result["mIoU"], official["averageScoreClasses"])
    assert _close(result["iIoU"], official["averageScoreInstClasses"])
    assert _close(result["mIoU_categories"], official["averageScoreCategories"])
    assert _close(result["iIoU_categories"], official["averageScoreInstCategories"])
    assert result["pixels"] == int(np.asarray(official["confMatrix"]).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_cityscapes_scripts(oracle, tmp_path, seed):
    rng = np.random.default_rng(seed)
    frames = [_frame(rng, 48, 80, with_caravan=i % 2 == 0) for i in range(4)]
    official = oracle.evaluateImgLists(*_write(tmp_path, frames), oracle.args)
    acc = SemanticAccumulator()
    for pred, gt, inst in frames:
        acc.update(pred, gt, inst)
    result = acc.compute()
    _compare(result, official)
    assert result["notes"] == [] and result["frames"] == 4
    # two shards merged give the same numbers
    a, b = SemanticAccumulator(), SemanticAccumulator()
    for k, (pred, gt, inst) in enumerate(frames):
        (a if k < 2 else b).update(pred, gt, inst)
    _compare(a.merge(b).compute(), official)


def test_absent_classes_are_none_and_never_false_positives_on_ignored_ground_truth(oracle, tmp_path):
    gt = np.full((8, 8), 7, np.uint8)
    gt[:, 4:] = 0  # unlabeled: predictions there count nowhere
    pred = np.full((8, 8), 7, np.uint8)
    pred[:, 4:] = 26  # car predicted on ignored pixels: not a false positive
    pred[0, 0] = 8  # one road pixel predicted as sidewalk
    inst = gt.astype(np.int32)
    official = oracle.evaluateImgLists(*_write(tmp_path, [(pred, gt, inst)]), oracle.args)
    result = SemanticAccumulator().update(pred, gt, inst).compute()
    _compare(result, official)
    assert result["IoU"]["road"] == 31 / 32 and result["IoU"]["sidewalk"] == 0.0
    assert result["IoU"]["car"] is None and result["mIoU"] == (31 / 32 + 0.0) / 2


def test_iiou_is_none_without_instance_labels():
    gt = np.full((4, 4), 26, np.uint8)
    acc = SemanticAccumulator().update(gt, gt, np.full((4, 4), 26000, np.int32)).update(gt, gt)
    result = acc.compute()
    assert result["mIoU"] == 1.0 and result["iIoU"] is None and "1 of 2 frame(s)" in result["notes"][0]


def test_bad_values_are_refused():
    ok = np.zeros((2, 2), np.uint8)
    with pytest.raises(InputError, match=r"prediction holds values \[34\]"):
        SemanticAccumulator().update(np.full((2, 2), 34, np.uint8), ok)
    with pytest.raises(InputError, match="ground truth holds values"):
        SemanticAccumulator().update(ok, np.full((2, 2), 255, np.uint8))
    with pytest.raises(InputError, match="'road' has no instances"):
        SemanticAccumulator().update(ok, ok, np.full((2, 2), 7001, np.int32))
