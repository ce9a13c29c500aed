"""The outlier pool: deterministic objects and pasting, and disjointness from the evaluation anomalies by
construction (generator functions executed, shape and texture family names, seed stream, import graph), each
check shown to fail on a planted violation."""

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import numpy as np
import pytest

import maskbench.datasets.world as world_pkg
from maskbench.datasets.world import outliers, render_scene
from maskbench.datasets.world import anomalies as anomaly_module
from maskbench.datasets.world.outliers import (
    EXTENT_RANGE, POOL_SEED_CODE, POOL_SHAPES, POOL_TEXTURES, PasteConfig, paste_outliers, pool_seed,
    render_outlier,
)
from maskbench.datasets.world.splits import SPLIT_CODES, SPLITS, frame_seed
from maskbench.datasets.world import WorldConfig


# -- the checks -------------------------------------------------------------------------------------------------------
def executed_functions(call):
    """``(file, qualified name)`` of every maskbench function that runs during ``call()``."""
    seen = set()

    def profile(frame, event, _arg):
        code = frame.f_code
        if event == "call" and "maskbench" in code.co_filename and "/tests/" not in code.co_filename:
            seen.add((code.co_filename, code.co_qualname))

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return seen


def render_pool():
    for index in range(40):
        render_outlier(0, index, 20 + index)
    images = np.zeros((4, 64, 96, 3), np.uint8)
    paste_outliers(np.random.default_rng(0), images, np.zeros((4, 64, 96), np.uint8), PasteConfig(1.0, 2, 254))


def render_anomalies():
    for i in range(3):
        render_scene(np.random.SeedSequence([11, i]), (64, 128), mode="anomaly")
        render_scene(np.random.SeedSequence([11, i]), (64, 128), mode="obstacle")


def shared_generators(pool, anomalies):
    """Functions both the pool and the anomaly renderer execute (must be none)."""
    return executed_functions(pool) & executed_functions(anomalies)


def shared_names(a, b):
    return sorted(set(a) & set(b))


def modules_importing(package, target, sources=None):
    """Modules of ``package`` (other than ``target``) whose source imports ``target``; ``sources`` overrides."""
    found = []
    if sources is None:
        sources = {info.name: Path(importlib.import_module(f"{package.__name__}.{info.name}").__file__).read_text()
                   for info in pkgutil.iter_modules(package.__path__)}
    short = target.rsplit(".", 1)[-1]
    for name, text in sources.items():
        if name == short:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                mods = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            if any(m == target or m.endswith("." + short) or m == short for m in mods):
                found.append(name)
    return found


# -- disjointness -----------------------------------------------------------------------------------------------------
def test_pool_and_anomalies_share_no_generator_function():
    assert shared_generators(render_pool, render_anomalies) == set()


def test_shared_generator_is_detected(monkeypatch):
    """Planted violation: the pool's texture comes from the scene renderer."""
    def borrowed(kind, params, palette, rng, h, w):
        return render_scene(0, (max(h, 32), max(w, 32)), mode="anomaly").image[:h, :w].astype(np.float32)

    monkeypatch.setattr(outliers, "_texture", borrowed)
    assert shared_generators(render_pool, render_anomalies)


def test_family_names_are_disjoint_from_the_anomalies():
    assert shared_names(POOL_SHAPES, anomaly_module.ANOMALY_SHAPES) == []
    assert shared_names(POOL_TEXTURES, anomaly_module.ANOMALY_PATTERNS) == []
    assert shared_names(POOL_SHAPES + ("blob",), anomaly_module.ANOMALY_SHAPES) == ["blob"]  # planted
    drawn = [render_outlier(0, i, 30) for i in range(60)]
    assert {o.shape for o in drawn} == set(POOL_SHAPES) and {o.texture for o in drawn} == set(POOL_TEXTURES)


def shared_seeds(pool_code):
    """Seed states that world frames (every split, 50 frames) share with 300 pool objects drawn with ``pool_code``."""
    config = WorldConfig()
    frames = {tuple(frame_seed(config, s, i).generate_state(4)) for s in SPLITS for i in range(50)}
    pool = {tuple(np.random.SeedSequence([0, pool_code, i]).generate_state(4)) for i in range(300)}
    return frames & pool


