"""Shared Mask2Former forward: pixels -> (pred_logits, pred_masks), plus the reference pre/post-processing."""

from maskbench.model.checkpoint import LoadReport, load_model
from maskbench.model.build import build_model, build_model_with_backbone
from maskbench.model.config import Mask2FormerConfig
from maskbench.model.mask2former import Mask2Former
# ``ms_deform_attn`` (the function) is not re-exported: it would shadow the submodule of the same name.
from maskbench.model.ms_deform_attn import MSDA_BACKENDS, resolve_msda_backend
from maskbench.model.predictor import Prediction, Predictor, postprocess_mask_logits, semantic_inference

__all__ = [
    "MSDA_BACKENDS",
    "Mask2Former",
    "LoadReport",
    "Mask2FormerConfig",
    "Prediction",
    "Predictor",
    "build_model",
    "build_model_with_backbone",
    "load_model",
    "postprocess_mask_logits",
    "resolve_msda_backend",
    "semantic_inference",
]
