"""The shipped tiny model: size, provenance, loading through load_model, and its recorded closed-set mIoU."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from maskbench.benchmark.embedded import EMBEDDED_SCORER_PARAMS, EMBEDDED_WEIGHTS, embedded_scorer_params
from maskbench.datasets.world import WorldConfig, render_frame
from maskbench.model.checkpoint import load_model
from maskbench.model.predictor import Predictor
from maskbench.scorers import get_scorer
from maskbench.train.loop import confusion, miou

TRAINING = Path(__file__).resolve().parents[2] / "results" / "training"


@pytest.fixture(scope="module")
def summary():
    return json.loads((TRAINING / "summary.json").read_text())


def test_weights_are_small_and_the_trained_ones(summary):
    assert EMBEDDED_WEIGHTS.stat().st_size <= 20 * 2**20
    assert hashlib.sha256(EMBEDDED_WEIGHTS.read_bytes()).hexdigest() == summary["model_sha256"]


def test_recorded_miou_on_first_val_frames(summary):
    """Recomputed from the frames the world renders (no files needed). Bit-identical on the platform that
    recorded it; across BLAS builds a few near-tied argmax pixels may flip, hence 1e-3."""
    recorded = summary["check"]
    model, report = load_model(EMBEDDED_WEIGHTS)
    assert report.ok
    predictor = Predictor(model)
    conf = np.zeros((19, 19), np.int64)
    for i in range(recorded["frames"]):
        scene = render_frame(WorldConfig(), "val", i)
        conf += confusion(predictor.semantic(scene.image).argmax(0).numpy(), scene.semantic, 19)
    assert miou(conf)[0] == pytest.approx(recorded["miou"], abs=1e-3)


def test_shipped_scorer_params_are_valid_for_the_model():
    params = embedded_scorer_params()
    assert EMBEDDED_SCORER_PARAMS.is_file()
    get_scorer("maskomaly", **params["maskomaly"])  # validates the ids
    assert all(0 <= q < 24 for key in ("accept", "ground") for q in params["maskomaly"][key])
