"""One frame's SMIYC component statistics (per-component sIoU / PPV, per-τ TP / FN / FP) exactly as ``SegEval``.

Protocol (SegmentMeIfYouCan, Chan et al., NeurIPS'21 D&B; road-anomaly-benchmark ``metrics/instance_segmentation.py``
``default_instancer`` + ``segment_metrics``; details in metrics.md §1.3, §8, §9):

* prediction = ``scores > t`` (strict) with numpy 1.x semantics (the numpy of the official numbers): a float16
  map is compared in float16 with ``t`` rounded to float16 (for |t| < 65000), a float32 map in float32; numpy 2
  would compare a float16 map with an ``np.float64`` threshold in float64 and change the components (§9.2);
* void (every label other than 0 / 1) is zeroed in the prediction *before* labelling; GT components are the
  8-connected components of ``label == 1``, predicted components those of the binarised map;
* predicted components smaller than ``min_pred_size`` px, counted on the full image, are dropped; then GT
  components smaller than ``min_gt_size`` px become void, and so does the background if it is smaller (the
  official ``for comp in range(nG + 1)`` loop tests label 0 too); all counts are taken inside the remaining ROI;
* for a GT component k with touching predictions K̂(k) and other GT pixels A(k) (the paper's adjusted IoU)
  ``sIoU(k) = |k ∩ K̂(k)| / |(k ∪ K̂(k)) \\ A(k)|``; for a predicted component j, ``PPV(j) = |j ∩ GT| / |j|``
  (and ``sIoU_pred(j)``, the same formula with the roles swapped, computed but not on the leaderboard);
* per τ in ``np.linspace(0.25, 0.75, 11)``: TP = #(sIoU ≥ τ), FN = #(sIoU < τ), FP = #(PPV < τ) of the frame;
  :class:`~maskbench.metrics.components.ComponentAccumulator` sums them over frames.

Speed: every quantity is read off the per-frame ROI contingency table ``C[g, q] = #px(G = g, Q = q)``
(metrics.md §1.3 "Verified fast equivalent") instead of the official O(#components x #pixels) loops:
``sIoU(i) = ΣC[i, q>0] / (|i| + Σ_{q ∈ K̂(i)} C[0, q])`` and ``sIoU_pred(j) = ΣC[g>0, j] / (|j| + Σ_{g ∈ G(j)} C[g, 0])``
hold as integer identities, so the floats are bit-identical to the official ones. One numba pass binarises the
frame and finds the bounding boxes; ``scipy.ndimage.label`` labels each mask on its box only (same ids as on the
full frame); a second numba pass fills ``C``.
"""

from dataclasses import dataclass
from numbers import Real

import numpy as np
from scipy.ndimage import label

from maskbench.errors import InputError
from maskbench.metrics import _component_kernels as kernels
from maskbench.metrics._validate import check_label_map, check_score_map

TRACKS = {"anomaly": (500, 100), "obstacle": (50, 10)}
"""Per track: (min predicted component size, min GT component size) in pixels (SegEval-AnomalyTrack / -ObstacleTrack)."""

TAUS = np.linspace(0.25, 0.75, 11, endpoint=True)
"""The 11 sIoU / PPV thresholds τ, float64 as in the official code (TAUS[7] == 0.6000000000000001)."""
TAUS.flags.writeable = False

EIGHT = np.ones((3, 3), dtype=bool)
"""8-connectivity of the components (scipy.ndimage.label structure), as the official code labels them."""
SCORE_DTYPES = {np.dtype(np.float16): "float16", np.dtype(np.float32): "float32"}  # the accepted score dtypes


@dataclass(frozen=True)
class FrameComponentStats:
    """Per-frame component statistics; component arrays are in ascending label-id order, like the official lists."""

    gt_ids: np.ndarray     # int64, scipy label ids of the evaluated GT components
    siou_gt: np.ndarray    # float64, sIoU of each GT component
    pred_ids: np.ndarray   # int64, scipy label ids of the evaluated predicted components
    siou_pred: np.ndarray  # float64
    ppv: np.ndarray        # float64, PPV (precision) of each predicted component
    tp: np.ndarray         # int64 (11,), per τ in TAUS
    fn: np.ndarray
    fp: np.ndarray
    skipped: bool          # True for an entirely void frame (no pixel labelled 0 or 1); all arrays empty


