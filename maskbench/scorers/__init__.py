"""Anomaly scorers: ``(class_logits (Q, K+1), mask_logits (Q, H, W)) -> float32 (H, W)``, higher = more anomalous.

>>> from maskbench.scorers import get_scorer, score_all
>>> s = get_scorer("maskomaly", lam=0.6)          # doctest: +SKIP
>>> anomaly = s(class_logits, mask_logits)        # doctest: +SKIP
>>> maps = score_all(["msp", "rba", "eam"], class_logits, mask_logits)  # doctest: +SKIP

Scorers are pure: they never modify their inputs, so one forward output can feed all of them, and
:func:`score_all` shares the softmax, the sigmoid and ``S`` between them.
"""

from maskbench.scorers._registry import Scorer, get_scorer, list_scorers, register_scorer, score_all
# Imported for registration; this order is the order of list_scorers().
from maskbench.scorers import msp, rba, eam, maskomaly, mask2anomaly  # noqa: F401, I001
from maskbench.scorers.calibration import MaskomalyQueries, calibrate_maskomaly, street_prediction

__all__ = [
    "MaskomalyQueries",
    "Scorer",
    "calibrate_maskomaly",
    "get_scorer",
    "list_scorers",
    "register_scorer",
    "score_all",
    "street_prediction",
]
