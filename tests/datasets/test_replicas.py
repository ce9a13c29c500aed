"""Every replica reads back through load_dataset as exactly the content it was written with."""

import hashlib

import numpy as np
import pytest

from maskbench.datasets import DATASETS, load_dataset
from maskbench.datasets.replica import WRITERS, make
from maskbench.errors import DatasetError

LOSSY = {"smiyc-ra21", "road-anomaly", "coco-open-panoptic"}  # JPEG images


def test_every_dataset_has_a_replica():
    assert sorted(WRITERS) == DATASETS.names()


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_replica_reads_back(name, replica, same_samples):
    rep = replica(name, frames=3, seed=7)
    ds = load_dataset(name, rep.root, **rep.options)
    assert len(ds) == 3 == len(rep.samples)
    assert rep.image_tolerance == (8 if name in LOSSY else 0)
    same_samples(ds, rep.samples, rep.image_tolerance)
    same_samples([ds[i] for i in range(len(ds))], rep.samples, rep.image_tolerance)  # indexing == iteration
    assert any((s.ood == 1).any() for s in rep.samples) or name == "cityscapes"
    info = ds.info
    assert info["name"] == name and info["frames"] == 3
    assert (name == "bundle" and info["official_count"] is None) or info["official_count"] > 3
    assert info["label_convention"] and info["void"] == 255
    assert info["track"] == {"smiyc-ro21": "obstacle", "lost-and-found": "obstacle", "cityscapes": None,
                             "coco-open-panoptic": None}.get(name, "anomaly")


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", ["smiyc-ro21", "coco-open-panoptic", "fs-static"])
def test_replica_is_deterministic(name, tmp_path):
    a, b, c = (make(name, tmp_path / d, frames=2, seed=s) for d, s in (("a", 3), ("b", 3), ("c", 4)))
    assert _digest(a.root) == _digest(b.root)
    assert _digest(a.root) != _digest(c.root)


def test_loading_is_deterministic_and_lazy(replica):
    rep = replica("smiyc-ra21")
    first = [s.image for s in load_dataset("smiyc-ra21", rep.root)]
    assert all(np.array_equal(x, s.image) for x, s in zip(first, load_dataset("smiyc-ra21", rep.root)))
    path = rep.files[rep.samples[1].id]["image"]
    path.write_bytes(b"not a jpeg")
    ds = load_dataset("smiyc-ra21", rep.root)  # constructing reads no pixels
    assert ds[0].id == rep.samples[0].id
    with pytest.raises(DatasetError, match="smiyc-ra21.*validation0001.jpg.*unreadable"):
        ds[1]


def test_replica_arguments_are_checked(tmp_path):
    with pytest.raises(DatasetError, match="no replica for dataset 'nope'.*cityscapes"):
        make("nope", tmp_path)
    with pytest.raises(DatasetError, match="frames must be a positive integer"):
        make("fs-laf", tmp_path, frames=0)
