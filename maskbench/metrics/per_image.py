"""Anomaly AP / AUROC / FPR95 pooled over all pixels *and* averaged over images (StreetHazards).

Per image, as hendrycks/anomaly-seg ``eval_ood.py`` (``eval_ood_measure``, ``anom_utils.get_measures``): the
image's non-void pixels alone, AP = ``average_precision_score``, AUROC = ``roc_auc_score``, FPR95 at the ROC point
whose TPR is closest to 0.95 (``fpr_and_fdr_at_recall``); an image without anomaly pixels or without inlier pixels
is skipped (upstream returns ``None`` for it); the reported value is the mean over the remaining images.
Pooled: one exact curve over every non-void pixel of every image (:class:`~maskbench.metrics.pixel.PixelAccumulator`
``"exact"``), FPR95 by ``pooled_fpr95_rule`` (default ``strict_dropint``: the first ``roc_curve`` point with
TPR > 0.95, as RbA / DenseHybrid compute their pooled StreetHazards numbers).

Void: Hendrycks' official numbers have none (the ``hendrycks`` label convention of the ``streethazards``
reader); DenseHybrid voids "other". Maskomaly's ``get_scores(mode="image")`` differs again (void pixels kept,
FPR at the first TPR > 0.9, ``np.nanmean`` over every image): not this aggregation.

Keys as the open-semantic task names them: ``AP``, ``AUROC``, ``FPR95``, ``AP_per_image``, ``AUROC_per_image``,
``FPR95_per_image``. Each mean is ``np.mean`` of the per-image values in frame-key order (upstream's ``np.mean``
over its image loop), whatever order the shards were added or merged in, so merged shards give the same bits.
"""

import numpy as np

from maskbench.metrics.pixel import PixelAccumulator

KEYS = ("AP", "AUROC", "FPR95", "AP_per_image", "AUROC_per_image", "FPR95_per_image")


class PerImageAccumulator:
    """Pooled and per-image (Hendrycks) AP / AUROC / FPR95: ``update(scores, ood)``, ``merge``, ``compute``."""

    def __init__(self, *, pooled_fpr95_rule="strict_dropint"):
        self.pooled = PixelAccumulator("exact", fpr95_rule=pooled_fpr95_rule)
        self.per_image = {}  # frame key -> (AP, AUROC, FPR95), or None for a skipped frame

    def update(self, scores, ood, key=None):
        """Add one frame (``key`` identifies it across shards and orders the per-image means; default: its
        position; keys must be mutually comparable, e.g. frame indices)."""
        key = len(self.per_image) if key is None else key
        if key in self.per_image:
            raise ValueError(f"frame {key!r} was already added")
        self.pooled.update(scores, ood)
        single = PixelAccumulator("exact", fpr95_rule="closest").update(scores, ood).compute()
        both = single.ap is not None and single.auroc is not None and single.fpr95 is not None
        self.per_image[key] = (single.ap, single.auroc, single.fpr95) if both else None
        return self

    def merge(self, other):
        overlap = set(self.per_image) & set(other.per_image)
        if overlap:
            raise ValueError(f"frames {sorted(overlap, key=str)[:5]} are in both shards")
        self.pooled.merge(other.pooled)
        self.per_image.update(other.per_image)
        return self

    def compute(self):
        """``{AP, AUROC, FPR95, AP_per_image, AUROC_per_image, FPR95_per_image, frames, frames_per_image, notes,
        pooled}`` (``pooled``: the pooled :class:`~maskbench.metrics.pixel_result.PixelResult`, for its curves)."""
        pooled = self.pooled.compute()
        used = [self.per_image[k] for k in sorted(self.per_image) if self.per_image[k] is not None]
        result = {"AP": pooled.ap, "AUROC": pooled.auroc, "FPR95": pooled.fpr95,
                  "frames": len(self.per_image), "frames_per_image": len(used), "notes": {}, "pooled": pooled}
        result["notes"].update({k.upper(): v for k, v in pooled.notes.items() if k in ("ap", "auroc", "fpr95")})
        for i, name in enumerate(("AP_per_image", "AUROC_per_image", "FPR95_per_image")):
            result[name] = float(np.mean([v[i] for v in used])) if used else None
        skipped = len(self.per_image) - len(used)
        if skipped:
            result["notes"]["per_image"] = (f"{skipped} of {len(self.per_image)} frame(s) without anomaly or inlier "
                                            "pixels skipped (Hendrycks)")
        return result
