"""Anomaly scorers: ``(class_logits (Q, K+1), mask_logits (Q, H, W)) -> float32 (H, W)``, higher = more anomalous.

>>> from maskbench.scorers import get_scorer, score_all
>>> s = get_scorer("maskomaly", lam=0.6)          # doctest: +SKIP
>>> anomaly = s(class_logits, mask_logits)        # doctest: +SKIP
>>> maps = score_all(["msp", "rba", "eam"], class_logits, mask_logits)  # doctest: +SKIP

Scorers are pure: they never modify their inputs, so one forward output can feed all of them, and
:func:`score_all` shares the softmax, the sigmoid and ``S`` between the per-pixel ones.

Writing a scorer (complete examples: ``examples/my_scorer.py``, ``examples/smoothed_msp.py``): a per-pixel
scorer is ``fn(queries: Queries, *, **hyperparameters) -> chunk function`` (the chunk function maps a
:class:`Pixels` context to one score per pixel) registered with :func:`register_scorer`; a whole-map scorer is
``fn(class_logits, mask_logits, *, **hyperparameters) -> (H, W)`` registered with :func:`register_map_scorer`.
Load a plug-in file or module with :func:`load_plugins`; installed packages use the entry-point group
``maskbench.scorers``. Everything a plug-in needs is exported here.
"""

from maskbench.scorers._common import ChunkScore, Pixels, Queries, max_weighted, one_minus
from maskbench.scorers._registry import (
    ENTRY_POINT_GROUP, PluginError, Scorer, get_scorer, list_scorers, plugin_errors, register_map_scorer,
    register_scorer, score_all,
)
# Imported for registration; this order is the order of list_scorers().
from maskbench.scorers import msp, rba, eam, maskomaly, mask2anomaly  # noqa: F401, I001
from maskbench.scorers import energy, entropy, softmax_msp, void, uno  # noqa: F401, I001
from maskbench.scorers.calibration import MaskomalyQueries, calibrate_maskomaly, street_prediction
from maskbench.scorers.plugins import (
    PluginRecord, ScorerInfo, describe_scorers, format_scorers, load_plugin, load_plugins,
)
from maskbench.scorers.smoothing import SMOOTHINGS

__all__ = [
    "ENTRY_POINT_GROUP",
    "SMOOTHINGS",
    "ChunkScore",
    "MaskomalyQueries",
    "Pixels",
    "PluginError",
    "PluginRecord",
    "Queries",
    "Scorer",
    "ScorerInfo",
    "calibrate_maskomaly",
    "describe_scorers",
    "format_scorers",
    "get_scorer",
    "list_scorers",
    "load_plugin",
    "load_plugins",
    "max_weighted",
    "one_minus",
    "plugin_errors",
    "register_map_scorer",
    "register_scorer",
    "score_all",
    "street_prediction",
]
