"""Scorer parameters that depend on the checkpoint, fitted for a trained model on held-out frames.

Maskomaly's accept and ground query ids (:func:`maskbench.scorers.calibrate_maskomaly`) are fitted on
anomaly frames of a *different* world seed than the benchmark's (``WorldConfig(seed=1)``), so the
evaluation frames never inform them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from maskbench.datasets.world import WorldConfig, render_frame
from maskbench.fileio import write_text

CALIBRATION_WORLD = WorldConfig(seed=1)


def ood_labels(scene) -> np.ndarray:
    """0 inlier, 1 anomaly, 255 void (ego vehicle and unlabelled pixels), as the SMIYC ground truth."""
    gt = np.where(scene.semantic == 255, 255, 0).astype(np.uint8)
    gt[scene.anomalies > 0] = 1
    return gt


@torch.no_grad()
def fit_maskomaly(model_path: Path, frames: int = 20, world: WorldConfig = CALIBRATION_WORLD) -> dict:
    """Maskomaly query sets of the checkpoint at ``model_path`` from ``frames`` anomaly frames of ``world``
    (accept: IoU with the anomalies; ground: IoU with the model's road prediction, none if it predicts no road)."""
    from maskbench.model.checkpoint import load_model
    from maskbench.model.predictor import Predictor
    from maskbench.scorers import calibrate_maskomaly, street_prediction

    model, _ = load_model(model_path)
    predictor = Predictor(model)
    probs, gts, streets = [], [], []
    for i in range(frames):
        scene = render_frame(world, "anomaly", i)
        pred = predictor(scene.image)
        probs.append(pred.mask_logits.sigmoid())
        gts.append(torch.from_numpy(ood_labels(scene)))
        streets.append(street_prediction(pred.class_logits, pred.mask_logits))
    # a model that predicts no road on labelled ground (e.g. barely trained) gets no ground queries
    has_street = any(bool((s.numpy() & (g.numpy() != 255)).any()) for s, g in zip(streets, gts))
    fitted = calibrate_maskomaly(probs, gts, streets if has_street else None)
    return {"params": {"maskomaly": fitted.params()},
            "fit": {"maskomaly": fitted.to_dict()},
            "calibration_frames": {"world_seed": world.seed, "split": "anomaly", "frames": frames}}


def write_scorer_params(model_path: Path, out: Path, frames: int = 20) -> dict:
    fitted = fit_maskomaly(Path(model_path), frames)
    write_text(out, json.dumps(fitted, indent=1))
    return fitted
