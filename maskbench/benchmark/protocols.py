"""Evaluation protocols of anomaly segmentation, their aliases, and the details recorded with every result.

"Protocol" has one meaning in maskbench: the named procedure a result was computed with (``results.json``
``entry["protocol"]`` and ``run["protocol"]``), described by its ``protocol_details``. An anomaly-segmentation
protocol (:data:`EVAL_PROTOCOLS`) is a pixel-curve procedure of :mod:`maskbench.metrics.pixel` (recorded as
``pixel_protocol``) plus a component track of :mod:`maskbench.metrics.components`.
"""

from dataclasses import dataclass

import numpy as np

from maskbench.errors import ConfigError
from maskbench.metrics.component_frame import TRACKS
from maskbench.metrics.exact_curve import FPR95_RULES
from maskbench.metrics.pixel import PixelAccumulator


@dataclass(frozen=True)
class EvalProtocol:
    """A named evaluation protocol: pixel-curve protocol + component track."""

    name: str
    pixel: str
    track: str
    description: str

    def pixel_accumulator(self, fpr95_rule="first_geq"):
        return PixelAccumulator(self.pixel, fpr95_rule=fpr95_rule)

    @property
    def score_dtype(self):
        """The dtype scores are evaluated (and stored) in: float16 except for the exact float32 curve."""
        return PixelAccumulator(self.pixel).score_dtype


EVAL_PROTOCOLS = {
    p.name: p
    for p in (
        EvalProtocol("smiyc-anomaly", "smiyc", "anomaly",
                     "official SMIYC AnomalyTrack: float16 scores, per-frame 768-quantile bins, "
                     "components >= 500 px, GT components >= 100 px"),
        EvalProtocol("smiyc-obstacle", "smiyc", "obstacle",
                     "official SMIYC ObstacleTrack: float16 scores, per-frame 768-quantile bins, "
                     "components >= 50 px, GT components >= 10 px"),
        EvalProtocol("exact", "exact", "anomaly",
                     "exact pooled curve on float32 scores (sklearn-identical); "
                     "anomaly-track component filters at the exact best-F1 threshold"),
        EvalProtocol("exact16", "exact16", "anomaly",
                     "exact pooled curve on float16 scores; "
                     "anomaly-track component filters at the exact best-F1 threshold"),
        EvalProtocol("exact-obstacle", "exact", "obstacle",
                     "exact pooled curve on float32 scores (sklearn-identical); "
                     "obstacle-track component filters at the exact best-F1 threshold"),
        EvalProtocol("exact16-obstacle", "exact16", "obstacle",
                     "exact pooled curve on float16 scores; "
                     "obstacle-track component filters at the exact best-F1 threshold"),
    )
}
#: Requested protocols resolved with a dataset's track: ``official`` is the track's SMIYC protocol,
#: ``exact`` / ``exact16`` the exact curve with the track's component sizes.
PROTOCOL_ALIASES = ("official", "exact", "exact16")
PROTOCOL_CHOICES = PROTOCOL_ALIASES + tuple(EVAL_PROTOCOLS)


def get_protocol(name):
    if name not in EVAL_PROTOCOLS:
        raise ConfigError("protocol", f" {name!r}: unknown; choose one of {', '.join(EVAL_PROTOCOLS)}")
    return EVAL_PROTOCOLS[name]


def resolve_protocol(requested, track):
    """The :data:`EVAL_PROTOCOLS` entry for ``requested`` (an alias or a full name) on a dataset of component
    track ``track`` (``"anomaly"`` or ``"obstacle"``)."""
    if requested in (None, "official"):
        return EVAL_PROTOCOLS[f"smiyc-{track}"]
    if requested in ("exact", "exact16"):
        return EVAL_PROTOCOLS[requested if track == "anomaly" else f"{requested}-obstacle"]
    if requested not in EVAL_PROTOCOLS:
        raise ConfigError("protocol", f" {requested!r}: choose one of {', '.join(PROTOCOL_CHOICES)}")
    return EVAL_PROTOCOLS[requested]


def check_fpr95_rule(proto, rule):
    """The FPR95 rule of ``proto`` (None: ``first_geq``); the SMIYC protocols define ``first_geq`` only (the official
    code's rule), the exact ones every rule of :data:`~maskbench.metrics.exact_curve.FPR95_RULES`."""
    rule = "first_geq" if rule is None else rule
    if rule not in FPR95_RULES:
        raise ConfigError("fpr95_rule", f" {rule!r}: unknown; choose one of {', '.join(FPR95_RULES)}")
    if proto.pixel.startswith("smiyc") and rule != "first_geq":
        raise ConfigError("fpr95_rule", f" {rule} with protocol {proto.name}: the SMIYC protocols define only "
                          "first_geq (the official code's rule); the other rules apply to the exact protocols (exact, "
                          "exact16)")
    return rule


def protocol_choice(requested, track, dataset):
    """How the protocol was chosen, in words (``run.json`` ``protocol_choice``)."""
    if requested in (None, "official"):
        return f"official protocol of the {track} track ({dataset})"
    return f"requested: {requested}"


def protocol_details(proto, pixel):
    """How the numbers of ``proto`` were computed (the ``protocol_details`` of every result); ``pixel`` is the
    pixel accumulator or its result (for the FPR95 rule and the score dtype)."""
    min_pred, min_gt = TRACKS[proto.track]
    return {
        "description": proto.description,
        "pixel_protocol": proto.pixel,
        "fpr95_rule": pixel.fpr95_rule,
        "score_dtype": np.dtype(pixel.score_dtype).name,
        "threshold_rule": "best pixel F1 of the split; components binarise with strict s > threshold "
                          "compared in the score dtype",
        "component_track": proto.track,
        "min_pred_component_px": min_pred,
        "min_gt_component_px": min_gt,
        "connectivity": 8,
        "resolution": "scores evaluated at label resolution (no resizing)",
    }


__all__ = ["EVAL_PROTOCOLS", "PROTOCOL_ALIASES", "PROTOCOL_CHOICES", "EvalProtocol", "check_fpr95_rule", "get_protocol",
           "protocol_choice", "protocol_details", "resolve_protocol"]
