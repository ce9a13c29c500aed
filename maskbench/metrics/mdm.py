"""MDM, the Maximal Detection Margin (Maskomaly, Ackermann et al. BMVC'23, Eq. 3), computed exactly.

``MDM_d^T = max_{0<=x<y<=1} (y - x) * 1{for all z in [x, y]: d(A > z, B) > T}`` with d = F1 pooled over the
non-void pixels, prediction ``s > z`` (strict) and ``F1 > T`` (strict).

F1 of ``{s > z}`` is piecewise constant in z: with distinct scores ``v_1 < ... < v_m`` it is constant on
``I_0 = [0, v_1)`` (everything predicted), ``I_j = [v_j, v_{j+1})`` (predicted ``{s >= v_{j+1}}``) and
``I_m = [v_m, 1]`` (nothing predicted), where ``F1_j = 2 TP_j / (P + PP_j)`` from suffix sums of the
positive and total counts. MDM is the longest union of consecutive intervals with ``F1 > T``
(reference notes §4; the public grid code ``get_mdm_f1_metric`` only approximates this on 1000 points).
"""

import numpy as np

from maskbench.errors import InputError
from maskbench.metrics._kernels import mdm_scan

MDM_THRESHOLDS = (0.6, 0.7)  # MDM^60 and MDM^70 as reported in the paper


def mdm_from_counts(values, pos, neg, threshold):
    """Exact MDM for distinct ``values`` (ascending, within [0, 1]) with ``pos``/``neg`` pixel counts.

    ``threshold`` is T (a float: returns a float in [0, 1]) or a sequence of T (returns a tuple, one scan). Raises InputError when the values leave [0, 1], are not strictly
    ascending, or there is no positive pixel (F1 undefined).
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):  # exact conversion (numba has no float16)
        values = values.astype(np.float64)
    pos, neg = _counts(pos), _counts(neg)
    if not (values.shape == pos.shape == neg.shape) or values.ndim != 1:
        raise InputError(f"mdm: values, pos and neg must be 1-D of one length, got {values.shape}, {pos.shape}, {neg.shape}")
    if values.size and (values[0] < 0.0 or values[-1] > 1.0):
        raise InputError(f"mdm: scores must lie in [0, 1], got range [{values[0]}, {values[-1]}]")
    if np.any(values[1:] <= values[:-1]):
        raise InputError("mdm: values must be distinct and ascending")
    if int(pos.sum()) == 0:
        raise InputError("mdm: no positive pixels, F1 is undefined")
    ts = np.atleast_1d(np.asarray(threshold, dtype=np.float64))
    out = np.zeros(ts.shape[0])
    mdm_scan(values, pos, neg, ts, out)
    return float(out[0]) if np.ndim(threshold) == 0 else tuple(float(x) for x in out)


def _counts(a):
    a = np.asarray(a)
    return a if a.dtype in (np.int64, np.uint32) else a.astype(np.int64)