def check_score_dtype(score_dtype):
    """``score_dtype`` as a numpy dtype, float16 or float32."""
    try:
        dtype = np.dtype(score_dtype)
    except TypeError as err:
        raise InputError(f"score_dtype: expected float16 or float32, got {score_dtype!r}") from err
    if dtype not in SCORE_DTYPES:
        raise InputError(f"score_dtype: expected float16 or float32, got {dtype}")
    return dtype


def check_sizes(track, min_pred_size, min_gt_size):
    """``(min_pred_size, min_gt_size)`` in pixels: the given values, or the track's (``TRACKS``) where None."""
    if track not in TRACKS:
        raise InputError(f"track: expected one of {sorted(TRACKS)}, got {track!r}")
    sizes = []
    for name, value, default in (("min_pred_size", min_pred_size, TRACKS[track][0]),
                                 ("min_gt_size", min_gt_size, TRACKS[track][1])):
        if value is None:
            value = default
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"{name}: expected a non-negative integer number of pixels, got {value!r}")
        sizes.append(int(value))
    return tuple(sizes)


def check_threshold(threshold, dtype):
    """The threshold as a ``dtype`` value ``u`` with ``scores > u`` == numpy 1.x's ``scores > threshold``.

    numpy 1.x (the official numpy) compares a float map with a float scalar in
    ``result_type(map dtype, min_scalar_type(t))`` (metrics.md §9.2): for a float16 map in float16 when
    |t| < 65000 or t is infinite (t rounded to float16), otherwise in float32 (|t| < 3.4e38, t rounded to float32)
    or float64; for a float32 map in float32 unless |t| >= 3.4e38. When the comparison runs in a wider type every
    map value is exact there, and the largest ``dtype`` value <= the rounded t gives the same answer.
    """
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, Real):
        raise InputError(f"threshold: expected a real number, got {threshold!r}")
    t = float(threshold)
    if np.isnan(t):
        raise InputError("threshold: got NaN")
    if dtype == np.float16 and (-65000 < t < 65000 or np.isinf(t)):
        return np.float16(t)
    if -3.4e38 < t < 3.4e38:
        t = float(np.float32(t))
    with np.errstate(over="ignore"):
        value = np.asarray(t).astype(dtype)[()]
    if float(value) > t:
        value = np.nextafter(value, dtype.type(-np.inf))
    return value


def _label_box(mask, box):
    """8-connected labels of ``mask[box]`` and their number; scipy numbers components in raster order of their
    first pixel, which cropping to the bounding box of ``mask`` preserves."""
    r0, r1, c0, c1 = box
    if r1 == 0:
        return np.zeros((0, 0), dtype=np.int32), 0
    return label(mask[r0:r1, c0:c1], EIGHT)


def _empty_stats(skipped):
    zeros = np.zeros(len(TAUS), dtype=np.int64)
    empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    return FrameComponentStats(empty_i, empty_f, empty_i, empty_f, empty_f, zeros, zeros.copy(), zeros.copy(), skipped)


