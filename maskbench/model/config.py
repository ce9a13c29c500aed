"""Architecture description of a Mask2Former semantic-segmentation model (built by :mod:`.build`).

Every field is something a published checkpoint can vary and a loader can infer from tensor shapes
(research notes ``forward.md`` §3.7): the defaults describe the Cityscapes R50 semantic model of
``facebookresearch/Mask2Former`` (``maskformer2_R50_bs16_90k.yaml``). Swin-L, Mask2Anomaly (GMA) and RbA
(one encoder level, one decoder layer) are other settings of the same fields.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from maskbench.errors import InputError
from maskbench.model.ms_deform_attn import MSDA_BACKENDS

FEATURE_STRIDES = {"res2": 4, "res3": 8, "res4": 16, "res5": 32}
IMAGENET_PIXEL_MEAN = (123.675, 116.280, 103.530)
IMAGENET_PIXEL_STD = (58.395, 57.120, 57.375)


@dataclass(frozen=True)
class Mask2FormerConfig:
    """Architecture of one Mask2Former checkpoint (detectron2 config keys in brackets).

    backbone: ``"resnet"`` (d2 ResNet, stride in the 3x3) or ``"swin"`` (d2 Swin).
    resnet_depth: 50 or 101 [MODEL.RESNETS.DEPTH].
    swin_*: Swin embed dim, depths, heads, window, pretrain size [MODEL.SWIN.*]; defaults are Swin-L.
    num_classes: K inlier classes; the class head outputs K+1 (last = void) [SEM_SEG_HEAD.NUM_CLASSES].
    num_queries: Q [MASK_FORMER.NUM_OBJECT_QUERIES].
    dec_layers: decoder layers actually built, i.e. DEC_LAYERS - 1 (9 upstream, 1 for RbA).
    hidden_dim, nheads, dim_feedforward: transformer decoder width, heads, FFN width.
    conv_dim, mask_dim: pixel-decoder width and mask-feature width [SEM_SEG_HEAD.CONVS_DIM/MASK_DIM].
    enc_layers, enc_nheads, enc_dim_feedforward: deformable encoder depth, heads and FFN width
        (the FFN width is hard-coded to 1024 upstream, not DIM_FEEDFORWARD).
    transformer_in_features: backbone maps fed to the deformable encoder, high to low resolution as in
        the yaml (``("res3", "res4", "res5")`` upstream, ``("res5",)`` for RbA). Their count is also the
        number of levels the decoder cross-attends to.
    common_stride: stride of the mask features (4).
    n_points: sampling points per head and level in MSDeformAttn.
    gma: Mask2Anomaly global masked attention (two cross-attention branches) instead of masked attention.
    size_divisibility, pixel_mean, pixel_std: test-time preprocessing (RGB, 0-255 scale).
    msda_backend: deformable-attention backend name, or None for the automatic choice.
    """

    backbone: str = "resnet"
    resnet_depth: int = 50
    swin_embed_dim: int = 192
    swin_depths: tuple[int, ...] = (2, 2, 18, 2)
    swin_num_heads: tuple[int, ...] = (6, 12, 24, 48)
    swin_window_size: int = 12
    swin_pretrain_img_size: int = 384
    num_classes: int = 19
    num_queries: int = 100
    dec_layers: int = 9
    hidden_dim: int = 256
    nheads: int = 8
    dim_feedforward: int = 2048
    conv_dim: int = 256
    mask_dim: int = 256
    enc_layers: int = 6
    enc_nheads: int = 8
    enc_dim_feedforward: int = 1024
    transformer_in_features: tuple[str, ...] = ("res3", "res4", "res5")
    common_stride: int = 4
    n_points: int = 4
    gma: bool = False
    size_divisibility: int = 32
    pixel_mean: tuple[float, float, float] = IMAGENET_PIXEL_MEAN
    pixel_std: tuple[float, float, float] = IMAGENET_PIXEL_STD
    msda_backend: str | None = None

    def __post_init__(self) -> None:
        def bad(field: str, problem: str) -> InputError:
            return InputError(f"Mask2FormerConfig.{field}={getattr(self, field)!r}: {problem}")

        if self.backbone not in ("resnet", "swin"):
            raise bad("backbone", "expected 'resnet' or 'swin'")
        if self.backbone == "resnet" and self.resnet_depth not in (50, 101):
            raise bad("resnet_depth", "expected 50 or 101")
        if self.backbone == "swin" and not (len(self.swin_depths) == len(self.swin_num_heads) == 4):
            raise bad("swin_depths", "Swin needs four stages (depths and num_heads of length 4)")
        feats = tuple(self.transformer_in_features)
        if not feats or any(f not in FEATURE_STRIDES for f in feats):
            raise bad("transformer_in_features", f"expected a non-empty subset of {sorted(FEATURE_STRIDES)}")
        if list(feats) != sorted(set(feats), key=FEATURE_STRIDES.__getitem__):
            raise bad("transformer_in_features", "must be distinct and ordered high to low resolution")
        if self.common_stride not in (4, 8, 16) or self.common_stride >= FEATURE_STRIDES[feats[0]]:
            raise bad("common_stride", "must be a power of two below the finest encoder stride")
        if self.conv_dim != self.hidden_dim:
            raise bad("conv_dim", f"must equal hidden_dim={self.hidden_dim} (no decoder input projection)")
        for name in ("num_classes", "num_queries", "dec_layers", "enc_layers", "n_points", "size_divisibility"):
            if int(getattr(self, name)) < 1:
                raise bad(name, "must be a positive integer")
        for name, heads in (("hidden_dim", self.nheads), ("conv_dim", self.enc_nheads)):
            if getattr(self, name) % heads or getattr(self, name) % 32:
                raise bad(name, "must be divisible by the head count and by 32 (GroupNorm groups)")
        if self.size_divisibility % 32:
            raise bad("size_divisibility", "must be a multiple of 32 (the backbone's output stride)")
        if self.msda_backend is not None:
            if self.msda_backend not in MSDA_BACKENDS:
                raise bad("msda_backend", f"expected one of {sorted(MSDA_BACKENDS)} or None")

    @property
    def num_fpn_levels(self) -> int:
        """FPN adapters below the encoder: log2(finest encoder stride) - log2(common stride)."""
        return int(math.log2(FEATURE_STRIDES[self.transformer_in_features[0]]) - math.log2(self.common_stride))

    def replace(self, **changes) -> Mask2FormerConfig:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
