"""SegmentMeIfYouCan: RoadAnomaly21 (Anomaly Track) and RoadObstacle21 (Obstacle Track), public validation frames.

Layout and labels as in SegmentMeIfYouCan/road-anomaly-benchmark ``datasets/tracks.py`` (``DatasetAnomalyTrack``,
``DatasetObstacleTrack``): ``images/<fid>.<ext>`` and ``labels_masks/<fid>_labels_semantic.png`` holding
0 (inlier / road), 1 (anomaly / obstacle), 255 (void; off-road for the obstacle track), used as they are.
Only frames with a label file are yielded (the test labels are withheld); ``*_labels_semantic_color.png``
visualisations are ignored.
"""

from maskbench.datasets.base import DATASETS, Dataset, Frame, Sample, files_with_suffix

LABEL_SUFFIX = "_labels_semantic.png"


class _SmiycTrack(Dataset):
    image_ext = ""
    label_convention = "SMIYC labels_semantic.png used as stored: 0 inlier, 1 anomaly, 255 void"

    def _discover(self):
        images = self._require_dir(self.root / "images")
        labels = self._require_dir(self.root / "labels_masks")
        if images is None or labels is None:
            return []
        frames = []
        for fid, label in files_with_suffix(labels, LABEL_SUFFIX).items():
            image = images / f"{fid}{self.image_ext}"
            if self._require_file(image, f"image of labelled frame {fid}"):
                frames.append(Frame(fid, {"image": image, "label": label}))
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], {0, 1, 255})
        return Sample(frame.id, image, label.astype("uint8", copy=False))


@DATASETS.register
class RoadAnomaly21(_SmiycTrack):
    """SMIYC RoadAnomaly21, the 10 labelled validation frames (``validation0000`` .. ``validation0009``).

    Root: ``dataset_AnomalyTrack/`` (or its parent). Images are JPEG. Protocol track ``anomaly``.
    """

    name = "smiyc-ra21"
    summary = "SMIYC RoadAnomaly21 (Anomaly Track), labelled validation frames, jpg images"
    root_dirname = "dataset_AnomalyTrack"
    image_ext = ".jpg"
    official_count = 10
    track = "anomaly"
    layout = """dataset_AnomalyTrack/
  images/<fid>.jpg                          (110: 100 test + 10 validation)
  labels_masks/<fid>_labels_semantic.png    (validation0000..validation0009; 0 inlier, 1 anomaly, 255 void)"""


@DATASETS.register
class RoadObstacle21(_SmiycTrack):
    """SMIYC RoadObstacle21, the 30 labelled validation frames (``validation_<n>``).

    Root: ``dataset_ObstacleTrack/`` (or its parent). Images are WebP; frame ids may contain dots
    (``snowstorm1_00_16_02.578``). Everything off the road is void (255). Protocol track ``obstacle``.
    """

    name = "smiyc-ro21"
    summary = "SMIYC RoadObstacle21 (Obstacle Track), labelled validation frames, webp images, off-road void"
    root_dirname = "dataset_ObstacleTrack"
    image_ext = ".webp"
    official_count = 30
    track = "obstacle"
    label_convention = "SMIYC labels_semantic.png used as stored: 0 road, 1 obstacle, 255 void (everything off-road)"
    layout = """dataset_ObstacleTrack/
  images/<fid>.webp                         (442 incl. test, night, snowstorm; ids may contain dots)
  labels_masks/<fid>_labels_semantic.png    (validation_<n>, 30; 0 road, 1 obstacle, 255 off-road/void)"""
