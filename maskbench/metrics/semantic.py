"""Closed-set semantic segmentation: mIoU, per-class IoU and iIoU exactly as cityscapesScripts computes them.

Source: mcordts/cityscapesScripts ``evaluation/evalPixelLevelSemanticLabeling.py`` (``evaluatePair``,
``getIouScoreForLabel``, ``getInstanceIouScoreForLabel``, the category variants, ``getScoreAverage``), on
Cityscapes **labelIds** (prediction and ground truth), with the label table of ``helpers/labels.py``:

- one confusion matrix over labelIds 0..33 (rows ground truth, columns prediction), every pixel counted;
  a ground-truth or predicted value outside 0..33 is an error (upstream aborts or fails to index);
- ``IoU_c = TP / (TP + FP + FN)`` for the 19 classes without ``ignoreInEval``; FN = the row of c minus TP;
  FP = column c summed over the ground-truth rows of the *evaluated* classes other than c (pixels whose
  ground truth is ignored never count as false positives);
- iIoU: every ground-truth instance (``instanceIds > 1000``, class ``id // 1000`` not ignored) weighs its
  pixels by ``avgClassSize[class] / instance size``; ``iIoU_c = TPw / (TPw + FP + FNw)`` with FP as above;
- categories alike (``getIouScoreForCategory``); the category iIoU counts a prediction of any label id of the
  category, ignored ones (caravan, trailer) included, both as a true positive and as a false positive, as
  upstream's ``getInstanceIouScoreForCategory`` does with the instance-stat label list;
- averages (``mIoU``, ``iIoU``, ...) over the classes whose score is defined (upstream skips NaN).

Undefined scores are ``None``. iIoU is ``None`` (with a note) unless every frame came with instance labels.
The accumulator keeps integer counts and the weighted float sums; ``merge`` adds them (shards, resume).
"""

import numpy as np

from maskbench.datasets.cityscapes_labels import CATEGORIES, LABELS, NUM_LABEL_IDS
from maskbench.errors import InputError

AVG_CLASS_SIZE = {
    "bicycle": 4672.3249222261, "caravan": 36771.8241758242, "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518, "bus": 35732.1511111111, "train": 67583.7075812274, "car": 12794.0202738185,
    "person": 3462.4756337644, "truck": 27855.1264367816, "trailer": 16926.9763313609,
}
"""Mean instance size per class in pixels (``args.avgClassSize`` of the official evaluator)."""

_BY_ID = {label.id: label for label in LABELS if label.id >= 0}
_EVALUATED = np.array([not _BY_ID[i].ignore_in_eval for i in range(NUM_LABEL_IDS)])
_INSTANCE_CLASSES = tuple(i for i in range(NUM_LABEL_IDS) if _BY_ID[i].has_instances and not _BY_ID[i].ignore_in_eval)
# categories whose every label (id >= 0) has instances (generateInstanceStats): human, vehicle
_CATEGORY_IDS = {c: [lb.id for lb in LABELS if lb.category == c and lb.id >= 0] for c in CATEGORIES}
_INSTANCE_CATEGORIES = tuple(c for c in CATEGORIES if all(_BY_ID[i].has_instances for i in _CATEGORY_IDS[c]))
_CATEGORY_OF = np.array([CATEGORIES.index(_BY_ID[i].category) for i in range(NUM_LABEL_IDS)])


def _check_ids(array, what):
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{what} must hold integer Cityscapes labelIds, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= NUM_LABEL_IDS):
        bad = np.unique(array[(array < 0) | (array >= NUM_LABEL_IDS)])[:10].tolist()
        raise InputError(f"{what} holds values {bad} outside the Cityscapes labelIds 0..{NUM_LABEL_IDS - 1}")
    return array.astype(np.int64, copy=False)


def _ratio(tp, fp, fn):
    denom = tp + fp + fn
    return None if denom == 0 else float(tp) / denom


def _mean(scores):
    """``getScoreAverage``: the mean of the defined scores, in label order; ``None`` if there is none."""
    valid = [s for s in scores if s is not None]
    if not valid:
        return None
    total = 0.0
    for s in valid:
        total += s
    return total / len(valid)


