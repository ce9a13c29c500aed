"""Fixtures for the open-set tests: replicas with anomalies in both StreetHazards towns, tiny random models."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskbench.datasets import load_dataset
from maskbench.datasets.replica import make

_spec = importlib.util.spec_from_file_location("model_conftest", Path(__file__).parents[1] / "model" / "conftest.py")
_model_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_model_conftest)
build_tiny = _model_conftest.build_tiny


def write_checkpoint(path, num_classes, seed=0):
    """A random-weight tiny Swin Mask2Former saved as a bare .pth in the official (EAM) key layout."""
    import torch

    model = _model_conftest.build_ckpt_model("swin", seed, num_classes=num_classes)
    torch.save(_model_conftest.official_state(model, "eam"), path)
    return path


def model_forward(model):
    """``image -> (class logits, mask logits at the image size)`` through the reference Predictor."""
    from maskbench.model.predictor import Predictor

    predictor = Predictor(model)

    def forward(image):
        p = predictor(image)
        return p.class_logits, p.mask_logits

    return forward


@pytest.fixture
def streethazards(tmp_path):
    """A 4-frame StreetHazards replica (2 x t5, 2 x t6) whose t6 frames also get an anomaly (raw 14)."""
    rep = make("streethazards", tmp_path / "sh", frames=4, seed=3)
    for fid, paths in rep.files.items():
        if fid.startswith("t6"):
            raw = np.array(Image.open(paths["label"]))
            raw[40:56, 30:70] = 14
            Image.fromarray(raw).save(paths["label"])
    return load_dataset("streethazards", rep.root)


@pytest.fixture
def coco(tmp_path):
    rep = make("coco-open-panoptic", tmp_path / "coco", frames=3, seed=1)
    return load_dataset("coco-open-panoptic", rep.root, split="K20")


@pytest.fixture
def tiny_forward():
    """``tiny_forward(seed, num_classes, **config) -> forward`` of a tiny random-weight Mask2Former."""
    return lambda seed, num_classes, **changes: model_forward(build_tiny(seed, num_classes=num_classes, **changes))


@pytest.fixture
def checkpoint(tmp_path):
    """``checkpoint(num_classes) -> path`` of a tiny random-weight checkpoint file."""
    return lambda num_classes: write_checkpoint(tmp_path / f"tiny_{num_classes}.pth", num_classes)


def oracle_forward(ds, seed=0):
    """Query per GT segment: known segments get their class, unknown-class segments the void class (what a
    model trained without them predicts); a few void queries with random masks fill up to 12 queries."""
    cat_ids = sorted(ds.categories)
    k = len(cat_ids)
    g = torch.Generator().manual_seed(seed)
    table = {}
    for sample in ds:
        rows, masks = [], []
        for seg in sample.segments:
            if seg["iscrowd"]:
                continue
            logits = torch.full((k + 1,), -4.0)
            logits[k if seg["unknown"] else cat_ids.index(seg["category_id"])] = 6.0
            rows.append(logits)
            masks.append(torch.where(torch.from_numpy(sample.panoptic == seg["id"]), 6.0, -6.0))
        h, w = sample.ood.shape
        while len(rows) < 12:
            logits = torch.full((k + 1,), -4.0)
            logits[k] = 6.0
            rows.append(logits)
            masks.append(torch.randn(h, w, generator=g) * 2 - 4)
        c = torch.stack(rows) + 0.1 * torch.randn(len(rows), k + 1, generator=g)
        m = torch.stack(masks) + 0.5 * torch.randn(len(rows), h, w, generator=g)
        table[sample.image.tobytes()] = (c, m)
    return lambda image: table[image.tobytes()]


@pytest.fixture
def panoptic_oracle():
    """``panoptic_oracle(ds, seed=0) -> forward`` of :func:`oracle_forward`."""
    return oracle_forward
