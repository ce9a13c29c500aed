"""Task ``semantic``: the closed-set mIoU, per-class IoU and iIoU of a Cityscapes checkpoint, as cityscapesScripts.

The number that shows a checkpoint still segments (Mask2Former's Swin-L Cityscapes model: 83.3 mIoU), from the
same forward machinery as the anomaly tasks (forward source, cache, resume, ``limit``, torchrun sharding):

1. per frame (resumable): the semantic scores of Mask2Former's ``semantic_inference``,
   ``S = softmax(C)[:, :K]ᵀ σ(M)`` (:func:`maskbench.model.semantic_inference`) on the forward's mask logits at
   the image size (with ``tta="flip"``, the mean of ``S`` over the image and its flip, flipped back, as
   detectron2's ``SemanticSegmentorWithTTA`` averages the semantic outputs of its views); the prediction
   ``argmax_k S_k`` in the 19 train ids mapped to labelIds (``trainId2label[t].id``,
   :func:`~maskbench.datasets.cityscapes_labels.train_to_label_ids`); the frame's
   :class:`~maskbench.metrics.semantic.SemanticAccumulator` against the ground-truth ``labelIds`` (and
   ``instanceIds`` where the dataset has them) stored in ``work/<index>.npz``;
2. at the end the frames' accumulators are added in frame order (every rank the same sum, whatever the
   sharding) and ``evalPixelLevelSemanticLabeling``'s scores computed: ``mIoU`` (mean over the 19 classes
   with a defined IoU), ``IoU`` (class name -> value or null), ``iIoU`` (null unless every frame has
   instanceIds), the category scores in ``protocol_details``.

The mask logits are resized to the image before ``S`` (``sem_seg_postprocess`` before ``semantic_inference``, as
upstream does whenever panoptic or instance inference is on); upstream's semantic-only configuration resizes ``S``
instead. Both orders coincide when the processed size is the image size (``resolution="native"``, or Cityscapes'
1024x2048 frames at ``short1024``).
"""

import numpy as np

from maskbench.benchmark.frame import over_views
from maskbench.benchmark.results import write_npz_atomic
from maskbench.benchmark.tasks.base import TASKS, Task
from maskbench.datasets.cityscapes_labels import TRAIN_CLASSES, train_to_label_ids
from maskbench.errors import ConfigError, InputError
from maskbench.metrics.semantic import SemanticAccumulator
from maskbench.model import semantic_inference

PROTOCOL = "cityscapes-semantic"
METHOD = "closed-set"  # the results entry's "scorer": the checkpoint's closed-set prediction
DESCRIPTION = ("cityscapesScripts evalPixelLevelSemanticLabeling on labelIds: argmax of Mask2Former "
               "semantic_inference scores, trainId -> labelId; 19 classes, ignoreInEval excluded")
_SEMANTIC = "semantic scores"


@TASKS.register
class SemanticTask(Task):
    name = "semantic"
    summary = "closed-set semantic segmentation on Cityscapes: mIoU, per-class IoU, iIoU (cityscapesScripts)"
    requires = ("label_ids",)
    unused = ("scorers", "scorer_params", "calibration", "protocol", "fpr95_rule", "save_maps")
    table_metrics = ("mIoU", "iIoU")
    csv_keys = ("mIoU", "iIoU", *(f"IoU.{c}" for c in TRAIN_CLASSES), "images")

    def configure(self, config, dataset_cls):
        if dataset_cls.name != "cityscapes":
            raise ConfigError("dataset", f" {dataset_cls.name}: the semantic task evaluates Cityscapes labelIds "
                              "(dataset cityscapes, or the world's val split in that layout)")
        labels = config.dataset_options.get("labels", "labelIds")
        if labels != "labelIds":
            raise ConfigError("dataset_options", f" labels={labels}: the semantic task reads the labelIds (and "
                              "instanceIds) that cityscapesScripts evaluates; leave labels at labelIds")
        return {"protocol": PROTOCOL, "prediction": "argmax_k of semantic_inference scores (train ids) -> labelIds",
                "tta_semantic": "mean of the semantic scores over the TTA views"}

    def frame(self, run, index, sample):
        def compute(class_logits, mask_logits, single):
            return {_SEMANTIC: semantic_inference(class_logits.float(), mask_logits.float())}

        scores = over_views(sample, run.source, run.config.tta, compute)[_SEMANTIC]
        if scores.shape[0] != len(TRAIN_CLASSES):
            raise InputError(f"frame {sample.id!r}: the model has {scores.shape[0]} classes; the Cityscapes "
                             f"evaluation maps its {len(TRAIN_CLASSES)} train ids to labelIds")
        pred = train_to_label_ids(scores.argmax(axis=0))
        acc = SemanticAccumulator()
        try:
            acc.update(pred, sample.label_ids, sample.instance_ids)
        except InputError as err:
            raise InputError(f"{run.dataset.name}: frame {sample.id!r}: {err}") from err
        write_npz_atomic(run.work_file(index), **acc.state())
        frame = acc.compute()
        return {"height": int(pred.shape[0]), "width": int(pred.shape[1]), "frame_mIoU": frame["mIoU"],
                "instances": sample.instance_ids is not None}

    def finish(self, run, indices, rows):
        mine = {}
        for i in indices:
            with np.load(run.work_file(i), allow_pickle=False) as z:
                mine[i] = SemanticAccumulator.from_state(z)
        frames = {i: acc for part in run.dist.gather(mine) for i, acc in part.items()}
        total = SemanticAccumulator()
        for i in sorted(frames):  # frame order: the same float sums whatever the sharding or resume
            total.merge(frames[i])
        r = total.compute()
        notes = {}
        if r["mIoU"] is None:
            notes["mIoU"] = "no class has ground-truth or predicted pixels"
        undefined = [c for c, v in r["IoU"].items() if v is None]
        if undefined:
            notes["IoU"] = (f"null for {', '.join(undefined)}: no ground-truth or predicted pixel (TP + FP + FN = 0; "
                            "left out of mIoU, as cityscapesScripts skips nan)")
        if r["iIoU"] is None:
            notes["iIoU"] = "; ".join(r["notes"]) or "no class with instances has a defined iIoU"
        details = {
            "description": DESCRIPTION,
            "evaluator": r["protocol"],
            "prediction": "argmax_k S_k, S = softmax(class logits)[:, :K]^T sigmoid(mask logits) (Mask2Former "
                          "semantic_inference), first maximum; train id -> labelId (cityscapesScripts trainId2label)",
            "tta": run.config.tta,
            "fpr95_rule": "none (closed-set: no anomaly scores)",
            "iIoU_per_class": r["iIoU_per_class"],
            "categories": {"mIoU": r["mIoU_categories"], "IoU": r["IoU_categories"],
                           "iIoU": r["iIoU_categories"], "iIoU_per_category": r["iIoU_per_category"]},
            "pixels": r["pixels"],
            "frames_with_instances": sum(1 for row in rows.values() if row.get("instances")),
        }
        metrics = {"mIoU": r["mIoU"], "iIoU": r["iIoU"], "IoU": r["IoU"], "images": len(rows)}
        entry = {"scorer": METHOD, "dataset": run.config.dataset, "protocol": PROTOCOL, "metrics": metrics,
                 "protocol_details": details, "notes": notes}
        return [entry], {}


__all__ = ["DESCRIPTION", "METHOD", "PROTOCOL", "SemanticTask"]
