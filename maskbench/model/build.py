"""Builders: a :class:`Mask2FormerConfig` (and optionally a built backbone) -> an untrained :class:`Mask2Former`."""

from __future__ import annotations

from maskbench.model.config import Mask2FormerConfig
from maskbench.model.mask2former import Mask2Former, MaskFormerHead
from maskbench.model.pixel_decoder import MSDeformAttnPixelDecoder
from maskbench.model.resnet import ResNet
from maskbench.model.swin import SwinTransformer
from maskbench.model.transformer_decoder import MultiScaleMaskedTransformerDecoder


def build_model(cfg: Mask2FormerConfig) -> Mask2Former:
    """Build an untrained :class:`Mask2Former` for ``cfg`` (eval mode, detectron2 module names)."""
    if cfg.backbone == "resnet":
        backbone = ResNet(depth=cfg.resnet_depth)
    else:
        backbone = SwinTransformer(
            embed_dim=cfg.swin_embed_dim,
            depths=tuple(cfg.swin_depths),
            num_heads=tuple(cfg.swin_num_heads),
            window_size=cfg.swin_window_size,
            pretrain_img_size=cfg.swin_pretrain_img_size,
        )
    return build_model_with_backbone(cfg, backbone)


def build_model_with_backbone(cfg: Mask2FormerConfig, backbone) -> Mask2Former:
    """Assemble a :class:`Mask2Former` around an already built backbone.

    The backbone maps ``[B, 3, H, W]`` to ``{"res2": ..., "res5": ...}`` and has ``out_channels``
    (feature name -> channels).
    """
    pixel_decoder = MSDeformAttnPixelDecoder(
        in_channels=dict(backbone.out_channels),
        transformer_in_features=tuple(cfg.transformer_in_features),
        conv_dim=cfg.conv_dim,
        mask_dim=cfg.mask_dim,
        enc_layers=cfg.enc_layers,
        enc_nheads=cfg.enc_nheads,
        enc_dim_feedforward=cfg.enc_dim_feedforward,
        n_points=cfg.n_points,
        common_stride=cfg.common_stride,
        msda_backend=cfg.msda_backend,
    )
    predictor = MultiScaleMaskedTransformerDecoder(
        num_classes=cfg.num_classes,
        num_queries=cfg.num_queries,
        num_feature_levels=len(cfg.transformer_in_features),
        dec_layers=cfg.dec_layers,
        hidden_dim=cfg.hidden_dim,
        nheads=cfg.nheads,
        dim_feedforward=cfg.dim_feedforward,
        mask_dim=cfg.mask_dim,
        gma=cfg.gma,
    )
    model = Mask2Former(
        backbone=backbone,
        sem_seg_head=MaskFormerHead(pixel_decoder=pixel_decoder, predictor=predictor),
    )
    return model.eval()
