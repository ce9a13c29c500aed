"""Fitting Maskomaly's query sets for a checkpoint: accept queries (Maskomaly BMVC'23 §3.2) and ground queries.

For each image and query the mask is binarised, ``B_q = σ(M_q) > t_bin`` (``T_MASK = 0.9`` in the reference
``maskomaly/anomaly_overlap.py``), and compared with a target region ``T`` on the labelled pixels
(``ood_gt ∈ {0, 1}``; 255 is void): ``IoU_q = |B_q ∩ T| / |B_q ∪ T|``. IoUs are averaged over the images
whose target is non-empty, and the queries whose mean IoU exceeds ``t_iou`` (``T_IoU = 0.25``) are kept,
best first.

- accept (set A): target = the anomaly pixels (``ood_gt == 1``), as §3.2 describes;
- ground (initial set I): target = the model's street prediction (§5.1: "indices based on IoU with street
  predictions"; no code is published), see :func:`street_prediction`; accept queries are excluded.

Differences from the reference script: it subtracts the image's total void count from ``|B_q|`` instead
of ignoring void pixels, its mean divides by zero on images without anomalies (we skip those), and its
ranking code combines "top 4" and "IoU ≥ 0.25" with a bitwise ``|``. Pass σ(M) resized to the label
resolution (the reference resizes σ with ``INTER_AREA`` before thresholding).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch

from maskbench.errors import InputError
from maskbench.scorers._common import Queries, check_finite, check_inputs, compute_dtype


@dataclass(frozen=True)
class MaskomalyQueries:
    """Fitted Maskomaly query sets and the evidence behind them (JSON-ready via :meth:`to_dict`)."""

    accept: tuple[int, ...]
    ground: tuple[int, ...]
    accept_iou: tuple[float, ...]
    ground_iou: tuple[float, ...] | None
    t_iou: float
    t_bin: float
    images_with_anomalies: int
    images_with_street: int

    def params(self) -> dict:
        """Keyword arguments for ``get_scorer("maskomaly", **params)``."""
        return {"accept": list(self.accept), "ground": list(self.ground)}

    def to_dict(self) -> dict:
        return asdict(self)


def query_iou(mask_probs: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, t_bin: float) -> torch.Tensor:
    """``|B_q ∩ T| / |B_q ∪ T|`` on the ``valid`` pixels with ``B_q = mask_probs[q] > t_bin``; float64 ``(Q,)``, 0 for an empty union."""
    binary = (mask_probs > t_bin) & valid
    target = target & valid
    inter = (binary & target).sum(dim=(1, 2), dtype=torch.float64)
    union = binary.sum(dim=(1, 2), dtype=torch.float64) + target.sum(dtype=torch.float64) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))


def street_prediction(class_logits: torch.Tensor, mask_logits: torch.Tensor, *, classes=(0,)) -> torch.Tensor:
    """Boolean ``(H, W)`` map of the pixels whose semantic prediction ``argmax_k S_k`` is in ``classes`` (0 = road)."""
    check_inputs(class_logits, mask_logits)
    check_finite("mask_logits", mask_logits)
    queries = Queries(class_logits.to(compute_dtype(mask_logits.dtype)))
    q, h, w = mask_logits.shape
    flat = mask_logits.reshape(q, h * w)
    label = torch.empty(h * w, dtype=torch.long, device=flat.device)
    for start in range(0, h * w, 2**16):
        block = flat[:, start : start + 2**16].to(queries.probs.dtype).sigmoid()
        label[start : start + 2**16] = (queries.pixel_weights[: queries.void] @ block).argmax(dim=0)
    return torch.isin(label, queries.ids(classes)).view(h, w)


def _as_tensor(name: str, i: int, x) -> torch.Tensor:
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as e:
        raise InputError(f"{name}[{i}]: not an array ({e})") from None


def calibrate_maskomaly(
    mask_probs: Iterable,
    ood_gt: Iterable,
    street: Iterable | None = None,
    *,
    t_iou: float = 0.25,
    t_bin: float = 0.9,
) -> MaskomalyQueries:
    """Rank queries by mean IoU with the anomalies (and with the street) over a validation split.

    ``mask_probs``: per image σ(M) ``(Q, H, W)`` at label resolution; ``ood_gt``: per image ``(H, W)``
    labels 0 inlier / 1 anomaly / 255 void; ``street``: per image boolean ``(H, W)`` street prediction
    (see :func:`street_prediction`), or None to fit no ground queries. Iterables are consumed lazily,
    one image at a time.
    """
    if not 0.0 <= t_iou <= 1.0 or not 0.0 <= t_bin <= 1.0:
        raise InputError(f"calibrate_maskomaly: t_iou and t_bin must lie in [0, 1], got {t_iou}, {t_bin}")
    streets = iter(street) if street is not None else None
    anomaly_sum = street_sum = None
    n_anomaly = n_street = 0
    num_queries = None
    for i, (probs, gt) in enumerate(_pairs(mask_probs, ood_gt)):
        probs, gt = _as_tensor("mask_probs", i, probs), _as_tensor("ood_gt", i, gt)
        if probs.ndim != 3 or not probs.is_floating_point():
            raise InputError(f"mask_probs[{i}]: expected floating (Q, H, W) sigmoid masks, got {probs.dtype} {tuple(probs.shape)}")
        if num_queries is None:
            num_queries = probs.shape[0]
            anomaly_sum = torch.zeros(num_queries, dtype=torch.float64)
            street_sum = torch.zeros(num_queries, dtype=torch.float64)
        if probs.shape[0] != num_queries:
            raise InputError(f"mask_probs[{i}]: {probs.shape[0]} queries, earlier images had {num_queries}")
        if tuple(gt.shape) != tuple(probs.shape[1:]):
            raise InputError(f"ood_gt[{i}]: shape {tuple(gt.shape)} differs from the mask shape {tuple(probs.shape[1:])}")
        if not bool(torch.isin(gt, torch.tensor([0, 1, 255], device=gt.device)).all()):
            raise InputError(f"ood_gt[{i}]: labels must be 0 (inlier), 1 (anomaly) or 255 (void)")
        low, high = torch.aminmax(probs)
        if not (0.0 <= float(low) and float(high) <= 1.0):
            raise InputError(f"mask_probs[{i}]: values must be sigmoid probabilities in [0, 1] (no NaN)")
        gt = gt.to(probs.device)
        valid, anomaly = gt != 255, gt == 1
        if bool(anomaly.any()):
            anomaly_sum += query_iou(probs, anomaly, valid, t_bin).cpu()
            n_anomaly += 1
        if streets is not None:
            s = next(streets, None)
            if s is None:
                raise InputError(f"street: fewer maps than images (ran out at image {i})")
            s = _as_tensor("street", i, s).to(probs.device)
            if s.dtype != torch.bool or tuple(s.shape) != tuple(gt.shape):
                raise InputError(f"street[{i}]: expected a boolean {tuple(gt.shape)} map, got {s.dtype} {tuple(s.shape)}")
            if bool((s & valid).any()):
                street_sum += query_iou(probs, s, valid, t_bin).cpu()
                n_street += 1
    if streets is not None and next(streets, None) is not None:
        raise InputError("street: more maps than images")
    if n_anomaly == 0:
        raise InputError("ood_gt: no image has anomaly pixels (label 1); cannot rank accept queries")
    if streets is not None and n_street == 0:
        raise InputError("street: no image has street pixels on labelled ground; cannot rank ground queries")
    accept_iou = anomaly_sum / n_anomaly
    accept = _above(accept_iou, t_iou, exclude=())
    ground_iou = street_sum / n_street if streets is not None else None
    ground = _above(ground_iou, t_iou, exclude=accept) if ground_iou is not None else ()
    return MaskomalyQueries(
        accept=accept,
        ground=ground,
        accept_iou=tuple(accept_iou.tolist()),
        ground_iou=tuple(ground_iou.tolist()) if ground_iou is not None else None,
        t_iou=t_iou,
        t_bin=t_bin,
        images_with_anomalies=n_anomaly,
        images_with_street=n_street,
    )


def _pairs(mask_probs: Iterable, ood_gt: Iterable):
    """Zip two per-image iterables, raising :class:`InputError` if their lengths differ."""
    try:
        yield from zip(mask_probs, ood_gt, strict=True)
    except ValueError as e:
        if "zip()" not in str(e):
            raise
        raise InputError(f"mask_probs and ood_gt: different numbers of images ({e})") from None


def _above(iou: torch.Tensor, t_iou: float, exclude) -> tuple[int, ...]:
    """Query ids with ``iou > t_iou`` not in ``exclude``, by decreasing IoU (ties: lower id first)."""
    order = torch.argsort(-iou, stable=True).tolist()
    return tuple(q for q in order if iou[q] > t_iou and q not in exclude)
