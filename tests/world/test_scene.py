"""The renderer: determinism, taxonomy, anomalies that never carry an inlier label, anomaly sizes."""

import numpy as np
import pytest

from maskbench.datasets.world import WORLD_TRAIN_IDS, WorldConfig, render_frame, render_scene
from maskbench.datasets.world.anomalies import ANOMALY_SHAPES
from maskbench.datasets.world.clutter import CLUTTER, clutter
from maskbench.datasets.world.paint import DYNAMIC, PATTERN, Camera, Painter

# Cityscapes train ids (cityscapesScripts labels.py) the world promises, by name
TAXONOMY = {"road": 0, "sidewalk": 1, "building": 2, "wall": 3, "fence": 4, "pole": 5, "traffic sign": 7,
            "vegetation": 8, "terrain": 9, "sky": 10, "person": 11, "car": 13}


def test_same_seed_same_arrays_and_seed_sequence_untouched():
    seq = np.random.SeedSequence([3, 4, 5])
    a = render_scene(seq, mode="anomaly")
    b = render_scene(seq, mode="anomaly")
    assert seq.n_children_spawned == 0
    for field in ("image", "semantic", "anomalies", "ego", "static", "dynamic", "road_line"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    c = render_scene(np.random.SeedSequence([3, 4, 6]), mode="anomaly")
    assert not np.array_equal(a.image, c.image)


def test_shapes_and_dtypes():
    s = render_scene(1, (96, 160), mode="obstacle")
    assert s.image.shape == (96, 160, 3) and s.image.dtype == np.uint8
    assert s.semantic.shape == s.anomalies.shape == s.ego.shape == s.road_line.shape == (96, 160)
    assert s.semantic.dtype == np.uint8 and s.anomalies.dtype == np.uint8
    assert s.ego.dtype == bool and s.road_line.dtype == bool


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        render_scene(0, mode="zebra")
    with pytest.raises(ValueError, match="size"):
        render_scene(0, (8, 8))


def test_every_taxonomy_class_appears_in_the_training_split():
    config = WorldConfig()
    seen = np.zeros(256, np.int64)
    for i in range(30):
        seen += np.bincount(render_frame(config, "train", i).semantic.ravel(), minlength=256)
    assert set(TAXONOMY.values()) == set(WORLD_TRAIN_IDS)
    missing = [name for name, tid in TAXONOMY.items() if seen[tid] == 0]
    assert not missing, f"classes never rendered in 30 training frames: {missing}"
    used = set(np.flatnonzero(seen).tolist())
    assert used <= set(WORLD_TRAIN_IDS) | {255}, used
    # no class swamps the frames, and the small ones are not negligible
    share = seen[list(WORLD_TRAIN_IDS)] / seen.sum()
    assert share.max() < 0.5 and share.min() > 1e-4, dict(zip(TAXONOMY, share.round(4)))


def test_training_frames_have_no_anomalies_and_ego_furniture_and_clutter_are_void():
    config = WorldConfig()
    egos = statics = dynamics = 0
    for i in range(12):
        s = render_frame(config, "train", i)
        assert s.anomalies.max() == 0
        assert not (s.ego & s.static).any() and not (s.ego & s.dynamic).any() and not (s.static & s.dynamic).any()
        void = s.ego | s.static | s.dynamic
        assert np.all(s.semantic[void] == 255)
        assert np.all(void[s.semantic == 255])  # the ego vehicle, street furniture and clutter are the only void
        egos += bool(s.ego.any())
        statics += bool(s.static.any())
        dynamics += bool(s.dynamic.any())
    assert 0 < egos < 12 and 0 < statics < 12 and 0 < dynamics <= 12


def test_clutter_is_drawn_apart_from_the_anomalies():
    """Movable clutter (void, seen in training) never takes the anomalies' shapes or patterned texture."""
    assert not set(CLUTTER) & set(ANOMALY_SHAPES)
    p = Painter()
    rng = np.random.default_rng(0)
    cam = Camera(rng, 256, 512)
    for _ in range(200):
        clutter(p, cam, rng, 3.0, 10.0)
    kinds = {k for c, k in zip(p.cls, p.kind) if c == DYNAMIC}
    assert kinds and PATTERN not in kinds and not p.patterns


@pytest.mark.parametrize("split", ["anomaly", "obstacle", "streethazards"])
def test_anomalies_never_carry_an_inlier_label(split):
    config = WorldConfig()
    for i in range(8):
        s = render_frame(config, split, i)
        assert s.anomalies.max() >= 1, (split, i)
        assert np.all(s.semantic[s.anomalies > 0] == 255), (split, i)
        assert not (s.road_line & (s.anomalies > 0)).any()
        # instances are numbered 1..k and each one is visible
        ids = np.unique(s.anomalies[s.anomalies > 0])
        assert ids.tolist() == list(range(1, ids.max() + 1))


def _instance_sizes(split, frames):
    """Visible pixels of every anomaly instance in the first ``frames`` frames of ``split``."""
    config = WorldConfig()
    sizes = []
    for i in range(frames):
        sizes += np.bincount(render_frame(config, split, i).anomalies.ravel())[1:].tolist()
    return np.array(sizes)


def test_anomaly_sizes_spread_from_small_to_large():
    sizes = _instance_sizes("anomaly", 30)
    assert sizes.min() >= 40  # hidden anomalies are redrawn
    assert sizes.min() < 150, sizes.min()
    assert sizes.max() > 5000, sizes.max()
    assert ((sizes > 150) & (sizes < 5000)).sum() >= 5


def test_obstacles_are_small_and_on_the_road():
    config = WorldConfig()
    sizes = _instance_sizes("obstacle", 20)
    assert sizes.min() < 60 and sizes.max() < 8000 and np.median(sizes) < np.median(_instance_sizes("anomaly", 20))
    for i in range(10):
        s = render_frame(config, "obstacle", i)
        for k in range(1, s.anomalies.max() + 1):
            ys, xs = np.nonzero(s.anomalies == k)
            bottom = ys.max()
            below = s.semantic[min(bottom + 1, s.semantic.shape[0] - 1):bottom + 4, xs[ys == bottom]]
            # right under its lowest row an obstacle stands on road (or on another obstacle / the image border)
            assert below.size == 0 or np.isin(below, [0, 255]).mean() > 0.5, (i, k)
