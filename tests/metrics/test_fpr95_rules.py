"""Every FPR95 rule against scikit-learn's roc_curve plus a literal transcription of the reference function.

The random cases of ``test_pixel_exact.test_matches_sklearn`` cover all rules; here the cases that tell the rules
apart: a TPR of exactly 0.95 reached on a plateau (20 positives), heavy ties, one positive, everything tied, and
no negatives (undefined for every rule).
"""

import numpy as np
import pytest

from maskbench.errors import InputError
from maskbench.metrics.exact_curve import FPR95_RULES
from maskbench.metrics.pixel import PixelAccumulator, pixel_metrics


def frames_of(y_score, y_true, dtype=np.float32):
    return [np.asarray(y_score, dtype)[None]], [np.asarray(y_true, np.uint8)[None]]


def plateau_case():
    """20 positives; ROC (drop_intermediate) points (fp, tp): ... (3, 16) (3, 19) (9, 19) (9, 20) (12, 20): TPR is
    exactly 0.95 (19/20) along a horizontal run from FP 3 to FP 9 (12 negatives)."""
    pos = [10.0 - i * 0.25 for i in range(19)] + [0.5]
    neg = [9.9, 8.7, 6.1, 4.2, 3.0, 2.9, 2.8, 2.7, 2.6, 0.4, 0.3, 0.2]
    return np.array(pos + neg), np.array([1] * 20 + [0] * len(neg))


def diagonal_case():
    """40 positives, 10 negatives; three tied (positive, negative) pairs make the diagonal (2, 36) (3, 37) (4, 38)
    (5, 39) of the full curve, whose inner points roc_curve(drop_intermediate=True) drops."""
    pos = [20.0 - i * 0.25 for i in range(36)] + [10.0, 9.5, 9.0, 1.0]
    neg = [19.9, 12.1, 10.0, 9.5, 9.0, 6.0, 5.0, 4.0, 0.5, 0.25]
    return np.array(pos + neg), np.array([1] * 40 + [0] * len(neg))


def step_case():
    """40 positives: (2, 37) is a kept point with 0.90 < TPR = 0.925 < 0.95; TPR 0.95 (38) first at FP 4."""
    pos = [20.0 - i * 0.25 for i in range(38)] + [2.0, 1.0]
    neg = [19.9, 12.1, 10.9, 10.8, 9.0, 8.0, 7.0, 6.0, 1.5, 0.5]
    return np.array(pos + neg), np.array([1] * 40 + [0] * len(neg))


CASES = {
    "plateau at 0.95": plateau_case(),
    "diagonal through 0.95": diagonal_case(),
    "step above 0.90": step_case(),
    "ties": (np.repeat([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 7), np.tile([0, 1, 0, 1, 1, 0, 1], 6)),
    "one positive": (np.array([0.9, 0.8, 0.7, 0.2]), np.array([0, 1, 0, 0])),
    "all tied": (np.full(9, 0.5), np.array([1, 0, 1, 0, 0, 1, 1, 0, 1])),
    "random": (np.round(np.random.default_rng(3).normal(size=400), 1),
               (np.random.default_rng(4).random(400) < 0.3).astype(int)),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("protocol", ["exact", "exact16"])
def test_each_rule_equals_its_reference(pixref, case, protocol):
    y_score, y_true = CASES[case]
    dtype = np.float32 if protocol == "exact" else np.float16
    ref = pixref.sklearn_reference(np.asarray(y_score, dtype).astype(np.float64), y_true)
    for rule in FPR95_RULES:
        res = pixel_metrics(*frames_of(y_score, y_true), protocol, fpr95_rule=rule)
        assert res.fpr95 == ref[rule], (rule, res.fpr95, ref[rule])
        assert res.fpr95_rule == rule


@pytest.mark.parametrize("case,expected", [
    # first TPR >= 0.95 at FP 3; strictly above only with the 20th positive (FP 9); np.interp on the plateau
    # takes its last point (FP 9); closest scans from full recall down and meets the plateau's end first
    (plateau_case, dict(first_geq=3 / 12, strict_dropint=9 / 12, closest=9 / 12, interp=9 / 12,
                        first_geq_dropint=3 / 12, maskomaly_tpr90=3 / 12)),
    # the full curve reaches 0.95 at (4, 38); the drop-intermediate curve jumps from (2, 36) to (5, 39); interp
    # reads 0.95 on that segment: 2 + 3 * 2/3 (rounded in float64)
    (diagonal_case, dict(first_geq=4 / 10, strict_dropint=5 / 10, closest=4 / 10,
                         interp=float(np.interp(0.95, [0.9, 0.975], [0.2, 0.5])), first_geq_dropint=5 / 10,
                         maskomaly_tpr90=5 / 10)),
    # Maskomaly's rule stops at TPR 0.925 (FP 2), the 95 % rules at FP 4 or later
    (step_case, dict(first_geq=4 / 10, strict_dropint=8 / 10, closest=8 / 10, interp=8 / 10,
                     first_geq_dropint=4 / 10, maskomaly_tpr90=2 / 10)),
])
def test_the_rules_differ_where_the_references_do(case, expected):
    y_score, y_true = case()
    got = {rule: pixel_metrics(*frames_of(y_score, y_true), "exact", fpr95_rule=rule).fpr95 for rule in FPR95_RULES}
    assert got == pytest.approx(expected, abs=1e-15)


def test_no_negatives_leaves_every_rule_undefined():
    for rule in FPR95_RULES:
        res = pixel_metrics(*frames_of([0.2, 0.4], [1, 1]), "exact", fpr95_rule=rule)
        assert res.fpr95 is None and "no inlier" in res.notes["fpr95"]


def test_rules_are_named_and_smiyc_keeps_its_own():
    assert list(FPR95_RULES) == ["first_geq", "strict_dropint", "closest", "interp", "first_geq_dropint",
                                 "maskomaly_tpr90"]
    assert "90" in FPR95_RULES.get("maskomaly_tpr90").description and "Maskomaly" in \
        FPR95_RULES.get("maskomaly_tpr90").description
    for rule in FPR95_RULES.names()[1:]:
        with pytest.raises(InputError, match="defines only 'first_geq'"):
            PixelAccumulator("smiyc", fpr95_rule=rule)
    with pytest.raises(InputError, match="fpr95_rule: expected one of"):
        PixelAccumulator("exact", fpr95_rule="fpr90")
