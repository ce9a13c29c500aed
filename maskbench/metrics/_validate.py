"""Input validation shared by every metric: checked once at the door, trusted afterwards."""

import numpy as np

from maskbench.errors import InputError


def check_score_map(scores, *, name="scores"):
    """Return ``scores`` as a 2-D float16/float32 array; reject other dtypes, shapes, NaN and inf."""
    scores = np.asarray(scores)
    if scores.dtype not in (np.float16, np.float32):
        raise InputError(f"{name}: expected a float16 or float32 array, got dtype {scores.dtype}")
    if scores.ndim != 2:
        raise InputError(f"{name}: expected a 2-D score map (H, W), got shape {scores.shape}")
    if not np.isfinite(scores).all():
        bad = int(np.count_nonzero(~np.isfinite(scores)))
        raise InputError(f"{name}: {bad} score(s) are NaN or infinite")
    return scores


def check_label_map(labels, shape, *, name="labels"):
    """Return ``labels`` as a 2-D uint8 array of ``shape`` (0 inlier, 1 anomaly, anything else void)."""
    labels = np.asarray(labels)
    if labels.dtype != np.uint8:
        raise InputError(f"{name}: expected a uint8 label map (0 inlier, 1 anomaly, 255 void), got dtype {labels.dtype}")
    if labels.shape != tuple(shape):
        raise InputError(f"{name}: label shape {labels.shape} differs from score shape {tuple(shape)}")
    return labels
