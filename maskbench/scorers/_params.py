"""Validation of scorer hyperparameters (static checks; query ranges are checked per image)."""

import numbers

from maskbench.errors import InputError


def ids(scorer: str, name: str, value) -> tuple[int, ...]:
    """A list of non-negative integer ids, returned as a tuple."""
    try:
        items = list(value)
    except TypeError:
        raise InputError(f"{scorer}: {name} must be a list of integer ids, got {value!r}") from None
    if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 for i in items):
        raise InputError(f"{scorer}: {name} must hold non-negative integers, got {items!r}")
    return tuple(int(i) for i in items)


def fraction(scorer: str, name: str, value, *, open_interval: bool = False) -> float:
    """A real number in [0, 1] (or (0, 1) with ``open_interval``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not ok:
        interval = "(0, 1)" if open_interval else "[0, 1]"
        raise InputError(f"{scorer}: {name} must be a number in {interval}, got {value!r}")
    return value