class SemanticAccumulator:
    """Streaming Cityscapes pixel-level evaluation: ``update`` per frame, ``merge`` shards, ``compute``."""

    def __init__(self):
        self.confusion = np.zeros((NUM_LABEL_IDS, NUM_LABEL_IDS), np.int64)
        self.class_inst = np.zeros((NUM_LABEL_IDS, 2))  # weighted TP, FN per labelId
        self.category_inst = np.zeros((len(CATEGORIES), 2))
        self.frames = 0
        self.frames_with_instances = 0

    def update(self, pred_label_ids, gt_label_ids, gt_instance_ids=None):
        """Add one frame: predicted and ground-truth labelIds (H, W) and, for iIoU, the instanceIds (H, W)."""
        pred = _check_ids(pred_label_ids, "prediction")
        gt = _check_ids(gt_label_ids, "ground truth")
        if pred.shape != gt.shape or pred.ndim != 2:
            raise InputError(f"prediction {pred.shape} and ground truth {gt.shape} must be equal (H, W) arrays")
        self.confusion += np.bincount((gt * NUM_LABEL_IDS + pred).ravel(),
                                      minlength=NUM_LABEL_IDS ** 2).reshape(NUM_LABEL_IDS, NUM_LABEL_IDS)
        self.frames += 1
        if gt_instance_ids is None:
            return self
        inst = np.asarray(gt_instance_ids)
        if inst.shape != gt.shape or not np.issubdtype(inst.dtype, np.integer):
            raise InputError(f"instance ids must be an integer array of shape {gt.shape}, got {inst.dtype} {inst.shape}")
        self.frames_with_instances += 1
        self._add_instances(inst.astype(np.int64, copy=False), pred)
        return self

    def _add_instances(self, inst, pred):
        """Instance-weighted TP / FN of ``evaluatePair`` (instances in ascending id order, as ``np.unique``)."""
        where = inst > 1000
        ids, index = np.unique(inst[where], return_inverse=True)
        if not ids.size:
            return
        label_of = ids // 1000
        if label_of.max() >= NUM_LABEL_IDS:
            raise InputError(f"instance id {int(ids.max())} names labelId {int(label_of.max())} outside 0..33")
        sizes = np.bincount(index, minlength=ids.size)
        pred_in = pred[where]
        tp = np.bincount(index, weights=pred_in == label_of[index], minlength=ids.size)
        cat_tp = np.bincount(index, weights=_CATEGORY_OF[pred_in] == _CATEGORY_OF[label_of[index]], minlength=ids.size)
        for k, label_id in enumerate(label_of.tolist()):
            label = _BY_ID[label_id]
            if label.ignore_in_eval:
                continue
            if label_id not in _INSTANCE_CLASSES:
                raise InputError(f"instance id {int(ids[k])}: class {label.name!r} has no instances in Cityscapes")
            weight = AVG_CLASS_SIZE[label.name] / float(sizes[k])
            self.class_inst[label_id] += (float(tp[k]) * weight, float(sizes[k] - tp[k]) * weight)
            if label.category in _INSTANCE_CATEGORIES:
                c = CATEGORIES.index(label.category)
                self.category_inst[c] += (float(cat_tp[k]) * weight, float(sizes[k] - cat_tp[k]) * weight)

    def state(self):
        """The counts as arrays (``numpy.savez``-ready); :meth:`from_state` restores the same accumulator."""
        return {"confusion": self.confusion, "class_inst": self.class_inst, "category_inst": self.category_inst,
                "frames": np.array([self.frames, self.frames_with_instances], np.int64)}

    @classmethod
    def from_state(cls, state):
        acc = cls()
        acc.confusion = np.array(state["confusion"], np.int64)
        acc.class_inst = np.array(state["class_inst"], np.float64)
        acc.category_inst = np.array(state["category_inst"], np.float64)
        shapes = (acc.confusion.shape, acc.class_inst.shape, acc.category_inst.shape)
        if shapes != ((NUM_LABEL_IDS,) * 2, (NUM_LABEL_IDS, 2), (len(CATEGORIES), 2)):
            raise InputError(f"semantic accumulator state of shapes {shapes} (not a cityscapes evaluation state)")
        acc.frames, acc.frames_with_instances = (int(v) for v in state["frames"])
        return acc

    def merge(self, other):
        self.confusion += other.confusion
        self.class_inst += other.class_inst
        self.category_inst += other.category_inst
        self.frames += other.frames
        self.frames_with_instances += other.frames_with_instances
        return self

    def compute(self):
        """``mIoU`` (fraction), ``IoU`` {class: value or None}, ``iIoU`` and the category scores; ``None`` = undefined."""
        conf, evaluated = self.confusion, _EVALUATED
        iou, iiou = {}, {}
        for i in range(NUM_LABEL_IDS):
            if not evaluated[i]:
                continue
            tp = int(conf[i, i])
            fn = int(conf[i].sum()) - tp
            fp = int(conf[evaluated, i].sum()) - tp
            iou[_BY_ID[i].name] = _ratio(tp, fp, fn)
            if i in _INSTANCE_CLASSES:
                iiou[_BY_ID[i].name] = _ratio(self.class_inst[i, 0], fp, self.class_inst[i, 1])
        cat_iou, cat_iiou = {}, {}
        for c, name in enumerate(CATEGORIES):
            ids = [i for i in _CATEGORY_IDS[name] if evaluated[i]]
            if not ids:
                cat_iou[name] = None
                continue
            inside = np.array([_CATEGORY_OF[i] == c for i in range(NUM_LABEL_IDS)])
            tp = int(conf[np.ix_(ids, ids)].sum())
            fn = int(conf[ids].sum()) - tp
            fp = int(conf[np.ix_(evaluated & ~inside, ids)].sum())
            cat_iou[name] = _ratio(tp, fp, fn)
            if name in _INSTANCE_CATEGORIES:  # its false positives count every label id of the category, ignored too
                fp_all = int(conf[np.ix_(evaluated & ~inside, _CATEGORY_IDS[name])].sum())
                cat_iiou[name] = _ratio(self.category_inst[c, 0], fp_all, self.category_inst[c, 1])
        complete = self.frames > 0 and self.frames_with_instances == self.frames
        notes = [] if complete else [
            f"iIoU needs instance labels (instanceIds) for every frame; {self.frames_with_instances} of "
            f"{self.frames} frame(s) had them"]
        return {
            "mIoU": _mean(iou.values()),
            "IoU": iou,
            "iIoU": _mean(iiou.values()) if complete else None,
            "iIoU_per_class": iiou if complete else None,
            "mIoU_categories": _mean(cat_iou.values()),
            "IoU_categories": cat_iou,
            "iIoU_categories": _mean(cat_iiou.values()) if complete else None,
            "iIoU_per_category": cat_iiou if complete else None,
            "frames": self.frames,
            "pixels": int(conf.sum()),
            "protocol": "cityscapesScripts evalPixelLevelSemanticLabeling (labelIds; ignoreInEval classes excluded)",
            "notes": notes,
        }
