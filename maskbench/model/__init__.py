"""Shared Mask2Former forward: pixels -> (pred_logits, pred_masks)."""

from maskbench.model.config import Mask2FormerConfig, build_model, build_model_with_backbone
from maskbench.model.ms_deform_attn import MSDA_BACKENDS, ms_deform_attn, resolve_msda_backend

__all__ = [
    "MSDA_BACKENDS",
    "Mask2FormerConfig",
    "build_model",
    "build_model_with_backbone",
    "ms_deform_attn",
    "resolve_msda_backend",
]
