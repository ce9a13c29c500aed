"""Open-set inference procedures: pure functions over one image's tensors (no files, no datasets).

Notation as in :mod:`maskbench.scorers`: ``C`` class logits ``(Q, K+1)`` (void last), ``M`` mask logits
``(Q, H, W)`` at the image size, ``P = softmax(C)``, ``S_k = Σ_q P[q,k] σ(M_q)`` (K known classes).

* Open-set semantic segmentation (Mask2Anomaly TPAMI'24 Eq. 16, DenseHybrid ``OpenModel.forward``):
  :func:`open_set_prediction`; the threshold comes from :func:`half_resolution` maps of the other town.
* Open-set panoptic segmentation: :func:`panoptic_inference` (Mask2Former ``panoptic_inference``) for the
  known classes, then unknown instances by :func:`eam_unknown_instances` (EAM CVPRW'23 §4.2) or
  :func:`mine_unknown_instances` (Mask2Anomaly TPAMI'24 §6.3), merged with :func:`add_unknown_segments`
  (EOPSN category -1).
"""

import numpy as np
import scipy.ndimage
import torch
import torch.nn.functional as F

from maskbench.errors import InputError

#: EOPSN's merged "unknown" thing category (jd730/EOPSN ``lib/evaluator.py``).
UNKNOWN_CATEGORY = -1


def semantic_scores(class_logits, mask_logits):
    """``S (K, H, W) = softmax(C)[:, :K]ᵀ σ(M)`` (Mask2Former ``semantic_inference``, TPAMI'24 Eq. 5)."""
    probs = torch.softmax(class_logits.float(), dim=-1)[:, :-1]
    return torch.einsum("qc,qhw->chw", probs, torch.sigmoid(mask_logits.float()))


def open_set_prediction(known_prediction, anomaly, threshold, num_known):
    """TPAMI'24 Eq. 16, ``f_oss = argmax(concat(g(x), f̂(x)))``, as DenseHybrid evaluates it.

    ``known_prediction`` is ``argmax_k S_k`` over the ``num_known`` classes (first maximum); pixels whose
    anomaly score is strictly above ``threshold`` become the anomaly class ``num_known`` (the thresholded
    channel ``f̂`` dominates every known class where it fires, and never elsewhere). Returns a new int64
    ``(H, W)`` tensor of ids in ``0..num_known``.
    """
    if anomaly.shape != known_prediction.shape:
        raise InputError(f"anomaly: shape {tuple(anomaly.shape)} differs from the prediction's "
                         f"{tuple(known_prediction.shape)}")
    pred = known_prediction.to(torch.int64, copy=True)
    pred[anomaly > threshold] = num_known
    return pred


def half_resolution(anomaly, labels):
    """DenseHybrid calibration inputs (``OODCalibration.calculate_ood_scores``, ``scale=0.5``): the score map
    resized by ``scale_factor=0.5`` bilinearly, the labels by ``scale_factor=0.5`` nearest (torch semantics)."""
    a = F.interpolate(anomaly[None, None].float(), scale_factor=0.5, mode="bilinear")[0, 0]
    lab = F.interpolate(labels[None, None].float(), scale_factor=0.5, mode="nearest")[0, 0]
    return a, lab.to(torch.uint8)


def panoptic_inference(class_logits, mask_logits, is_thing, *, object_mask_threshold=0.8, overlap_threshold=0.8):
    """Mask2Former panoptic inference (facebookresearch/Mask2Former ``MaskFormer.panoptic_inference``).

    ``is_thing``: bool ``(K,)`` over contiguous class ids. Queries with a non-void argmax class whose softmax
    probability exceeds ``object_mask_threshold`` are kept; each pixel goes to the kept query maximising
    ``p_q σ(M_q)``; a query keeps the pixels it wins with ``σ(M_q) >= 0.5``, and is dropped when it wins less
    than ``overlap_threshold`` of its own ``σ >= 0.5`` area. Stuff queries of one class share one segment.
    Returns ``(ids int32 (H, W), [{"id", "category_id" (contiguous), "isthing"}])``; id 0 = void.
    """
    probs = torch.softmax(class_logits.float(), dim=-1)
    scores, labels = probs.max(dim=-1)
    void = probs.shape[1] - 1
    if is_thing.shape[0] != void:
        raise InputError(f"is_thing: {is_thing.shape[0]} entries for a model with {void} classes")
    keep = (labels != void) & (scores > object_mask_threshold)
    masks = torch.sigmoid(mask_logits.float()[keep])
    cur_scores, cur_classes = scores[keep], labels[keep]
    h, w = mask_logits.shape[-2:]
    ids = torch.zeros((h, w), dtype=torch.int32)
    segments = []
    if masks.shape[0] == 0:
        return ids, segments
    winner = (cur_scores[:, None, None] * masks).argmax(dim=0)
    stuff_segment = {}
    for k in range(masks.shape[0]):
        cls = int(cur_classes[k])
        won = winner == k
        confident = masks[k] >= 0.5
        region = won & confident
        won_area, own_area, area = int(won.sum()), int(confident.sum()), int(region.sum())
        if not (won_area > 0 and own_area > 0 and area > 0) or won_area / own_area < overlap_threshold:
            continue
        thing = bool(is_thing[cls])
        if not thing and cls in stuff_segment:
            ids[region] = stuff_segment[cls]
            continue
        new_id = len(segments) + 1
        if not thing:
            stuff_segment[cls] = new_id
        ids[region] = new_id
        segments.append({"id": new_id, "category_id": cls, "isthing": thing})
    return ids, segments


