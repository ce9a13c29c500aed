"""Every metric key a result may hold: its range and its direction (the one place for both).

Keys are those of RESULTS_SCHEMA.md: the `bench evaluate` keys, the open-semantic keys
(``KEYS`` of :mod:`maskbench.benchmark.tasks.open_semantic`) and the open-panoptic keys (``KEYS`` of
:mod:`maskbench.benchmark.tasks.open_panoptic`).

* fractions in [0, 1] (stored as fractions, printed x100): AP, AUROC, FPR95, sIoU, PPV, F1, MDM, IoUs, PQ/SQ/RQ;
* counts, integers >= 0: ``images``, ``labelled``, ``n_pixels``, ``n_positive``;
* raw scores, any finite number (score units of the scorer): ``threshold``.

A value outside its range is a result that was written wrongly (e.g. x100 percentages stored as
fractions), so tables and golden checks refuse it instead of ranking it.
"""

_PANOPTIC = tuple(f"{m}{s}" for s in ("", "_th", "_st", "_unk") for m in ("PQ", "SQ", "RQ"))

#: Metrics stored as fractions in [0, 1].
FRACTIONS = frozenset({
    "AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70",
    "AP_per_image", "AUROC_per_image", "FPR95_per_image", "mIoU_closed", "open_mIoU_t5", "open_mIoU_t6",
    "open_mIoU", "anomaly_IoU_t5", "anomaly_IoU_t6", *_PANOPTIC,
})
#: Metrics that count things: integers >= 0.
COUNTS = frozenset({"images", "labelled", "n_pixels", "n_positive"})
#: Metrics in score units: any finite number.
SCORES = frozenset({"threshold"})
#: Every metric key a result may hold.
KNOWN_METRICS = FRACTIONS | COUNTS | SCORES
#: Metrics where a lower value is better; every other fraction is higher-better (counts and scores are not ranked).
LOWER_IS_BETTER = frozenset({"FPR95", "FPR95_per_image"})


def known_list():
    """The known metric keys, sorted, as one line of text for error messages."""
    return ", ".join(sorted(KNOWN_METRICS, key=str.lower))


def unknown_metric_message(name):
    """"unknown metric 'ap' (did you mean AP?); known metrics: ..." for a key not in :data:`KNOWN_METRICS`."""
    close = [k for k in KNOWN_METRICS if k.lower() == str(name).lower()]
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown metric {name!r}{hint}; known metrics: {known_list()}"


def value_problem(name, value):
    """Why ``value`` cannot be metric ``name`` (a sentence), or ``None`` when it can.

    ``value`` is a JSON number or ``None`` (undefined: always allowed); ``name`` must be known.
    """
    if name not in KNOWN_METRICS:
        return unknown_metric_message(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
            float("inf"), float("-inf")):
        return f"metric {name!r} is {value!r}; expected a finite number or null"
    if name in FRACTIONS and not 0.0 <= value <= 1.0:
        return (f"metric {name!r} is {value!r}; expected a fraction in [0, 1] (results store fractions, not "
                "percentages)")
    if name in COUNTS and (value < 0 or value != int(value)):
        return f"metric {name!r} is {value!r}; expected a count (an integer >= 0)"
    return None
