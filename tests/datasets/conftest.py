"""Helpers for the dataset tests, exposed as fixtures (pytest runs with --import-mode=importlib)."""

import numpy as np
import pytest
from PIL import Image

from maskbench.datasets.replica import make


@pytest.fixture
def replica(tmp_path):
    """``replica(name, frames=3, seed=0)`` -> a Replica written under this test's tmp_path."""

    def build(name, frames=3, seed=0, **kwargs):
        return make(name, tmp_path / "replica", frames=frames, seed=seed, **kwargs)

    return build


@pytest.fixture
def write_label():
    """``write_label(path, first_row)`` overwrites a label file keeping its size: row 0 starts with ``first_row``."""

    def write(path, first_row, fill=None):
        with Image.open(path) as img:
            label = np.asarray(img).copy()
        if fill is not None:
            label[...] = fill
        label[0, : len(first_row)] = first_row
        Image.fromarray(label).save(path)

    return write


def assert_same_samples(got, expected, tolerance):
    """Compare loaded samples with a replica's known content: ids, labels exactly, images within ``tolerance``."""
    got = list(got)
    assert [s.id for s in got] == [s.id for s in expected]
    for g, e in zip(got, expected):
        assert g.image.dtype == np.uint8 and g.image.shape == e.image.shape and g.image.shape[2] == 3
        diff = np.abs(g.image.astype(np.int16) - e.image.astype(np.int16)).max()
        assert diff <= tolerance, f"{g.id}: image differs by {diff} > {tolerance}"
        assert (g.ood is None) == (e.ood is None), g.id
        assert g.ood is None or (g.ood.dtype == np.uint8 and np.array_equal(g.ood, e.ood)), g.id
        for key in ("semantic", "panoptic", "label_ids", "instance_ids"):
            a, b = getattr(g, key), getattr(e, key)
            assert (a is None) == (b is None), (g.id, key)
            if a is not None:
                assert a.dtype == b.dtype and np.array_equal(a, b), (g.id, key)
        assert g.segments == e.segments, g.id


@pytest.fixture
def same_samples():
    return assert_same_samples
