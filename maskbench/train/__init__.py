"""Training Mask2Former with maskbench's own code: Hungarian matcher, set-prediction losses, training loop.

Follows ``facebookresearch/Mask2Former`` (``matcher.py``, ``criterion.py``): class cost/CE with a no-object
weight, sigmoid BCE and dice on sampled points. The loop trains the embedded tiny model on the miniature
road world's inlier ``train`` split; the same matcher and criterion serve later fine-tuning.
"""

from maskbench.train.losses import SetCriterion, dice_loss, sigmoid_ce_loss
from maskbench.train.matcher import HungarianMatcher, point_sample

__all__ = ["HungarianMatcher", "SetCriterion", "dice_loss", "point_sample", "sigmoid_ce_loss"]