def eam_unknown_instances(mask_logits, anomaly, threshold, *, min_pixels=200):
    """Unknown instances as EAM (Grcić et al. CVPRW'23 §4.2) forms them: pixels with ``anomaly > threshold``
    are assigned to their preferred mask ``argmax_q σ(M_q(x))`` (first maximum); every mask that receives
    more than ``min_pixels`` anomalous pixels becomes one instance. Returns a list of bool ``(H, W)`` masks in
    query order."""
    if anomaly.shape != mask_logits.shape[1:]:
        raise InputError(f"anomaly: shape {tuple(anomaly.shape)} differs from the masks' "
                         f"{tuple(mask_logits.shape[1:])}")
    anomalous = anomaly > threshold
    preferred = torch.sigmoid(mask_logits.float()).argmax(dim=0)
    counts = torch.bincount(preferred[anomalous], minlength=mask_logits.shape[0])
    return [anomalous & (preferred == q) for q in torch.nonzero(counts > min_pixels).flatten().tolist()]


def add_unknown_segments(ids, segments, unknown_masks):
    """Overlay unknown instances (category ``-1``) on a panoptic result: their pixels leave any known segment,
    and known segments left empty are dropped. Returns new ``(ids, segments)``; segment ids stay unique."""
    ids = ids.clone()
    next_id = max((s["id"] for s in segments), default=0) + 1
    added = []
    for mask in unknown_masks:
        if not bool(mask.any()):
            continue
        ids[mask] = next_id
        added.append({"id": next_id, "category_id": UNKNOWN_CATEGORY, "isthing": True})
        next_id += 1
    present = set(torch.unique(ids).tolist())
    return ids, [s for s in segments if s["id"] in present] + added


def background_map(class_logits, mask_logits):
    """TPAMI'24 Eq. 17: ``B = 1 − max_{q∈N_k} (max_{z<K} softmax(C_q)_z · σ(M_q))`` over the known-class masks
    ``N_k`` (queries whose argmax over all K+1 columns is not void); ``B = 1`` where no such query exists."""
    probs = torch.softmax(class_logits.float(), dim=-1)
    void = probs.shape[1] - 1
    known = probs.argmax(dim=-1) != void
    if not bool(known.any()):
        return torch.ones(mask_logits.shape[1:])
    weights = probs[known, :void].amax(dim=-1)
    return 1 - (weights[:, None, None] * torch.sigmoid(mask_logits.float()[known])).amax(dim=0)


def mine_unknown_instances(class_logits, mask_logits, is_thing, *, background_threshold=0.5, overlap_iou=0.5):
    """Mask2Anomaly's unknown-instance mining (TPAMI'24 §6.3), in our reading of its four steps.

    1. connected components (8-connectivity) of the background ``B > background_threshold`` (Eq. 17);
    2. each component's IoU with every binarised mask ``σ(M_i) > 0.5``; the best mask (first maximum) counts
       as a significant overlap when its IoU exceeds ``overlap_iou``;
    3. for that mask, with ``p = softmax(C_i)`` over K+1, the average per-class entropy terms
       ``E_S = mean_{z stuff} −p_z log p_z`` and ``E_T = mean_{z thing} −p_z log p_z``;
    4. the component is an unknown instance iff ``E_S > E_T``.

    The paper fixes neither threshold; both are recorded with the results. Returns bool ``(H, W)`` masks in
    component-label order.
    """
    void = class_logits.shape[1] - 1
    if is_thing.shape[0] != void:
        raise InputError(f"is_thing: {is_thing.shape[0]} entries for a model with {void} classes")
    if bool(is_thing.all()) or not bool(is_thing.any()):
        raise InputError("is_thing: the stuff-vs-things entropy test needs both stuff and thing classes")
    background = (background_map(class_logits, mask_logits) > background_threshold).numpy()
    components, count = scipy.ndimage.label(background, structure=np.ones((3, 3), dtype=int))
    if count == 0:
        return []
    binary = (torch.sigmoid(mask_logits.float()) > 0.5).reshape(mask_logits.shape[0], -1).numpy()
    probs = torch.softmax(class_logits.double(), dim=-1)[:, :void]
    terms = torch.where(probs > 0, -probs * torch.log(probs), torch.zeros_like(probs))
    e_stuff = terms[:, ~is_thing].mean(dim=1)
    e_thing = terms[:, is_thing].mean(dim=1)
    flat = components.reshape(-1)
    mask_area = binary.sum(axis=1)
    found = []
    for label in range(1, count + 1):
        component = flat == label
        inter = binary[:, component].sum(axis=1)
        iou = inter / (mask_area + component.sum() - inter)
        best = int(np.argmax(iou))
        if iou[best] > overlap_iou and float(e_stuff[best]) > float(e_thing[best]):
            found.append(torch.from_numpy(component.reshape(components.shape)))
    return found
