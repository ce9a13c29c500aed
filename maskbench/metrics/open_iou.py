"""Open-set IoU (DenseHybrid, Grcić et al. ECCV'22) and the matching closed-set mIoU.

Both come from one confusion matrix (rows = ground truth, columns = prediction) accumulated with
``np.bincount(num_classes * gt + pred)`` in int64, as DenseHybrid's ``utils/iou.py`` does. From a matrix
``M`` whose ignore row and column are zeroed::

    IoU_c = TP_c / (TP_c + FP_c + FN_c),   TP_c = M[c, c],  FP_c = colsum_c - TP_c,  FN_c = rowsum_c - TP_c

Open set (``OpenIoU``, DenseHybrid ``OpenIoU(K + 2, ignore_index=K + 1)``): ids ``0..K-1`` known classes,
``K`` anomaly, ``K + 1`` ignore. FP_k therefore contains the anomaly pixels predicted as ``k`` (FP^OOD_k) and
FN_k the ``k`` pixels predicted as anomaly (FN^OOD_k): the paper's
``open-IoU_k = TP_k / (TP_k + FP_k^os + FN_k^os)``. open-mIoU is the mean over the K known classes only
(``np.nanmean(iou[:-2])``); the anomaly IoU is reported separately.

Closed set (``ClosedIoU``, DenseHybrid ``evaluate_closed_dataset``: ``IoU(K + 1, ignore_index=K)``): GT ids
``>= K`` (anomaly and ignore) are folded into ``K`` and zeroed; the prediction is the caller's argmax over the
K known classes.

A class absent from both GT and prediction (after zeroing) has IoU 0/0: it is reported as ``None`` and left
out of the mean, exactly like ``np.nanmean``. If every known class is absent the mean is ``None`` too.
"""

import numpy as np

from maskbench.errors import InputError

OPEN_PROTOCOL = "DenseHybrid open-IoU (OpenIoU(K+2, ignore_index=K+1); open-mIoU = nanmean over the K known classes)"
CLOSED_PROTOCOL = "DenseHybrid closed-set IoU (IoU(K+1, ignore_index=K), GT >= K folded into K; mIoU = nanmean over the K known classes)"


def _check_label_array(values, *, name, high, shape=None):
    """Return ``values`` as a flat int64 array after checking dtype, shape and range ``0..high``."""
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        raise InputError(f"{name}: expected an integer array, got dtype {values.dtype}")
    if shape is not None and values.shape != shape:
        raise InputError(f"{name}: shape {values.shape} differs from the ground-truth shape {shape}")
    if values.size:
        low_seen, high_seen = int(values.min()), int(values.max())
        if low_seen < 0 or high_seen > high:
            raise InputError(f"{name}: values must lie in 0..{high}, found range {low_seen}..{high_seen}")
    return values.reshape(-1).astype(np.int64, copy=False)


def _iou_from_confusion(confusion, ignore):
    """Per-class IoU of a confusion matrix with row and column ``ignore`` zeroed; NaN where 0/0."""
    conf = confusion.copy()
    conf[:, ignore] = 0
    conf[ignore, :] = 0
    tp = np.diag(conf)
    fp = conf.sum(axis=0) - tp
    fn = conf.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return tp / (tp + fp + fn)


def _to_optional(value):
    """A float, or ``None`` for NaN (a metric that cannot be computed)."""
    return None if np.isnan(value) else float(value)


def _nanmean_or_none(values):
    """``np.nanmean`` without its all-NaN warning: ``None`` when every value is NaN."""
    finite = values[~np.isnan(values)]
    return float(np.mean(finite)) if finite.size else None


class _ConfusionAccumulator:
    """A ``num_classes`` x ``num_classes`` int64 confusion matrix (rows = GT, columns = prediction)."""

    def __init__(self, num_known, num_classes):
        num_known = int(num_known)
        if num_known < 1:
            raise InputError(f"num_known: expected at least 1 known class, got {num_known}")
        self.num_known = num_known
        self.num_classes = num_classes
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)

    def _add(self, gt_flat, pred_flat):
        n = self.num_classes
        counts = np.bincount(n * gt_flat + pred_flat, minlength=n * n)
        self.confusion += counts.reshape(n, n)

    def merge(self, other):
        """Add the counts of another accumulator of the same kind and size; returns ``self``."""
        if type(other) is not type(self) or other.num_known != self.num_known:
            raise InputError(
                f"merge: cannot merge {type(other).__name__}({getattr(other, 'num_known', '?')}) "
                f"into {type(self).__name__}({self.num_known})"
            )
        self.confusion += other.confusion
        return self


