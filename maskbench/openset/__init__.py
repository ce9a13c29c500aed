"""Open-set tracks: open-set semantic segmentation (StreetHazards open-IoU) and open-set panoptic segmentation
(COCO with EOPSN unknown classes). :mod:`.inference` holds the per-image procedures (pure tensor functions),
:mod:`.tracks` the drivers that run them over a dataset and write a results directory."""

from maskbench.openset.inference import (
    UNKNOWN_CATEGORY, add_unknown_segments, background_map, eam_unknown_instances, half_resolution,
    mine_unknown_instances, open_set_prediction, panoptic_inference, semantic_scores,
)
from maskbench.openset.tracks import run_open_panoptic, run_open_semantic

__all__ = ["UNKNOWN_CATEGORY", "add_unknown_segments", "background_map", "eam_unknown_instances", "half_resolution",
           "mine_unknown_instances", "open_set_prediction", "panoptic_inference", "run_open_panoptic",
           "run_open_semantic", "semantic_scores"]
