"""Training recipes: how each compared method trains the shared tiny Mask2Former (issue #14's fair comparison).

Mask2Anomaly TPAMI'24 §7.3: "EAM, AEM, Maskomaly and RbA report in their papers results obtained using different
training data and backbones. So, for a fair comparison, we train all the methods on the same data and using the
same ResNet-50 backbone." Here every recipe fine-tunes the same shipped inlier model on the world's ``train``
split with the same budget; what differs is what its reference code changes:

=========  ====================================  =====================  ========  ==============  =========
recipe     reference                             trainable              outliers  label, p/crop   loss
=========  ====================================  =====================  ========  ==============  =========
none       the shipped inlier model (no OoD)     -                      -         -               -
rba-oe     RbA ``swin_b_1dl_rba_ood_coco``       class_embed,           1 object  254, 0.1        std + RbA
                                                 mask_embed                                       hinge
m2a-cl     Mask2Anomaly ``anomaly_ft.yaml``      all but the backbone   1 object  254, 0.2        std + CL
           (GMA twin)
eam-neg    Open-set-M2F ``..._city+vistas_oe``   all                    3 objects 255, 1.0        std
=========  ====================================  =====================  ========  ==============  =========

- rba-oe: RbA ``train_net.py`` ``build_optimizer`` with ``FREEZE_BACKBONE``, ``FREEZE_PIXEL_DECODER`` and
  ``FREEZE_TRANSFORMER_DECODER_EXCEPT_MLP``: only predictor parameters whose name holds ``class_embed`` or
  ``mask_embed`` train; ``losses = [labels, masks, outlier]`` (``maskformer_model.py``); one COCO image's
  objects pasted with ``OOD_PROB 0.1`` and label 254 (``mask_former_semantic_coco_mix_dataset_mapper.py``).
- m2a-cl: ``MODEL.BACKBONE.FREEZE_AT 5`` (the whole ResNet frozen, its norms frozen BatchNorm), everything else
  trains; ``losses = [labels, masks, ood]`` with ``OOD_LOSS margin``; ``mix_object`` pastes one COCO image's
  objects with ``ANOMALY_MIX_RATIO 0.2`` and label 254. Margin 1.0, the released code's ``MARGIN``
  (``mask2former/config.py``; ``anomaly_ft.yaml`` does not override it); the paper reports 0.75 (Table 5(b)). The
  code is what produced the released weights, and with ``s = −max_k S_k`` in [−1, 0] the margin only scales the
  outlier gradient (:func:`~maskbench.train.outlier_losses.m2a_contrastive_loss`). Starts from the GMA twin,
  as Mask2Anomaly fine-tunes its GMA model.
- eam-neg: no freezing (Open-set-M2F ``train_net.py``), standard losses only; every image gets 3 ADE20k regions
  of 96-384 px pasted with the ignore label 255 (``mask_former_semantic_dataset_mapper_traffic_oe.py``), so
  queries covering them are matched to no object.

**Budget, equal across the fine-tunes** (:data:`FINETUNE`): the references fine-tune for 2000 iterations
(RbA, EAM) or 5000 (Mask2Anomaly's config; 4000 in its paper) after base schedules of about 90k, i.e. 2-6 % of
it; the shipped model's base schedule is 9200 iterations (5600 + 3 x 1200), about a tenth of the references'
with half their batch, so the fine-tunes get the references' iterations scaled the same way (:data:`FINETUNE`
states the count), at the base model's batch (8 crops of 128x256), clipping and seed; no warm-up
(``WARMUP_ITERS 0`` in all three), poly decay. Peak learning rate = ``lr_ratio`` x the base model's 8e-4:
Mask2Anomaly and EAM fine-tune at a tenth of their base learning rate (1e-5 after 1e-4); RbA, which trains only
the two heads, at its base learning rate (1e-4 after 1e-4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from maskbench.datasets.world.outliers import PasteConfig
from maskbench.train.losses import SetCriterion
from maskbench.train.matcher import HungarianMatcher
from maskbench.train.outlier_losses import IGNORE_LABEL, OUTLIER_LABEL, OutlierSetCriterion

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BASE_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world.pth"  # recipe ``none``: the shipped inlier model
GMA_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world_gma.pth"  # its GMA twin (``bench train --gma``)
BASE_LR = 8e-4  # peak learning rate of the shipped model's first schedule (TrainConfig.lr)
#: Every fine-tune's schedule (TrainConfig fields): iterations, no warm-up, no restarts.
FINETUNE = {"iterations": 200, "warmup": 1, "refine_iterations": 0, "eval_every": 50}
PASTE_SEED_CODE = 7  # the pasting draws: SeedSequence([seed, PASTE_SEED_CODE]), apart from the crop draws


@dataclass(frozen=True)
class Recipe:
    """One method's training half. trainable: ``all``, ``heads`` (class_embed and mask_embed) or ``no-backbone``;
    loss: the dense outlier loss added to the standard ones (None: standard only)."""

    name: str
    reference: str
    trainable: str = "all"
    loss: str | None = None
    loss_params: dict = field(default_factory=dict)
    paste: PasteConfig | None = None
    lr_ratio: float = 1.0
    gma: bool = False

    @property
    def frozen_backbone(self) -> bool:
        return self.trainable in ("heads", "no-backbone")


RECIPES = {
    "none": Recipe("none", "the shipped inlier-only model (maskbench.train.loop defaults)"),
    "rba-oe": Recipe(
        "rba-oe", "NazirNayal8/RbA ckpts/swin_b_1dl_rba_ood_coco/config.yaml, train_net.py, "
        "mask2former/modeling/criterion.py outlier_loss", trainable="heads", loss="rba",
        loss_params={"inlier_upper": 0.0, "outlier_lower": 5.0},
        paste=PasteConfig(probability=0.1, objects=1, label=OUTLIER_LABEL), lr_ratio=1.0),
    "m2a-cl": Recipe(
        "m2a-cl", "shyam671/Mask2Anomaly configs/cityscapes/semantic-segmentation/anomaly_ft.yaml, "
        "mask2former/modeling/criterion.py loss_ood", trainable="no-backbone", loss="m2a",
        loss_params={"margin": 1.0}, paste=PasteConfig(probability=0.2, objects=1, label=OUTLIER_LABEL),
        lr_ratio=0.1, gma=True),
    "eam-neg": Recipe(
        "eam-neg", "matejgrcic/Open-set-M2F configs/.../maskformer2_swin_large_IN21k_384_bs12_2k_city+vistas_oe.yaml, "
        "mask_former_semantic_dataset_mapper_traffic_oe.py",
        paste=PasteConfig(probability=1.0, objects=3, label=IGNORE_LABEL), lr_ratio=0.1),
}


def variant_weights(recipe: str) -> Path:
    """The shipped weights of a recipe's variant."""
    return BASE_WEIGHTS if recipe == "none" else WEIGHTS_DIR / f"m2f_tiny_world_{recipe}.pth"


def trainable_parameters(model: torch.nn.Module, recipe: Recipe) -> list[str]:
    """Names of the parameters ``recipe`` trains; every other parameter gets ``requires_grad = False``."""
    def trains(name: str) -> bool:
        if recipe.trainable == "heads":
            return name.startswith("sem_seg_head.predictor.") and ("class_embed" in name or "mask_embed" in name)
        if recipe.trainable == "no-backbone":
            return not name.startswith("backbone.")
        return True

    names = []
    for name, param in model.named_parameters():
        param.requires_grad_(trains(name))
        if trains(name):
            names.append(name)
    return names


def build_criterion(recipe: Recipe, num_classes: int, num_points: int) -> SetCriterion:
    """The standard set criterion, with the recipe's dense outlier loss added when it has one."""
    matcher = HungarianMatcher(num_points=num_points)
    if recipe.loss is None:
        return SetCriterion(num_classes, matcher, num_points=num_points)
    return OutlierSetCriterion(num_classes, matcher, num_points=num_points, dense_loss=recipe.loss,
                               dense_params=recipe.loss_params)
