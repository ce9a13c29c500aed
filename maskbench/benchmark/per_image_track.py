"""The StreetHazards anomaly track of `bench run`: AP / AUROC / FPR95 pooled over every pixel and averaged per image.

StreetHazards' official numbers (hendrycks/anomaly-seg ``eval_ood.py``) are per-image means: each frame's AP
(``average_precision_score``), AUROC (``roc_auc_score``) and FPR95 at the ROC point whose TPR is closest to 0.95
(``anom_utils.fpr_and_fdr_at_recall``), frames without anomaly or without inlier pixels skipped, ``np.mean`` over
the rest. Later papers (DenseHybrid, RbA, Mask2Anomaly) report the pooled curve instead. Both come from one pass
over the stored frames (:class:`~maskbench.metrics.per_image.PerImageAccumulator`), labelled ``AP``/``AUROC``/``FPR95``
(pooled, exact float32 curve, FPR95 by the run's rule, default ``strict_dropint``) and ``AP_per_image``/
``AUROC_per_image``/``FPR95_per_image`` (Hendrycks). Which pixels are void is the reader's label convention
(``convention=densehybrid|hendrycks|mask2anomaly``), recorded with every result.
"""

from maskbench.benchmark.passes import PerScorer, map_merge
from maskbench.errors import InputError
from maskbench.metrics.per_image import KEYS, PerImageAccumulator

#: Datasets whose anomaly track is evaluated here (their official protocol averages per image).
PER_IMAGE_DATASETS = ("streethazards",)
PROTOCOL = "streethazards-anomaly"
#: Default FPR95 rule of the pooled curve: first ``roc_curve`` (drop_intermediate) point with TPR > 0.95.
POOLED_RULE = "strict_dropint"
DESCRIPTION = ("StreetHazards anomaly track: exact float32 pooled curve over every non-void pixel, and Hendrycks "
               "per-image AP / AUROC / FPR95 (closest point) averaged over the frames with both classes")
FPR95_RULES = {
    "pooled": "{rule} on the pooled exact curve (strict_dropint: first roc_curve(drop_intermediate=True) point "
              "with TPR > 0.95, as RbA / DenseHybrid)",
    "per_image": "closest: the ROC point whose TPR is closest to 0.95 (anom_utils.fpr_and_fdr_at_recall), per "
                 "frame, then np.mean over frames (hendrycks/anomaly-seg eval_ood.py)",
}
#: The table columns of this track.
TABLE_METRICS = ("AP", "AUROC", "FPR95", "AP_per_image", "AUROC_per_image", "FPR95_per_image")


def _chunk(frames, reader, names, rule):
    accs = PerScorer({n: PerImageAccumulator(pooled_fpr95_rule=rule) for n in names})
    for frame in frames:
        where, labels, maps = reader(frame)
        for name, acc in accs.items():
            try:
                acc.update(maps[name], labels, key=frame[0])
            except InputError as err:
                raise InputError(f"{where}, scorer {name}: {err}") from err
    return accs


def per_image_pass(frames, reader, names, rule=POOLED_RULE, *, workers=1, progress=None, combine=lambda acc: acc):
    """``{scorer: PerImageAccumulator.compute()}`` of ``frames`` (``(index, ...)`` read by ``reader``, as
    :func:`~maskbench.benchmark.passes.two_pass` takes them; the index keys the frame); ``combine`` merges the
    other torchrun ranks' accumulators."""
    empty = PerScorer({n: PerImageAccumulator(pooled_fpr95_rule=rule) for n in names})
    if frames:
        bar = progress("pooled + per-image metrics", len(frames)) if progress else None
        try:
            accs = map_merge(_chunk, frames, (reader, names, rule), workers, bar.update if bar else lambda n: None)
        finally:
            if bar:
                bar.close()
    else:
        accs = empty
    return {n: acc.compute() for n, acc in combine(accs).items()}


def track_details(rule, dataset_info):
    """The ``protocol_details`` of a result of this track."""
    return {
        "description": DESCRIPTION,
        "pixel_protocol": "exact",
        "fpr95_rule": rule,
        "fpr95_rules": {"pooled": FPR95_RULES["pooled"].format(rule=rule), "per_image": FPR95_RULES["per_image"]},
        "aggregation": {"AP, AUROC, FPR95": "pooled over every non-void pixel of every frame",
                        "*_per_image": "mean over the frames with anomaly and inlier pixels (Hendrycks)"},
        "score_dtype": "float32",
        "label_convention": dataset_info.get("label_convention"),
        "convention": dataset_info.get("convention"),
        "not_maskomaly_image_mode": "Maskomaly get_scores(mode='image') keeps void pixels, takes FPR at the first "
                                    "TPR > 0.9 and np.nanmean over every frame: a different aggregation",
        "resolution": "scores evaluated at label resolution (no resizing)",
    }


def metric_values(result):
    """The metric keys of one scorer's :func:`per_image_pass` result, with its notes."""
    return {k: result[k] for k in KEYS}, dict(result["notes"])


__all__ = ["DESCRIPTION", "FPR95_RULES", "PER_IMAGE_DATASETS", "POOLED_RULE", "PROTOCOL", "TABLE_METRICS",
           "metric_values", "per_image_pass", "track_details"]
