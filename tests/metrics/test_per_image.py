"""Pooled and per-image (Hendrycks) aggregation, against scikit-learn and a transcription of anom_utils."""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from maskbench.metrics.per_image import KEYS, PerImageAccumulator


def _hendrycks_fpr95(y_true, y_score):
    """anom_utils.fpr_and_fdr_at_recall(recall_level=0.95), written out: sort descending, distinct thresholds,
    cut at the first full recall, FPR at argmin |recall - 0.95| scanning from full recall down."""
    order = np.argsort(y_score, kind="mergesort")[::-1]
    s, y = y_score[order], y_true[order]
    distinct = np.where(np.diff(s))[0]
    idx = np.r_[distinct, y.size - 1]
    tps = np.cumsum(y)[idx]
    fps = 1 + idx - tps
    recall = tps / tps[-1]
    last = tps.searchsorted(tps[-1])
    sl = slice(last, None, -1)
    recall, fps = np.r_[recall[sl], 1], np.r_[fps[sl], 0]
    cutoff = np.argmin(np.abs(recall - 0.95))
    return fps[cutoff] / np.sum(np.logical_not(y))


def _frames(rng, n=5):
    frames = []
    for i in range(n):
        ood = (rng.random((12, 16)) < 0.2).astype(np.uint8)
        ood[rng.random((12, 16)) < 0.1] = 255
        if i == 3:
            ood[ood == 1] = 0  # no anomaly: skipped per image
        scores = (rng.random((12, 16)) + 0.6 * (ood == 1)).astype(np.float32)
        scores[0, :4] = scores[0, 4]  # ties
        frames.append((scores, ood))
    return frames


def test_matches_sklearn_and_hendrycks():
    frames = _frames(np.random.default_rng(0))
    acc = PerImageAccumulator()
    for scores, ood in frames:
        acc.update(scores, ood)
    result = acc.compute()
    assert set(KEYS) <= set(result)
    per = []
    for scores, ood in frames:
        keep = ood != 255
        y, s = (ood[keep] == 1).astype(int), scores[keep].astype(np.float64)
        if y.any() and not y.all():
            per.append((average_precision_score(y, s), roc_auc_score(y, s), _hendrycks_fpr95(y, s)))
    assert result["frames"] == 5 and result["frames_per_image"] == len(per) == 4
    for i, key in enumerate(("AP_per_image", "AUROC_per_image", "FPR95_per_image")):
        assert abs(result[key] - np.mean([p[i] for p in per])) < 1e-12, key
    keep = [ood != 255 for _, ood in frames]
    y = np.concatenate([(ood[k] == 1) for (_, ood), k in zip(frames, keep)]).astype(int)
    s = np.concatenate([sc[k].astype(np.float64) for (sc, _), k in zip(frames, keep)])
    assert abs(result["AP"] - average_precision_score(y, s)) < 1e-12
    assert abs(result["AUROC"] - roc_auc_score(y, s)) < 1e-12
    fpr, tpr, _ = roc_curve(y, s)
    assert result["FPR95"] == next(f for t, f in zip(tpr, fpr) if t > 0.95)
    assert "1 of 5 frame(s)" in result["notes"]["per_image"]


def test_merged_shards_give_the_same_bits():
    frames = _frames(np.random.default_rng(1), n=6)
    whole = PerImageAccumulator()
    for k, (scores, ood) in enumerate(frames):
        whole.update(scores, ood, key=k)
    a, b = PerImageAccumulator(), PerImageAccumulator()
    for k, (scores, ood) in enumerate(frames):
        (a if k % 2 else b).update(scores, ood, key=k)
    assert b.merge(a).compute() == whole.compute()
