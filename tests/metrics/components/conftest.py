"""Helpers for the component-metric tests: the literal official transcription and a random frame generator.

The transcription lives in ``benchmarks/_official_components.py`` (one copy, shared with the benchmark) and is
imported here by file path; it shares no code with ``maskbench.metrics.components``.
"""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "_official_components.py"
_spec = importlib.util.spec_from_file_location("_official_components", _PATH)
official = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(official)


def official_labels(gt):
    """What the official loader hands to the metric: 0 and 1 kept, every other label value becomes 255."""
    out = np.full(gt.shape, 255, dtype=np.uint8)
    out[gt == 0] = 0
    out[gt == 1] = 1
    return out


def float16_rounding_up(rng, low=0.3, high=0.7):
    """A float64 threshold t whose float16 rounding lies strictly above t (so float64 and float16 ``>`` differ
    on pixels equal to float16(t))."""
    while True:
        t = float(rng.uniform(low, high))
        if float(np.float16(t)) > t:
            return t


def random_frame(rng, *, height=None, width=None, dtype=np.float16, scale=1):
    """Seeded synthetic frame: (scores, gt, threshold).

    GT blobs (rectangles and discs, some touching, some smaller than ``min_gt``), void rectangles with label 255
    and other non-0/1 values (``scale`` multiplies blob sizes), scores = low noise + shifted/overlapping high blobs + salt noise + false-positive
    blobs, and pixels exactly at the threshold in the score dtype. For float16 the threshold rounds up in float16,
    so a float64 comparison would select the at-threshold pixels too.
    """
    h = int(height or rng.integers(24, 72))
    w = int(width or rng.integers(24, 96))
    yy, xx = np.mgrid[0:h, 0:w]
    gt = np.zeros((h, w), dtype=np.uint8)
    for _ in range(int(rng.integers(0, 7))):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        if rng.random() < 0.5:
            r = rng.integers(0, 6) * scale
            gt[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
        else:
            gt[cy:cy + rng.integers(1, 12) * scale, cx:cx + rng.integers(1, 12) * scale] = 1
    for _ in range(int(rng.integers(0, 3))):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        gt[cy:cy + rng.integers(1, h // 2 + 2), cx:cx + rng.integers(1, w // 3 + 2)] = rng.choice([255, 2, 254, 77])

    if dtype == np.float16:
        threshold = float16_rounding_up(rng)
    else:
        threshold = float(rng.uniform(0.3, 0.7))
    at = dtype(threshold)  # the threshold in the score dtype
    scores = rng.uniform(0.0, 0.3, size=(h, w))
    high = rng.uniform(threshold, 1.0, size=(h, w))
    anomaly = gt == 1
    shifted = np.roll(anomaly, (int(rng.integers(-3, 4)), int(rng.integers(-3, 4))), axis=(0, 1))
    cover = shifted & (rng.random((h, w)) < rng.uniform(0.6, 1.0))
    scores[cover] = high[cover]
    for _ in range(int(rng.integers(0, 5))):  # false-positive blobs, some crossing void
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        scores[cy:cy + rng.integers(1, 10) * scale, cx:cx + rng.integers(1, 10) * scale] = rng.uniform(threshold, 1.0)
    salt = rng.random((h, w)) < rng.uniform(0.0, 0.08)
    scores[salt] = high[salt]
    scores = scores.astype(dtype)
    scores[rng.random((h, w)) < 0.05] = at  # exactly at the threshold: never predicted (strict >)
    scores[cover & (rng.random((h, w)) < 0.1)] = at
    return scores, gt, threshold


@pytest.fixture(scope="session")
def helpers():
    """The transcription and generators, as one namespace (pytest's importlib mode cannot import conftest)."""
    return SimpleNamespace(official=official, official_labels=official_labels, random_frame=random_frame,
                           float16_rounding_up=float16_rounding_up)
