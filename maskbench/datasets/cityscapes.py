"""Cityscapes val (500 frames, 2048x1024): semantic ground truth in the 19 train ids, for closed-set mIoU.

Layout (mcordts/cityscapesScripts): ``leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``gtFine/val/<city>/<same id>_gtFine_labelIds.png``. By default the ``labelIds`` are mapped to train ids with
the table of ``cityscapesscripts/helpers/labels.py`` (what the official evaluator does: classes with
``ignoreInEval`` become 255). ``labels="labelTrainIds"`` reads the ``_gtFine_labelTrainIds.png`` files that
``createTrainIdLabelImgs.py`` writes (what detectron2 / Mask2Former read) instead; both give the same map.
There are no anomalies: ``ood`` is 0 where a train id is set and 255 elsewhere.

For the closed-set evaluation of ``evalPixelLevelSemanticLabeling.py`` (labelIds and instanceIds), a frame read
with ``labels="labelIds"`` also carries ``label_ids`` (the labelIds as stored) and, where
``<id>_gtFine_instanceIds.png`` exists beside it, ``instance_ids`` (int32; ``labelId * 1000 + k`` on instances).
"""

import numpy as np

from maskbench.datasets.base import DATASETS, VOID, Dataset, Frame, Sample
from maskbench.datasets.cityscapes_labels import NUM_LABEL_IDS, TRAIN_CLASSES, TRAIN_LUT

# labelIds: 0..33, plus 255 where the license plate id -1 wraps around in a uint8 file
LABEL_FILES = {"labelIds": ("_gtFine_labelIds.png", set(range(NUM_LABEL_IDS)) | {VOID}),
               "labelTrainIds": ("_gtFine_labelTrainIds.png", set(range(19)) | {VOID})}
IMAGE_SUFFIX = "_leftImg8bit.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"


@DATASETS.register
class Cityscapes(Dataset):
    """Cityscapes val with 19-class train-id semantics (255 ignore); no protocol track (closed set)."""

    name = "cityscapes"
    summary = "Cityscapes val (500), semantic gt in the 19 train ids (labelIds mapped; labelTrainIds optional)"
    official_count = 500
    split = "val"  # the folder under leftImg8bit/ and gtFine/ (subclasses may read another split)
    layout = """<Cityscapes root>/
  leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png      (500; frankfurt, lindau, munster)
  gtFine/val/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png       (labelIds 0..33; or labels=labelTrainIds)
  gtFine/val/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png    (optional: instance labels for iIoU)"""

    def __init__(self, root=None, *, labels="labelIds", frames="labelled"):
        if labels not in LABEL_FILES:
            raise self._error("labels", f"unknown label files {labels!r}; choose one of {', '.join(LABEL_FILES)}")
        self.labels = labels
        self.label_convention = f"gtFine {labels} -> 19 train ids (cityscapesScripts labels.py), 255 ignore; no anomalies"
        super().__init__(root, frames=frames)

    @property
    def info(self):
        return {**super().info, "labels": self.labels, "semantic_classes": list(TRAIN_CLASSES)}

    def _discover(self):
        images = self._require_dir(self.root / "leftImg8bit" / self.split)
        gt = self._require_dir(self.root / "gtFine" / self.split)
        if images is None or gt is None:
            return []
        suffix = LABEL_FILES[self.labels][0]
        frames = []
        for city in sorted(p for p in images.iterdir() if p.is_dir()):
            for path in sorted(city.glob(f"*{IMAGE_SUFFIX}")):
                fid = path.name[: -len(IMAGE_SUFFIX)]
                label = gt / city.name / f"{fid}{suffix}"
                if self._require_file(label, f"{self.labels} of frame {fid}"):
                    paths = {"image": path, "label": label}
                    instances = gt / city.name / f"{fid}{INSTANCE_SUFFIX}"
                    if self.labels == "labelIds" and instances.is_file():
                        paths["instances"] = instances
                    frames.append(Frame(fid, paths))
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], LABEL_FILES[self.labels][1])
        label = label.astype(np.uint8)
        semantic = TRAIN_LUT[label] if self.labels == "labelIds" else label
        ood = np.where(semantic == VOID, VOID, 0).astype(np.uint8)
        label_ids = label if self.labels == "labelIds" else None
        instance_ids = None
        if "instances" in frame.paths:
            instance_ids = self._read_label(frame.paths["instances"], image.shape).astype(np.int32)
            if instance_ids.min() < 0 or instance_ids.max() >= NUM_LABEL_IDS * 1000:
                raise self._error(frame.paths["instances"], f"instance ids outside 0..{NUM_LABEL_IDS * 1000 - 1}")
        return Sample(frame.id, image, ood, semantic=semantic, label_ids=label_ids, instance_ids=instance_ids)
