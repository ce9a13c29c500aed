"""Cityscapes val (500 frames, 2048x1024): semantic ground truth in the 19 train ids, for closed-set mIoU.

Layout (mcordts/cityscapesScripts): ``leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` and
``gtFine/val/<city>/<same id>_gtFine_labelIds.png``. By default the ``labelIds`` are mapped to train ids with
the table of ``cityscapesscripts/helpers/labels.py`` (what the official evaluator does: classes with
``ignoreInEval`` become 255). ``labels="labelTrainIds"`` reads the ``_gtFine_labelTrainIds.png`` files that
``createTrainIdLabelImgs.py`` writes (what detectron2 / Mask2Former read) instead; both give the same map.
There are no anomalies: ``ood`` is 0 where a train id is set and 255 elsewhere.
"""

import numpy as np

from maskbench.datasets.base import DATASETS, VOID, Dataset, Frame, Sample

TRAIN_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                 "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                 "bicycle")
# labelId -> trainId for labelIds 0..33 (cityscapesScripts labels.py); everything else is ignored (255)
LABEL_TO_TRAIN = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                  26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
TRAIN_LUT = np.full(256, VOID, dtype=np.uint8)
TRAIN_LUT[list(LABEL_TO_TRAIN)] = list(LABEL_TO_TRAIN.values())
# labelIds: 0..33, plus 255 where the license plate id -1 wraps around in a uint8 file
LABEL_FILES = {"labelIds": ("_gtFine_labelIds.png", set(range(34)) | {VOID}),
               "labelTrainIds": ("_gtFine_labelTrainIds.png", set(range(19)) | {VOID})}
IMAGE_SUFFIX = "_leftImg8bit.png"


@DATASETS.register
class Cityscapes(Dataset):
    """Cityscapes val with 19-class train-id semantics (255 ignore); no protocol track (closed set)."""

    name = "cityscapes"
    summary = "Cityscapes val (500), semantic gt in the 19 train ids (labelIds mapped; labelTrainIds optional)"
    official_count = 500
    split = "val"  # the folder under leftImg8bit/ and gtFine/ (subclasses may read another split)
    layout = """<Cityscapes root>/
  leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png      (500; frankfurt, lindau, munster)
  gtFine/val/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png       (labelIds 0..33; or labels=labelTrainIds)"""

    def __init__(self, root=None, *, labels="labelIds"):
        if labels not in LABEL_FILES:
            raise self._error("labels", f"unknown label files {labels!r}; choose one of {', '.join(LABEL_FILES)}")
        self.labels = labels
        self.label_convention = f"gtFine {labels} -> 19 train ids (cityscapesScripts labels.py), 255 ignore; no anomalies"
        super().__init__(root)

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
                    frames.append(Frame(fid, {"image": path, "label": label}))
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], LABEL_FILES[self.labels][1])
        semantic = TRAIN_LUT[label] if self.labels == "labelIds" else label.astype(np.uint8)
        ood = np.where(semantic == VOID, VOID, 0).astype(np.uint8)
        return Sample(frame.id, image, ood, semantic=semantic)
