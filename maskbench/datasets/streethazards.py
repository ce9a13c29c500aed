"""StreetHazards test split (Hendrycks et al.), CARLA towns t5 and t6, 1500 frames of 1280x720.

Layout of ``streethazards_test.tar`` (hendrycks/anomaly-seg ``create_dataset.py``):
``test/images/test/<town>/<n>.png`` (RGB or RGBA) and the same path with ``images`` -> ``annotations``
(mode ``L``, values 1..14). Frame id ``<town>_<n>``; order: town, then the number.

On-disk classes: 1 unlabeled, 2 building, 3 fence, 4 other, 5 pedestrian, 6 pole, 7 road line, 8 road,
9 sidewalk, 10 vegetation, 11 car, 12 wall, 13 traffic sign, 14 anomaly.

``ood`` conventions (``convention=``), since the reference repositories disagree on void:

- ``densehybrid`` (default; matejgrcic/DenseHybrid ``streethazards_test.py``): 14 anomaly, 4 "other" void,
  everything else (incl. 1 "unlabeled") inlier;
- ``hendrycks`` (hendrycks/anomaly-seg ``eval_ood.py``): 14 anomaly, no void;
- ``mask2anomaly`` (``anomaly_inference_streethazard.py``): 14 anomaly, 1 and 4 void.

``semantic`` has the 12 known classes of DenseHybrid / RbA / Mask2Anomaly: 0 unlabeled, 1 building, 2 fence,
3 pedestrian, 4 pole, 5 road line, 6 road, 7 sidewalk, 8 vegetation, 9 car, 10 wall, 11 traffic sign;
"other" and anomaly are 255.
"""

import numpy as np

from maskbench.datasets.base import DATASETS, VOID, Dataset, Frame, Sample

TOWNS = ("t5", "t6")
ANOMALY = 14
VOID_VALUES = {"densehybrid": (4,), "hendrycks": (), "mask2anomaly": (1, 4)}
KNOWN_CLASSES = ("unlabeled", "building", "fence", "pedestrian", "pole", "road line", "road", "sidewalk",
                 "vegetation", "car", "wall", "traffic sign")

# on-disk value -> 12-class semantic id (255: "other" and anomaly)
SEMANTIC_LUT = np.full(256, VOID, dtype=np.uint8)
SEMANTIC_LUT[[1, 2, 3]] = [0, 1, 2]
SEMANTIC_LUT[5:14] = np.arange(3, 12)


@DATASETS.register
class StreetHazards(Dataset):
    """StreetHazards test (t5, t6): raw 1..14, 14 anomaly, "other" (4) void by default; track ``anomaly``."""

    name = "streethazards"
    summary = "StreetHazards test (t5, t6, 1500): 14 anomaly, 4 'other' void (DenseHybrid); 12-class semantic"
    official_count = 1500
    track = "anomaly"
    layout = """<streethazards root>/
  test/images/test/{t5,t6}/<n>.png        (RGB or RGBA)
  test/annotations/test/{t5,t6}/<n>.png   (values 1..14; 14 anomaly, 4 other, 1 unlabeled)"""

    def __init__(self, root=None, *, convention="densehybrid", frames="labelled"):
        if convention not in VOID_VALUES:
            raise self._error("convention", f"unknown convention {convention!r}; choose one of {', '.join(VOID_VALUES)}")
        self.convention = convention
        void = VOID_VALUES[convention]
        self.label_convention = (
            f"{convention}: 14 -> 1 anomaly, {', '.join(map(str, void)) or 'nothing'} -> 255 void, rest -> 0 inlier"
        )
        super().__init__(root, frames=frames)

    @property
    def info(self):
        return {**super().info, "convention": self.convention, "semantic_classes": list(KNOWN_CLASSES)}

    def _discover(self):
        images = self._require_dir(self.root / "test" / "images" / "test")
        labels = self._require_dir(self.root / "test" / "annotations" / "test")
        if images is None or labels is None:
            return []
        frames = []
        for town in TOWNS:
            if self._require_dir(images / town) is None:
                continue
            for stem in sorted(p.name[:-4] for p in (images / town).iterdir() if p.name.endswith(".png")):
                label = labels / town / f"{stem}.png"
                if self._require_file(label, f"annotation of frame {town}/{stem}"):
                    frames.append(Frame(f"{town}_{stem}", {"image": images / town / f"{stem}.png", "label": label}))
        return frames

    @staticmethod
    def _order(frame):
        """Town, then the file number (``t5_2`` before ``t5_10``)."""
        town, _, stem = frame.id.partition("_")
        return town, not stem.isdigit(), int(stem) if stem.isdigit() else 0, stem

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], (1, ANOMALY))
        ood = (label == ANOMALY).astype(np.uint8)
        ood[np.isin(label, VOID_VALUES[self.convention])] = VOID
        return Sample(frame.id, image, ood, semantic=SEMANTIC_LUT[label])
