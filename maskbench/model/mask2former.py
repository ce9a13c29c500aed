"""Mask2Former meta-architecture: ``backbone`` -> ``sem_seg_head.pixel_decoder`` -> ``sem_seg_head.predictor``.

Attribute names follow detectron2 (``MaskFormer`` / ``MaskFormerHead``) so official checkpoints load with
``load_state_dict(strict=True)`` after dropping known-harmless keys. Pre- and post-processing live in
:mod:`maskbench.model.predictor`.
"""

from __future__ import annotations

from torch import Tensor, nn

from maskbench.errors import InputError


class MaskFormerHead(nn.Module):
    """Holds ``pixel_decoder`` and ``predictor`` (the transformer decoder)."""

    def __init__(self, *, pixel_decoder: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        mask_features, multi_scale_features = self.pixel_decoder(features)
        return self.predictor(multi_scale_features, mask_features)


class Mask2Former(nn.Module):
    """``pixels [B, 3, H, W]`` (normalised, H and W multiples of 32) ->
    ``{"pred_logits": [B, Q, K+1], "pred_masks": [B, Q, H/4, W/4]}`` (last decoder layer, logits)."""

    def __init__(self, *, backbone: nn.Module, sem_seg_head: MaskFormerHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head

    def forward(self, pixels: Tensor) -> dict[str, Tensor]:
        if pixels.dim() != 4 or pixels.shape[1] != 3 or pixels.shape[2] % 32 or pixels.shape[3] % 32:
            raise InputError(f"pixels: expected [B, 3, H, W] with H, W multiples of 32, got {tuple(pixels.shape)}")
        return self.sem_seg_head(self.backbone(pixels))
