"""The shipped tiny models (masked attention, its GMA twin and the outlier-exposure variants): size, provenance,
loading through load_model, their recorded closed-set mIoU and their fitted scorer parameters."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from maskbench.benchmark.embedded import EMBEDDED_GMA_WEIGHTS, EMBEDDED_WEIGHTS
from maskbench.datasets.world import WorldConfig, render_frame
from maskbench.model.checkpoint import load_model
from maskbench.model.predictor import Predictor
from maskbench.scorers import get_scorer
from maskbench.train.recipes import RECIPES, variant_weights
from maskbench.train.val_miou import confusion, miou

RESULTS = Path(__file__).resolve().parents[2] / "results"
SHIPPED = {"masked": (EMBEDDED_WEIGHTS, RESULTS / "training", False),
           "gma": (EMBEDDED_GMA_WEIGHTS, RESULTS / "training_gma", True),
           **{name: (variant_weights(name), RESULTS / f"training_{name}", recipe.gma)
              for name, recipe in RECIPES.items() if name != "none"}}


@pytest.fixture(scope="module", params=sorted(SHIPPED))
def shipped(request):
    weights, training, gma = SHIPPED[request.param]
    return weights, json.loads((training / "summary.json").read_text()), gma


def test_weights_are_small_and_the_trained_ones(shipped):
    weights, summary, _ = shipped
    assert weights.stat().st_size <= 5 * 2**20
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == summary["model_sha256"]


def test_variants_are_their_recipes_from_the_shipped_start():
    """Each outlier-exposure variant records its recipe, the weights it started from and a re-run's sha256."""
    start = {False: EMBEDDED_WEIGHTS, True: EMBEDDED_GMA_WEIGHTS}
    for name, recipe in RECIPES.items():
        if name == "none":
            assert variant_weights(name) == EMBEDDED_WEIGHTS
            continue
        summary = json.loads((RESULTS / f"training_{name}" / "summary.json").read_text())
        cfg = summary["train_config"]
        assert cfg["recipe"] == name and cfg["model"]["gma"] is recipe.gma
        assert Path(cfg["init"]).name == start[recipe.gma].name
        # the recorded re-run of the same command wrote the shipped bits
        assert summary["rerun"]["command"][:4] == ["bench", "train", "--recipe", name]
        assert summary["rerun"]["model_sha256"] == summary["model_sha256"]


def test_recorded_miou_on_first_val_frames(shipped):
    """Recomputed from the frames the world renders (no files needed). Bit-identical on the platform that
    recorded it; across BLAS builds a few near-tied argmax pixels may flip, hence 1e-3."""
    weights, summary, gma = shipped
    recorded = summary["check"]
    model, report = load_model(weights)
    assert report.ok
    assert report.config.gma is gma
    predictor = Predictor(model)
    conf = np.zeros((19, 19), np.int64)
    for i in range(recorded["frames"]):
        scene = render_frame(WorldConfig(), "val", i)
        conf += confusion(predictor.semantic(scene.image).argmax(0).numpy(), scene.semantic, 19)
    assert miou(conf)[0] == pytest.approx(recorded["miou"], abs=1e-3)


def test_shipped_scorer_params_are_valid_for_the_model(shipped):
    weights, summary, _ = shipped
    path = weights.with_suffix(".scorers.json")
    assert path.is_file()
    params = json.loads(path.read_text())["params"]  # the fitted file `bench run` reads beside the weights
    assert params == summary["scorer_params"]
    get_scorer("maskomaly", **params["maskomaly"])  # validates the ids
    assert all(0 <= q < 24 for key in ("accept", "ground") for q in params["maskomaly"][key])
