"""Open-set inference procedures: pure functions over one image's tensors (:mod:`.inference`). The tasks that run
them over a dataset are ``open-semantic`` and ``open-panoptic`` of `bench run` (:mod:`maskbench.benchmark.tasks`)."""

from maskbench.openset.inference import (
    UNKNOWN_CATEGORY, add_unknown_segments, background_map, eam_unknown_instances, half_resolution,
    mine_unknown_instances, open_set_prediction, panoptic_inference, semantic_scores,
)

__all__ = ["UNKNOWN_CATEGORY", "add_unknown_segments", "background_map", "eam_unknown_instances", "half_resolution",
           "mine_unknown_instances", "open_set_prediction", "panoptic_inference", "semantic_scores"]
