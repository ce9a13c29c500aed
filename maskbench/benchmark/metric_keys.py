"""Every metric key a result may hold: its range and its direction (the one place for both).

Keys are those of RESULTS_SCHEMA.md: the `bench evaluate` keys, the open-semantic keys
(``KEYS`` of :mod:`maskbench.benchmark.tasks.open_semantic`), the open-panoptic keys (``KEYS`` of
:mod:`maskbench.benchmark.tasks.open_panoptic`) and the closed-set semantic keys (``mIoU``, ``iIoU``, ``IoU``).

* fractions in [0, 1] (stored as fractions, printed x100): AP, AUROC, FPR95, sIoU, PPV, F1, MDM, IoUs, PQ/SQ/RQ;
* counts, integers >= 0: ``images``, ``labelled``, ``n_pixels``, ``n_positive``;
* raw scores, any finite number (score units of the scorer): ``threshold``;
* per-class mappings ``{class name: fraction or null}``: ``IoU``. Tables and golden checks address one class
  as ``IoU.<class>`` (e.g. ``IoU.road``, a fraction like any other); the mapping itself is never ranked.

A value outside its range is a result that was written wrongly (e.g. x100 percentages stored as
fractions), so tables and golden checks refuse it instead of ranking it.
"""

_PANOPTIC = tuple(f"{m}{s}" for s in ("", "_th", "_st", "_unk") for m in ("PQ", "SQ", "RQ"))

#: Metrics stored as fractions in [0, 1].
FRACTIONS = frozenset({
    "AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70",
    "AP_per_image", "AUROC_per_image", "FPR95_per_image", "mIoU_closed", "open_mIoU_t5", "open_mIoU_t6",
    "open_mIoU", "anomaly_IoU_t5", "anomaly_IoU_t6", "mIoU", "iIoU", *_PANOPTIC,
})
#: Metrics that count things: integers >= 0.
COUNTS = frozenset({"images", "labelled", "n_pixels", "n_positive"})
#: Metrics in score units: any finite number.
SCORES = frozenset({"threshold"})
#: Metrics whose value is a mapping ``{class name: fraction or None}``; one class is ``<key>.<class name>``.
PER_CLASS = frozenset({"IoU"})
#: Every metric key a result may hold.
KNOWN_METRICS = FRACTIONS | COUNTS | SCORES | PER_CLASS
#: Metrics where a lower value is better; every other fraction is higher-better (counts and scores are not ranked).
LOWER_IS_BETTER = frozenset({"FPR95", "FPR95_per_image"})


def known_list():
    """The known metric keys, sorted, as one line of text for error messages."""
    return ", ".join(sorted(KNOWN_METRICS, key=str.lower))


def split_class(name):
    """``("IoU", "road")`` for ``"IoU.road"`` (a class of a :data:`PER_CLASS` metric), else ``(name, None)``."""
    base, dot, cls = str(name).partition(".")
    return (base, cls) if dot and base in PER_CLASS and cls else (name, None)


def is_known(name):
    """Whether ``name`` is a metric key or one class of a per-class metric (``IoU.road``)."""
    return name in KNOWN_METRICS or split_class(name)[1] is not None


def lookup(metrics, name):
    """The value of ``name`` in a result's ``metrics``: ``metrics[name]``, or for ``IoU.road`` the class's value
    (``None`` when the result has no such key or class)."""
    base, cls = split_class(name)
    if cls is None:
        return metrics.get(name)
    per_class = metrics.get(base)
    return per_class.get(cls) if isinstance(per_class, dict) else None


def scalar_names(metrics):
    """The rankable names of a result's ``metrics``: its scalar keys, and ``IoU.<class>`` for each class of a
    per-class mapping."""
    names = []
    for key, value in metrics.items():
        if key in PER_CLASS and isinstance(value, dict):
            names += [f"{key}.{cls}" for cls in value]
        elif key not in PER_CLASS:
            names.append(key)
    return names


def unknown_metric_message(name):
    """"unknown metric 'ap' (did you mean AP?); known metrics: ..." for a key not in :data:`KNOWN_METRICS`."""
    close = [k for k in KNOWN_METRICS if k.lower() == str(name).lower()]
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"unknown metric {name!r}{hint}; known metrics: {known_list()}"


def value_problem(name, value):
    """Why ``value`` cannot be metric ``name`` (a sentence), or ``None`` when it can.

    ``value`` is a JSON number or ``None`` (undefined: always allowed); for a :data:`PER_CLASS` key a mapping
    ``{class name: fraction or None}``; ``name`` must be known (``IoU.road`` is a fraction).
    """
    if not is_known(name):
        return unknown_metric_message(name)
    if value is None:
        return None
    if name in PER_CLASS:
        if not isinstance(value, dict) or not all(isinstance(k, str) and k for k in value):
            return f"metric {name!r} is {value!r}; expected a mapping {{class name: fraction or null}}"
        return next((p for cls, v in value.items() if (p := value_problem(f"{name}.{cls}", v))), None)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value in (
            float("inf"), float("-inf")):
        return f"metric {name!r} is {value!r}; expected a finite number or null"
    if (name in FRACTIONS or split_class(name)[1] is not None) and not 0.0 <= value <= 1.0:
        return (f"metric {name!r} is {value!r}; expected a fraction in [0, 1] (results store fractions, not "
                "percentages)")
    if name in COUNTS and (value < 0 or value != int(value)):
        return f"metric {name!r} is {value!r}; expected a count (an integer >= 0)"
    return None
