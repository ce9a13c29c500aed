"""SegmentMeIfYouCan: RoadAnomaly21 (Anomaly Track) and RoadObstacle21 (Obstacle Track).

Layout and labels as in SegmentMeIfYouCan/road-anomaly-benchmark ``datasets/tracks.py`` (``DatasetAnomalyTrack``,
``DatasetObstacleTrack``): ``images/<fid>.<ext>`` and ``labels_masks/<fid>_labels_semantic.png`` holding
0 (inlier / road), 1 (anomaly / obstacle), 255 (void; off-road for the obstacle track), used as they are;
``*_labels_semantic_color.png`` visualisations are ignored. The frame id is the image name minus its extension
(ids may contain dots: ``snowstorm1_00_16_02.578``).

Options: ``split=`` one of the official selections of :mod:`.smiyc_splits` (default ``all``: every frame);
``frames="labelled"`` (default) keeps the frames with a label file (the public validation frames: the test labels
are withheld), ``frames="all"`` every frame of the split, the unlabelled ones with ``ood = None`` (for submissions).
RoadAnomaly21 also takes ``resize="720x1280"``: RbA's resolution policy for it (``support.py``, ``transform_ra_21``:
``albumentations.Resize(720, 1280)``), images bilinear and labels nearest, see :mod:`.resize`; off by default.
"""

from maskbench.datasets.base import DATASETS, Dataset, Frame, Sample, Variant
from maskbench.datasets.resize import RESIZE_POLICIES, resize_image, resize_label
from maskbench.datasets.smiyc_splits import RA21_SPLITS, RO21_SPLITS, official_list, select

LABEL_SUFFIX = "_labels_semantic.png"


class _SmiycTrack(Dataset):
    image_ext = ""
    splits = {}
    label_convention = "SMIYC labels_semantic.png used as stored: 0 inlier, 1 anomaly, 255 void"

    def __init__(self, root=None, *, split="all", frames="labelled"):
        if split not in self.splits:
            raise self._error("split", f"unknown split {split!r}; choose one of {', '.join(self.splits)}")
        self.split = split
        chosen = self.splits[split]
        if frames == "labelled" and chosen.labelled == 0:
            raise self._error("split", f"split {split} ({chosen.official}) has no public labels (withheld by the "
                                       "benchmark); pass frames=all to read its images")
        self.official_count = chosen.count if frames == "all" else chosen.labelled
        super().__init__(root, frames=frames)

    @property
    def official_ids(self):
        listed = official_list(self.splits[self.split])
        if listed is None or self.frames_option == "all":
            return listed
        return tuple(fid for fid in listed if fid.startswith("validation"))

    @property
    def info(self):
        chosen = self.splits[self.split]
        return {**super().info, "split": self.split, "official_split": chosen.official, "split_source": chosen.source}

    def _discover(self):
        images = self._require_dir(self.root / "images")
        labels = self._require_dir(self.root / "labels_masks")
        if images is None or labels is None:
            return []
        chosen = self.splits[self.split]
        label_files = {p.name[: -len(LABEL_SUFFIX)]: p for p in sorted(labels.iterdir())
                       if p.name.endswith(LABEL_SUFFIX) and len(p.name) > len(LABEL_SUFFIX)}
        image_files = {p.name[: -len(self.image_ext)]: p for p in sorted(images.iterdir())
                       if p.is_file() and p.name.endswith(self.image_ext) and len(p.name) > len(self.image_ext)}
        frames = []
        for fid in sorted(set(image_files) | set(label_files)):
            if not select(chosen, fid):
                continue
            if fid not in image_files:
                self._problem(images / f"{fid}{self.image_ext}", f"missing image of labelled frame {fid}")
                continue
            paths = {"image": image_files[fid]}
            if fid in label_files:
                paths["label"] = label_files[fid]
            frames.append(Frame(fid, paths, labelled="label" in paths))
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        if not frame.labelled:
            return Sample(frame.id, image, None)
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], {0, 1, 255})
        return Sample(frame.id, image, label.astype("uint8", copy=False))


def _variants(splits):
    return tuple(Variant("split", value, s.official, s.count, s.labelled, s.source) for value, s in splits.items())


@DATASETS.register
class RoadAnomaly21(_SmiycTrack):
    """SMIYC RoadAnomaly21: 100 test frames (labels withheld) + 10 labelled validation frames; track ``anomaly``.

    Root: ``dataset_AnomalyTrack/`` (or its parent). Images are JPEG.
    """

    name = "smiyc-ra21"
    summary = "SMIYC RoadAnomaly21 (Anomaly Track), jpg; labelled validation frames (frames=all: + test)"
    root_dirname = "dataset_AnomalyTrack"
    image_ext = ".jpg"
    track = "anomaly"
    splits = RA21_SPLITS
    variants = _variants(RA21_SPLITS) + tuple(
        Variant("resize", value, "images bilinear, labels nearest, as OpenCV", None, None, source) for value, source in RESIZE_POLICIES.items())
    layout = """dataset_AnomalyTrack/
  images/<fid>.jpg                          (110: 100 test + 10 validation)
  labels_masks/<fid>_labels_semantic.png    (validation0000..validation0009; 0 inlier, 1 anomaly, 255 void)"""

    def __init__(self, root=None, *, split="all", frames="labelled", resize=None):
        if resize is not None and resize not in RESIZE_POLICIES:
            raise self._error("resize", f"unknown resize policy {resize!r}; choose one of {', '.join(RESIZE_POLICIES)}")
        self.resize = resize
        super().__init__(root, split=split, frames=frames)

    @property
    def info(self):
        return {**super().info, "resize": self.resize,
                "resize_source": RESIZE_POLICIES.get(self.resize) if self.resize else None}

    def _load(self, frame):
        sample = super()._load(frame)
        if self.resize is None:
            return sample
        h, w = (int(v) for v in self.resize.split("x"))
        ood = None if sample.ood is None else resize_label(sample.ood, h, w)
        return Sample(sample.id, resize_image(sample.image, h, w), ood)


@DATASETS.register
class RoadObstacle21(_SmiycTrack):
    """SMIYC RoadObstacle21: 327 test + 30 night + 55 snowstorm frames (labels withheld) + 30 labelled validation
    frames; everything off the road is void (255); track ``obstacle``.

    Root: ``dataset_ObstacleTrack/`` (or its parent). Images are WebP.
    """

    name = "smiyc-ro21"
    summary = "SMIYC RoadObstacle21 (Obstacle Track), webp, off-road void; labelled validation frames (frames=all: + test)"
    root_dirname = "dataset_ObstacleTrack"
    image_ext = ".webp"
    track = "obstacle"
    splits = RO21_SPLITS
    variants = _variants(RO21_SPLITS)
    label_convention = "SMIYC labels_semantic.png used as stored: 0 road, 1 obstacle, 255 void (everything off-road)"
    layout = """dataset_ObstacleTrack/
  images/<fid>.webp                         (442: 327 test, 30 night, 55 snowstorm, 30 validation; ids may contain dots)
  labels_masks/<fid>_labels_semantic.png    (validation_<n>, 30; 0 road, 1 obstacle, 255 off-road/void)"""
