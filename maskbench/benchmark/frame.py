"""One frame through the forward source: its views (test-time augmentation) and the maps computed on them.

``tta="flip"`` follows Mask2Anomaly (``anomaly_utils/anomaly_inference.py``, the only reference with TTA): the
image and its horizontal flip each get their own forward and their own maps (a scorer's refinement included);
the flipped maps are flipped back and the two are averaged, ``(s + flip(s_lr)) / 2``. Averaging maps rather than
forward outputs keeps every scorer's definition unchanged.
"""

import numpy as np
import torch

from maskbench.benchmark.cache import VIEWS
from maskbench.errors import ConfigError, InputError
from maskbench.metrics.pixel import FLOAT16_OVERFLOW
from maskbench.scorers import score_all

TTA_MODES = ("none", "flip")
TTA_RULES = {"none": "none",
             "flip": "mean of the maps of the image and of its horizontal flip (flipped back), as Mask2Anomaly"}


def check_tta(tta):
    if tta not in TTA_MODES:
        raise ConfigError("tta", f" {tta!r}: choose one of {', '.join(TTA_MODES)}")
    return VIEWS if tta == "flip" else VIEWS[:1]


class MapBuffers:
    """Maps reused frame after frame (``score_all(out=...)``): no fresh allocation per map and frame to fault in.

    The maps a frame returns are overwritten by the next frame's, so a caller consumes them first."""

    def __init__(self):
        self.key, self.maps = None, None

    def get(self, names, shape, device):
        """Maps ``name -> float32 shape`` on ``device`` for the labels ``names``; the same tensors while the key
        holds."""
        key = (tuple(names), tuple(shape), str(device))
        if key != self.key:
            self.key = key
            self.maps = {name: torch.empty(tuple(shape), dtype=torch.float32, device=device) for name in names}
        return self.maps


def over_views(sample, source, tta, compute):
    """``{key: numpy array}`` of ``compute(class_logits, mask_logits, single_view)`` (``{key: tensor [..., H, W]}``)
    averaged over the views of ``tta``, flipped maps flipped back along the width."""
    views = check_tta(tta)
    image_hash = source.image_hash(sample.image)
    total = None
    for view in views:
        image = sample.image if view == "none" else np.ascontiguousarray(sample.image[:, ::-1])
        class_logits, mask_logits = source(sample.id, image_hash, image, view)
        try:
            with torch.no_grad():
                maps = compute(class_logits, mask_logits, len(views) == 1)
        except InputError as err:
            raise InputError(f"frame {sample.id!r} ({view} view): {err}") from err
        if view == "hflip":
            maps = {name: m.flip(-1) for name, m in maps.items()}
        total = maps if total is None else {name: total[name] + maps[name] for name in maps}
    if len(views) > 1:
        total = {name: m / len(views) for name, m in total.items()}
    return {name: m.cpu().numpy() for name, m in total.items()}


def score_frame(sample, source, scorers, tta, buffers=None):
    """``{scorer: float32 (H, W) numpy map}`` of one frame, averaged over the TTA views; with one view the maps
    are written into ``buffers`` (a :class:`MapBuffers`) when given."""

    def compute(class_logits, mask_logits, single):
        out = buffers.get(scorers, mask_logits.shape[1:], mask_logits.device) if buffers and single else None
        return score_all(scorers, class_logits, mask_logits, out=out)

    return over_views(sample, source, tta, compute)


def check_range(maps, score_dtype, frame_id):
    """Refuse scores (of a registered custom scorer) that are not finite or that ``score_dtype`` (float16) would
    make infinite."""
    limit = FLOAT16_OVERFLOW if score_dtype == np.float16 else np.inf
    for name, m in maps.items():
        if not np.isfinite(m).all():
            raise InputError(f"frame {frame_id!r}: scorer {name} produced NaN or infinite scores")
        if np.abs(m).max() >= limit:
            raise InputError(f"frame {frame_id!r}: scorer {name} has scores beyond float16's range (max |s| = "
                             f"{float(np.abs(m).max())}), which this protocol stores in float16; use the exact "
                             "(float32) protocol")


def overlay_dtype(scores):
    """float16 for ``maps/`` (RESULTS_SCHEMA.md), float32 where float16 would overflow (custom scorers)."""
    return scores.astype(np.float16) if np.abs(scores).max() < FLOAT16_OVERFLOW else scores


__all__ = ["TTA_MODES", "TTA_RULES", "MapBuffers", "check_range", "check_tta", "over_views", "overlay_dtype",
           "score_frame"]