class OpenIoU(_ConfusionAccumulator):
    """Open-set IoU over K known classes (ids ``0..K-1``), anomaly ``K`` and ignore ``K + 1``.

    ``update(gt, pred)``: ``gt`` in ``0..K+1``, ``pred`` in ``0..K`` (the open-set prediction: argmax over
    known classes with anomalous pixels set to ``K``), same shape. ``compute()`` gives the per-class open IoU,
    open-mIoU (nanmean over the known classes) and the anomaly IoU.
    """

    def __init__(self, num_known):
        super().__init__(num_known, int(num_known) + 2)

    def update(self, gt, pred):
        """Accumulate one image (or batch) of GT ids and open-set predicted ids."""
        k = self.num_known
        gt_arr = np.asarray(gt)
        gt_flat = _check_label_array(gt_arr, name="gt", high=k + 1)
        pred_flat = _check_label_array(pred, name="pred", high=k, shape=gt_arr.shape)
        self._add(gt_flat, pred_flat)

    def compute(self):
        """``{"protocol", "iou": [K], "open_miou", "anomaly_iou", "classes_counted", "note"}``."""
        k = self.num_known
        iou = _iou_from_confusion(self.confusion, k + 1)
        known = iou[:k]
        return {
            "protocol": OPEN_PROTOCOL,
            "iou": [_to_optional(v) for v in known],
            "open_miou": _nanmean_or_none(known),
            "anomaly_iou": _to_optional(iou[k]),
            "classes_counted": int(np.count_nonzero(~np.isnan(known))),
            "note": "IoU is null for a class absent from both GT and prediction; such classes are left out of the mean",
        }


class ClosedIoU(_ConfusionAccumulator):
    """Closed-set IoU over K known classes: GT ids ``>= K`` are folded into the ignored id ``K``.

    ``update(gt, pred)``: ``gt`` in ``0..K+1`` (the same labels as :class:`OpenIoU`), ``pred`` in ``0..K-1``
    (the argmax over the known classes, computed by the caller).
    """

    def __init__(self, num_known):
        super().__init__(num_known, int(num_known) + 1)

    def update(self, gt, pred):
        """Accumulate one image (or batch) of GT ids and closed-set (argmax) predicted ids."""
        k = self.num_known
        gt_arr = np.asarray(gt)
        gt_flat = np.minimum(_check_label_array(gt_arr, name="gt", high=k + 1), k)
        pred_flat = _check_label_array(pred, name="pred", high=k - 1, shape=gt_arr.shape)
        self._add(gt_flat, pred_flat)

    def compute(self):
        """``{"protocol", "iou": [K], "miou", "classes_counted", "note"}``."""
        k = self.num_known
        known = _iou_from_confusion(self.confusion, k)[:k]
        return {
            "protocol": CLOSED_PROTOCOL,
            "iou": [_to_optional(v) for v in known],
            "miou": _nanmean_or_none(known),
            "classes_counted": int(np.count_nonzero(~np.isnan(known))),
            "note": "IoU is null for a class absent from both GT and prediction; such classes are left out of the mean",
        }


def image_weighted_miou(subsets):
    """Combine per-subset mIoUs weighted by image count: ``sum(n_i * m_i) / sum(n_i)``.

    DenseHybrid reports StreetHazards open-mIoU as ``(n_t5 * m_t5 + n_t6 * m_t6) / (n_t5 + n_t6)``, each
    subset evaluated with the threshold calibrated on the other. ``subsets`` is a sequence of
    ``(miou, n_images)`` pairs; a ``None`` mIoU makes the combination ``None``.
    """
    subsets = list(subsets)
    if not subsets:
        raise InputError("subsets: expected at least one (miou, n_images) pair")
    numerator, total = 0.0, 0
    for miou, n_images in subsets:
        if isinstance(n_images, bool) or int(n_images) != n_images or n_images < 1:
            raise InputError(f"subsets: image count must be a positive integer, got {n_images!r}")
        if miou is None:
            return None
        numerator = numerator + n_images * miou
        total += int(n_images)
    return numerator / total
