"""The "validation bundle" layout many repositories ship and read: ``<root>/images/*`` + ``<root>/labels_masks/*``.

As read by shyam671/Mask2Anomaly ``anomaly_utils/anomaly_inference.py`` (the label of ``images/<stem>.<ext>`` is
``labels_masks/<stem>.png``: its ``path.replace("images", "labels_masks")`` with ``webp`` / ``jpg`` -> ``png``) and
jan-ackermann/Maskomaly ``maskomaly/datasets.py`` (``labels/`` instead of ``labels_masks/``: ``labels_dir=labels``;
Maskomaly pairs files by sorted order, here they pair by stem and an image whose label is missing is unlabelled).

The label values mean different things per bundle, so ``convention=`` is required (pixels: 0 inlier, 1 anomaly,
255 void after decoding):

- ``binary``: Mask2Anomaly's default (SMIYC, Fishyscapes bundles): 1 anomaly, 0 inlier, any other value void;
- ``road-anomaly``: Mask2Anomaly's ``RoadAnomaly`` branch: 2 -> 1 first, then as ``binary``;
- ``lost-and-found``: its ``LostAndFound`` branch: 0 -> void, 1 -> inlier, 2..200 -> anomaly, others void;
- ``streethazards``: its ``Streethazard`` branch: 14 -> 255 -> 1 and every value < 20 -> 0, so 14 **and 255**
  are anomalies, 1..13 (and 0, 15..19) inliers, 20..254 void (no "other" void: pooled, as that script);
- ``maskomaly-fs-laf``: Maskomaly ``FishyScapes`` (channel 0 of the label file): 120 anomaly, 255 void, else inlier;
- ``maskomaly-fs-static``: Maskomaly ``FishyScapesStatic``: 1 anomaly, 255 void, else inlier.

Mask2Anomaly also drops, at scoring time, every frame without an anomaly pixel (``if 1 not in np.unique``): that
is a protocol choice of the scoring, not of the bundle; this reader yields every frame.
"""

import numpy as np

from maskbench.datasets.base import DATASETS, VOID, Dataset, Frame, Sample, Variant

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")
M2A = "shyam671/Mask2Anomaly anomaly_utils/anomaly_inference.py"
MASKOMALY = "jan-ackermann/Maskomaly maskomaly/datasets.py"
CONVENTIONS = {
    "binary": f"{M2A} (default branch)",
    "road-anomaly": f"{M2A} (RoadAnomaly branch)",
    "lost-and-found": f"{M2A} (LostAndFound branch)",
    "streethazards": f"{M2A} (Streethazard branch)",
    "maskomaly-fs-laf": f"{MASKOMALY} (FishyScapes)",
    "maskomaly-fs-static": f"{MASKOMALY} (FishyScapesStatic)",
}


def _lut(convention):
    """The 256-entry table decoding a label value under ``convention``."""
    lut = np.full(256, VOID, np.uint8)
    values = np.arange(256)
    if convention in ("binary", "road-anomaly"):
        lut[0], lut[1] = 0, 1
        if convention == "road-anomaly":
            lut[2] = 1
    elif convention == "lost-and-found":
        lut[1] = 0
        lut[2:201] = 1
    elif convention == "streethazards":
        lut[values < 20] = 0
        lut[[14, 255]] = 1
    elif convention == "maskomaly-fs-laf":
        lut[:] = 0
        lut[120], lut[255] = 1, VOID
    else:  # maskomaly-fs-static
        lut[:] = 0
        lut[1], lut[255] = 1, VOID
    return lut


@DATASETS.register
class Bundle(Dataset):
    """A folder of ``images/`` and ``labels_masks/`` (or ``labels/``) with an explicit label convention."""

    name = "bundle"
    summary = "validation bundle: images/* + labels_masks/<stem>.png (Mask2Anomaly, Maskomaly); convention= required"
    track = "anomaly"
    layout = """<bundle root>/
  images/<stem>.{png,jpg,jpeg,webp}
  labels_masks/<stem>.png      (or labels/ with labels_dir=labels; values per convention=...)"""
    variants = tuple(Variant("convention", name, "label convention", None, None, source)
                     for name, source in CONVENTIONS.items())

    @classmethod
    def track_for(cls, options):
        return options.get("track", cls.track)

    def __init__(self, root=None, *, convention=None, labels_dir="labels_masks", track="anomaly", frames="labelled"):
        if convention not in CONVENTIONS:
            raise self._error("convention", f"the bundle's label convention must be given: convention= one of "
                                            f"{', '.join(CONVENTIONS)}")
        if labels_dir not in ("labels_masks", "labels"):
            raise self._error("labels_dir", f"labels_dir must be labels_masks or labels, got {labels_dir!r}")
        if track not in ("anomaly", "obstacle"):
            raise self._error("track", f"track must be anomaly or obstacle, got {track!r}")
        self.convention, self.labels_dir, self.track = convention, labels_dir, track
        self.lut = _lut(convention)
        self.label_convention = f"{convention}: {CONVENTIONS[convention]}"
        super().__init__(root, frames=frames)

    @property
    def info(self):
        return {**super().info, "convention": self.convention, "labels_dir": self.labels_dir}

    def _discover(self):
        images = self._require_dir(self.root / "images")
        labels = self._require_dir(self.root / self.labels_dir)
        if images is None or labels is None:
            return []
        frames = []
        for path in sorted(images.iterdir()):
            ext = next((e for e in IMAGE_EXTS if path.name.lower().endswith(e)), None)
            if ext is None or not path.is_file():
                continue
            stem = path.name[: -len(ext)]
            label = labels / f"{stem}.png"
            paths = {"image": path, "label": label} if label.is_file() else {"image": path}
            frames.append(Frame(stem, paths, labelled="label" in paths))
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        if not frame.labelled:
            return Sample(frame.id, image, None)
        label = self._read_label(frame.paths["label"], image.shape)
        if label.dtype != np.uint8:
            self._check_values(label, frame.paths["label"], (0, 255))
        return Sample(frame.id, image, self.lut[label.astype(np.uint8)])