def prepared_frame_stats(scores, gt, tkey, min_pred_size, min_gt_size, finite_checked):
    """Component statistics of one frame from :func:`prepare_frame`; ``tkey`` is the threshold's key
    (``threshold_key``)."""
    bits = scores.view(np.uint16 if scores.dtype == np.float16 else np.uint32)
    pred_mask, pred_box, gt_box, any_valid, n_nonfinite = kernels.binarise(bits, gt, tkey)  # void zeroed first
    if n_nonfinite and not finite_checked:
        check_score_map(scores)  # raises the standard InputError on NaN / inf
    if not any_valid:
        return _empty_stats(skipped=True)
    pred_box_ids, n_pred = _label_box(pred_mask, pred_box)
    r0, r1, c0, c1 = gt_box
    gt_box_ids, n_gt = _label_box(gt[r0:r1, c0:c1] == 1, (0, r1 - r0, 0, c1 - c0))

    # Predicted components < min_pred_size px on the full grid are dropped; survivors keep their order.
    pred_keep = kernels.label_sizes(pred_box_ids, n_pred) >= min_pred_size
    pred_keep[0] = False
    pred_ids = np.flatnonzero(pred_keep)
    pred_dense = np.zeros(n_pred + 1, dtype=np.int64)
    pred_dense[pred_ids] = np.arange(1, pred_ids.size + 1)

    # GT components < min_gt_size px become void (-1); label 0 is tested too (official range(nG + 1)).
    gt_size = kernels.label_sizes(gt_box_ids, n_gt)
    gt_size[0] = gt.size - gt_size[1:].sum()
    gt_keep = gt_size >= min_gt_size
    gt_ids = np.flatnonzero(gt_keep[1:]) + 1
    gt_dense = np.full(n_gt + 1, -1, dtype=np.int64)
    gt_dense[gt_ids] = np.arange(1, gt_ids.size + 1)
    if gt_keep[0]:
        gt_dense[0] = 0

    # Contingency table over the ROI. Only cells with g > 0 or q > 0 matter, and they lie in the two boxes; a
    # pixel with q > 0 is never original void (zeroed before labelling), one with g > 0 is label 1, so the ROI
    # test reduces to "its GT component (or the background) was not voided".
    table = kernels.contingency(pred_box_ids, np.array(pred_box), pred_dense, gt_box_ids, np.array(gt_box),
                                gt_dense, gt_ids.size + 1, pred_ids.size + 1)
    inner = table[1:, 1:]
    touches = inner > 0
    gt_px = table[1:].sum(axis=1)                      # |k| inside the ROI
    pred_px = table[:, 1:].sum(axis=0)                 # |j| inside the ROI
    gt_inter = inner.sum(axis=1)                       # |k ∩ K̂(k)|
    gt_union = gt_px + touches @ table[0, 1:]          # |(k ∪ K̂(k)) \ A(k)|
    pred_inter = inner.sum(axis=0)                     # |j ∩ (all GT)|
    pred_union = pred_px + table[1:, 0] @ touches      # |(j ∪ G(j)) \ A(j)|

    present = pred_px > 0                              # a kept prediction may lie entirely in void
    pred_ids, pred_inter, pred_union, pred_px = (a[present] for a in (pred_ids, pred_inter, pred_union, pred_px))
    siou_gt = gt_inter.astype(np.float64) / gt_union.astype(np.float64)
    siou_pred = pred_inter.astype(np.float64) / pred_union.astype(np.float64)
    ppv = pred_inter.astype(np.float64) / pred_px.astype(np.float64)
    taus = TAUS[:, None]
    return FrameComponentStats(
        gt_ids=gt_ids.astype(np.int64), siou_gt=siou_gt, pred_ids=pred_ids.astype(np.int64), siou_pred=siou_pred,
        ppv=ppv, tp=(siou_gt >= taus).sum(axis=1), fn=(siou_gt < taus).sum(axis=1), fp=(ppv < taus).sum(axis=1),
        skipped=False)


def prepare_frame(scores, gt, dtype):
    """Validate one frame and cast the scores to ``dtype``: (scores, gt, whether NaN/inf were already ruled out).

    A map already in ``dtype`` is checked for NaN/inf by the binarisation kernel (``np.isfinite`` on float16
    costs more than the whole binarisation). A cast map is checked first: float32 beyond the float16 range then
    becomes +-inf, exactly as the official ``astype(np.float16)`` before saving.
    """
    scores = np.asarray(scores)
    finite_checked = not (scores.dtype == dtype and scores.ndim == 2)
    if finite_checked:
        scores = check_score_map(scores)
        with np.errstate(over="ignore"):
            scores = scores.astype(dtype)
    return scores, check_label_map(gt, scores.shape, name="gt"), finite_checked


def frame_component_stats(scores, gt, threshold, *, track="anomaly", score_dtype=np.float16,
                          min_pred_size=None, min_gt_size=None):
    """Per-component sIoU / PPV and per-τ TP / FN / FP of one frame (official ``default_instancer`` + ``segment_metrics``).

    ``scores``: 2-D float16/float32 map (cast to ``score_dtype``); ``gt``: uint8 labels (0 inlier, 1 anomaly,
    any other value void); ``threshold``: the pixel-level best-F1 threshold, applied as ``scores > threshold``
    in ``score_dtype``. ``min_pred_size`` / ``min_gt_size`` override the track's sizes (see ``TRACKS``).
    """
    dtype = check_score_dtype(score_dtype)
    sizes = check_sizes(track, min_pred_size, min_gt_size)
    tkey = kernels.threshold_key(check_threshold(threshold, dtype))
    scores, gt, finite_checked = prepare_frame(scores, gt, dtype)
    return prepared_frame_stats(scores, gt, tkey, *sizes, finite_checked)
