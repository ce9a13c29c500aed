"""Bootstrap intervals against a literal re-evaluation of every replicate with the same index draws.

The literal definition: replicate ``b`` evaluates the frames ``rng.integers(0, F, size=(B, F))[b]`` (duplicates
included) with a fresh PixelAccumulator, then a fresh ComponentAccumulator at that replicate's best-F1 threshold.
Equality is exact for every protocol.
"""

import numpy as np
import pytest
from scipy.ndimage import zoom

from maskbench.errors import InputError
from maskbench.metrics.bootstrap import (
    METRICS, BootstrapPixels, BootstrapResult, bootstrap, paired_difference, replicate_counts,
)
from maskbench.metrics.components import ComponentAccumulator
from maskbench.metrics.pixel import PixelAccumulator


def make_frame(rng, h, w, *, quality=1.0, dtype=np.float32, void=True):
    """A frame with blob anomalies (labels 0 / 1 / 255 / 7) and a smooth score map; ``quality`` scales how
    much higher the anomalies score."""
    gt = np.zeros((h, w), np.uint8)
    if void:
        gt[: h // 5] = 255
        gt[rng.random((h, w)) < 0.03] = 7
    for _ in range(rng.integers(0, 4)):
        r, c, s = rng.integers(0, h), rng.integers(0, w), rng.integers(1, 7)
        gt[max(r - s, 0):r + s, max(c - s, 0):c + s] = 1
    base = zoom(rng.normal(size=(h // 4 + 1, w // 4 + 1)), 4, order=1)[:h, :w]
    scores = 1 / (1 + np.exp(-2 * base)) + quality * 0.3 * (gt == 1) + rng.normal(scale=0.05, size=(h, w))
    return scores.astype(dtype), gt


def literal(frames, protocol, track, rule, n_replicates, seed):
    """Every replicate re-evaluated from its drawn frames, as the protocol evaluates a split."""
    draws = np.random.default_rng(seed).integers(0, len(frames), size=(n_replicates, len(frames)))
    out = {m: np.full(n_replicates, np.nan) for m in METRICS}
    for b in range(n_replicates):
        drawn = [frames[i] for i in draws[b]]
        acc = PixelAccumulator(protocol, fpr95_rule=rule)
        for s, g in drawn:
            acc.update(s, g)
        px = acc.compute()
        values = dict(AP=px.ap, AUROC=px.auroc, FPR95=px.fpr95, MDM_F1_60=px.mdm_f1_60, MDM_F1_70=px.mdm_f1_70)
        if px.threshold is not None:
            comp = ComponentAccumulator(px.threshold, track=track, score_dtype=px.score_dtype)
            for s, g in drawn:
                comp.update(s, g)
            c = comp.compute()
            values.update(sIoU=c.siou, PPV=c.ppv, F1=c.f1)
        for m in METRICS:
            if values.get(m) is not None:
                out[m][b] = values[m]
    return out


def split(seed, n_frames=10, **kw):
    rng = np.random.default_rng(seed)
    return [make_frame(rng, int(rng.integers(15, 45)), int(rng.integers(15, 50)), **kw) for _ in range(n_frames)]


def test_replicate_counts_follow_the_definition():
    counts = replicate_counts(7, 5, 3)
    draws = np.random.default_rng(3).integers(0, 7, size=(5, 7))
    assert counts.shape == (5, 7) and (counts.sum(axis=1) == 7).all()
    for b in range(5):
        assert (counts[b] == np.bincount(draws[b], minlength=7)).all()


@pytest.mark.parametrize("protocol,track,rule", [
    ("exact16", "anomaly", "first_geq"),
    ("exact16", "obstacle", "interp"),
    ("exact", "obstacle", "strict_dropint"),
    ("exact", "anomaly", "maskomaly_tpr90"),
    ("smiyc", "obstacle", "first_geq"),
    ("smiyc", "anomaly", "first_geq"),
    ("smiyc-legacy", "obstacle", "first_geq"),
])
def test_replicates_equal_a_literal_reevaluation(protocol, track, rule):
    frames = split(1 + len(protocol) + len(rule))
    # an all-void frame, a frame without anomalies, a frame without inliers, one with float16 scores
    rng = np.random.default_rng(9)
    frames[2] = (frames[2][0], np.full(frames[2][1].shape, 255, np.uint8))
    frames[4] = (frames[4][0], np.where(frames[4][1] == 1, 0, frames[4][1]).astype(np.uint8))
    s, g = make_frame(rng, 20, 20, void=False)
    frames[6] = (s, np.where(g == 0, 255, g).astype(np.uint8))
    frames[7] = (frames[7][0].astype(np.float16), frames[7][1])
    n_rep, seed = 25, 11
    res = bootstrap(frames, protocol, track=track, fpr95_rule=rule, n_replicates=n_rep, seed=seed)
    ref = literal(frames, protocol, track, rule, n_rep, seed)
    for m in METRICS:
        np.testing.assert_array_equal(res.values[m], ref[m], err_msg=m)
    level = 90.0
    for m, ci in res.intervals(level).items():
        defined = ref[m][~np.isnan(ref[m])]
        assert ci["undefined"] == n_rep - defined.size and ci["B"] == n_rep and ci["seed"] == seed
        if defined.size:
            assert [ci["low"], ci["high"]] == list(np.percentile(defined, [5.0, 95.0]))
        else:
            assert ci["low"] is ci["high"] is None


def test_undefined_replicates_are_excluded_and_counted():
    frames = split(4, n_frames=8)
    frames = [(s, np.where(g == 1, 0, g).astype(np.uint8)) for s, g in frames]  # no anomaly ...
    s, g = make_frame(np.random.default_rng(2), 30, 30)
    g[5:12, 5:12] = 1
    frames[3] = (s, g)  # ... except in one frame, which a replicate misses with probability (7/8)^8
    res = bootstrap(frames, "exact16", n_replicates=40, seed=0)
    missing = replicate_counts(8, 40, 0)[:, 3] == 0
    assert 0 < missing.sum() < 40
    ci = res.interval("AP")
    assert ci["undefined"] == missing.sum() and np.isnan(res.values["AP"][missing]).all()
    assert ci["low"] == np.percentile(res.values["AP"][~missing], 2.5)


def test_frames_in_shards_and_stored_form(tmp_path):
    """Shards merge; the 1-D scores of the labelled pixels (what bench run stores) equal the full maps."""
    frames = split(5, n_frames=6)
    whole = bootstrap(frames, "smiyc", track="obstacle", n_replicates=20, seed=2)
    a, b = BootstrapPixels("smiyc"), BootstrapPixels("smiyc")
    for i, (s, g) in enumerate(frames):
        stored = s[(g == 0) | (g == 1)].astype(np.float16)
        (a if i % 2 else b).update(i, stored, g)
    reps = b.merge(a).replicates(20, 2)
    comps = reps.components("obstacle")
    for i, (s, g) in reversed(list(enumerate(frames))):
        comps.update(i, s[(g == 0) | (g == 1)].astype(np.float16), g)
    res = reps.finish(comps)
    for m in METRICS:
        np.testing.assert_array_equal(res.values[m], whole.values[m])
    np.savez(tmp_path / "boot.npz", **res.to_arrays())
    with np.load(tmp_path / "boot.npz") as z:
        back = BootstrapResult.from_arrays(z)
    for m in METRICS:
        np.testing.assert_array_equal(back.values[m], res.values[m])
    assert (back.n_frames, back.n_replicates, back.seed) == (6, 20, 2)


def test_paired_difference_of_a_scorer_with_itself_and_with_a_better_one():
    rng = np.random.default_rng(7)
    frames_a, frames_b = [], []
    for _ in range(12):
        s, g = make_frame(rng, 30, 40, quality=0.3)
        frames_a.append((s, g))
        frames_b.append(((s + 0.6 * (g == 1)).astype(np.float32), g))  # anomalies lifted: better on every frame
    a = bootstrap(frames_a, "exact16", n_replicates=200, seed=1)
    a2 = bootstrap(frames_a, "exact16", n_replicates=200, seed=1)
    b = bootstrap(frames_b, "exact16", n_replicates=200, seed=1)
    same = paired_difference(a, a2, "AP")
    assert same["low"] == same["high"] == 0.0 and not same["significant"]
    better = paired_difference(b, a, "AP", level=99.0)
    assert better["significant"] and better["low"] > 0 and better["level"] == 99.0
    diff = b.values["AP"] - a.values["AP"]
    assert [better["low"], better["high"]] == list(np.percentile(diff, [0.5, 99.5]))
    with pytest.raises(InputError, match="the draws differ"):
        paired_difference(a, bootstrap(frames_a, "exact16", n_replicates=200, seed=2), "AP")


def test_coverage_of_a_known_difference():
    """Two scorers whose AP differs by a known population amount (estimated on 600 frames): over 24 independent
    splits of 15 frames the paired 80 % interval covers it in a plausible share (19 of 24 here; seeds fixed)."""
    def scorer_pair(rng, n):
        frames_a, frames_b = [], []
        for _ in range(n):
            s, g = make_frame(rng, 24, 32, quality=0.5)
            frames_a.append((s, g))
            frames_b.append(((s + 0.15 * (g == 1) + rng.normal(scale=0.05, size=s.shape)).astype(np.float32), g))
        return frames_a, frames_b

    def ap(frames):
        acc = PixelAccumulator("exact16")
        for s, g in frames:
            acc.update(s, g)
        return acc.compute().ap

    def pixel_bootstrap(frames, seed):  # AP needs pass 1 only
        acc = BootstrapPixels("exact16")
        for i, (s, g) in enumerate(frames):
            acc.update(i, s, g)
        return acc.replicates(100, seed).finish()

    big_a, big_b = scorer_pair(np.random.default_rng(1000), 600)
    truth = ap(big_b) - ap(big_a)
    covered = 0
    for trial in range(24):
        fa, fb = scorer_pair(np.random.default_rng(trial), 15)
        ci = paired_difference(pixel_bootstrap(fb, trial), pixel_bootstrap(fa, trial), "AP", level=80.0)
        covered += ci["low"] <= truth <= ci["high"]
    assert 12 <= covered <= 24, covered


def test_bad_input():
    with pytest.raises(InputError, match="positive integer"):
        replicate_counts(3, 0, 0)
    with pytest.raises(InputError, match="seed"):
        replicate_counts(3, 5, -1)
    bp = BootstrapPixels("exact16")
    s, g = make_frame(np.random.default_rng(0), 10, 10)
    bp.update(0, s, g)
    with pytest.raises(InputError, match="frame 0 given twice"):
        bp.update(0, s, g)
    bp.update(2, s, g)
    with pytest.raises(InputError, match="without gaps"):
        bp.replicates(5, 0)
    with pytest.raises(InputError, match="values for .* non-void pixels"):
        bp.update(1, s.reshape(-1)[:5], g)
    with pytest.raises(InputError, match="NaN"):
        bp.update(1, np.full_like(s, np.nan), g)
    with pytest.raises(InputError, match="not a rule of protocol 'smiyc'"):
        BootstrapPixels("smiyc", fpr95_rule="interp")
    res = bootstrap([(s, g)], "exact16", n_replicates=3, seed=0)
    with pytest.raises(InputError, match="level must be a percentage"):
        res.interval("AP", level=100)
    with pytest.raises(InputError, match="unknown metric 'IoU'"):
        res.interval("IoU")