def test_seed_stream_is_not_a_world_split():
    assert POOL_SEED_CODE not in SPLIT_CODES.values()
    assert all(np.array_equal(pool_seed(0, i).generate_state(4),
                              np.random.SeedSequence([0, POOL_SEED_CODE, i]).generate_state(4)) for i in range(5))
    assert shared_seeds(POOL_SEED_CODE) == set()
    assert len(shared_seeds(SPLIT_CODES["anomaly"])) == 50  # planted: the pool drawn on the anomaly split's stream


def test_no_world_module_writes_the_pool():
    assert modules_importing(world_pkg, "maskbench.datasets.world.outliers") == []
    planted = {"splits": "from maskbench.datasets.world.outliers import paste_outliers\n"}
    assert modules_importing(world_pkg, "maskbench.datasets.world.outliers", planted) == ["splits"]


# -- objects and pasting ----------------------------------------------------------------------------------------------
def test_objects_are_deterministic_and_sized():
    for index, extent in ((0, 24), (7, 96), (123, 41)):
        a, b = render_outlier(0, index, extent), render_outlier(0, index, extent)
        assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
        assert max(a.mask.shape) == extent and a.mask.any() and a.image.dtype == np.uint8
    assert not np.array_equal(render_outlier(0, 1, 40).image, render_outlier(0, 2, 40).image)
    assert not np.array_equal(render_outlier(0, 1, 40).image, render_outlier(1, 1, 40).image)


def test_pasting_is_deterministic_and_only_touches_object_pixels():
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (6, 64, 128, 3), dtype=np.uint8)
    labels = rng.integers(0, 19, (6, 64, 128), dtype=np.uint8)
    config = PasteConfig(probability=0.5, objects=2, label=254)
    out1 = paste_outliers(np.random.default_rng(3), images, labels, config)
    out2 = paste_outliers(np.random.default_rng(3), images, labels, config)
    assert all(np.array_equal(x, y) for x, y in zip(out1, out2))
    new_images, new_labels, pasted = out1
    assert np.array_equal(images[~pasted], new_images[~pasted]) and np.array_equal(labels[~pasted], new_labels[~pasted])
    assert pasted.any()
    changed = new_labels != labels
    assert set(np.unique(new_labels[changed])) == {254}
    assert np.array_equal(new_images[~changed], images[~changed])  # image changes only under the pasted masks
    assert not np.array_equal(out1[0], paste_outliers(np.random.default_rng(4), images, labels, config)[0])
    ignore = paste_outliers(np.random.default_rng(3), images, labels, PasteConfig(0.5, 2, 255))
    assert np.array_equal(ignore[1] == 255, changed) and np.array_equal(ignore[0], new_images)


def test_paste_probability_and_extents(monkeypatch):
    images, labels = np.zeros((400, 40, 60, 3), np.uint8), np.zeros((400, 40, 60), np.uint8)
    drawn = []

    def recorder(seed, index, extent):
        drawn.append((seed, index, extent))
        return render_outlier(seed, index, extent)

    monkeypatch.setattr(outliers, "render_outlier", recorder)
    _, _, pasted = paste_outliers(np.random.default_rng(0), images, labels, PasteConfig(0.2, 1, 254, pool_seed=3))
    assert 0.15 < pasted.mean() < 0.25  # Binomial(400, 0.2): 4.5 standard deviations either side
    assert len(drawn) == pasted.sum()
    assert {seed for seed, _, _ in drawn} == {3}
    assert all(0 <= index < 300 for _, index, _ in drawn)
    assert all(EXTENT_RANGE[0] <= extent <= 40 for _, _, extent in drawn)  # clipped to the crop's shorter side
    drawn.clear()
    _, _, hit = paste_outliers(np.random.default_rng(1), np.zeros((60, 128, 256, 3), np.uint8),
                               np.zeros((60, 128, 256), np.uint8), PasteConfig(1.0, 3, 255))
    extents = [extent for _, _, extent in drawn]
    assert hit.all() and len(drawn) == 180
    assert min(extents) < 35 and max(extents) > 85 and EXTENT_RANGE[0] <= min(extents) <= max(extents) <= EXTENT_RANGE[1]
