"""Lost & Found (Pinggera et al. 2016) in its Cityscapes-style layout, with the selections of SegmentMeIfYouCan.

``leftImg8bit/<split>/<NN_scene>/<fid>_leftImg8bit.png`` and ``gtCoarse/<split>/<NN_scene>/<fid>_gtCoarse_labelIds.png``.
Labels are the ``labelIds`` (not the ``labelTrainIds``, whose trainId 0 silently turns the "non-hazard" objects
31, 33, 34, 36..39 into inliers): 0 -> void (unlabelled, ego vehicle, off-road), 1 (free space) -> inlier,
2..200 -> anomaly, exactly as SegmentMeIfYouCan/road-anomaly-benchmark ``datasets/tracks.py`` ``LAF_CLASSES``.
Values above 200 are rejected.

``subset=`` (default ``test``) picks one selection of :mod:`.lost_and_found_splits`: ``test`` / ``testValid`` /
``testNoKnown`` / ``train`` / ``trainValid`` (obstacle protocol, ROI = drivable space), ``anomalyTest`` /
``anomalyTrain`` (``LostAndFoundAnomaly``: ROI = the whole image minus the ego vehicle, given by the official
``LAF_roi_2048.png``: ``roi=PATH``, default ``<root>/LAF_roi_2048.png``; label 255, then 0 inside the ROI, then
1 on every object pixel), ``fishyObstacleVal`` / ``fishyObstacleTest`` (the Fishyscapes L&F frames with the
LAF labels; the test list needs ``ids=PATH``, the JSON upstream reads from ``$FISHY_LAF_ID_FILE``).
"""

import json
import re
from pathlib import Path

import numpy as np

from maskbench.datasets.base import DATASETS, VOID, Dataset, Frame, Sample, Variant
from maskbench.datasets.lost_and_found_splits import SUBSETS
from maskbench.errors import DatasetError, FileReadError
from maskbench.fileio import read_label_png

LAF_ID = re.compile(r"([0-9]{2})_(.*)_([0-9]{6})_([0-9]{6})")
IMAGE_SUFFIX = "_leftImg8bit"
IMAGE_EXTS = (".png", ".webp", ".jpg")
LABEL_SUFFIX = "_gtCoarse_labelIds.png"
ROI_FILE = "LAF_roi_2048.png"


def scene_of(laf_id):
    """``04_Maurener_Weg_8_000000_000030`` -> ``04_Maurener_Weg_8``, or ``None`` if not a LAF frame id."""
    match = LAF_ID.fullmatch(laf_id)
    return None if match is None else f"{match.group(1)}_{match.group(2)}"


def find_laf_image(root, laf_id, splits=("train", "test")):
    """Path of ``laf_id``'s left image under ``root/leftImg8bit/<split>/<scene>/``, or ``None``."""
    scene = scene_of(laf_id)
    if scene is None:
        return None
    for split in splits:
        for ext in IMAGE_EXTS:
            path = root / "leftImg8bit" / split / scene / f"{laf_id}{IMAGE_SUFFIX}{ext}"
            if path.is_file():
                return path
    return None


@DATASETS.register
class LostAndFound(Dataset):
    """Lost & Found; labelIds 0 void, 1 inlier (free space), 2..200 anomaly; track ``obstacle`` (``anomaly`` for
    the ROI-image and Fishyscapes subsets)."""

    name = "lost-and-found"
    summary = "Lost & Found, labelIds (0 void, 1 road, 2..200 obstacle); subset test|testValid|testNoKnown|train|..."
    layout = f"""<LostAndFound root>/
  leftImg8bit/{{test,train}}/<NN_scene>/<NN_scene>_<seq:06d>_<frame:06d>_leftImg8bit.png  (1203 test, 1036 train; webp/jpg accepted)
  gtCoarse/{{test,train}}/<NN_scene>/<same id>_gtCoarse_labelIds.png                       (0 void, 1 free space, 2.. objects)
  {ROI_FILE}                                          (anomaly* subsets: road-anomaly-benchmark's ROI image, or roi=PATH)"""
    variants = tuple(Variant("subset", name, s.official, s.count, s.count, s.source) for name, s in SUBSETS.items())

    def __init__(self, root=None, *, subset="test", roi=None, ids=None, frames="labelled"):
        self.track = self.track_for({"subset": subset})
        self.subset = subset
        chosen = SUBSETS[subset]
        self.official_count = chosen.count
        self.roi_path, self.ids_path = roi, ids
        self.label_convention = (
            "gtCoarse labelIds: 2..200 -> 1 anomaly anywhere; else 0 inside the ROI image, 255 outside" if chosen.roi
            else "gtCoarse labelIds: 0 -> 255 void, 1 -> 0 inlier, 2..200 -> 1 anomaly (SMIYC LAF_CLASSES)")
        self.roi = None
        super().__init__(root, frames=frames)

    @property
    def official_ids(self):
        listed = SUBSETS[self.subset].ids
        return getattr(self, "listed_ids", None) if listed == "file" else listed

    @classmethod
    def track_for(cls, options):
        """``anomaly`` for the subsets with the whole-image ROI or the Fishyscapes ids, ``obstacle`` for the others."""
        subset = options.get("subset", "test")
        if subset not in SUBSETS:
            raise DatasetError(f"{cls.name}: subset: unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
        chosen = SUBSETS[subset]
        return "anomaly" if chosen.roi or chosen.ids is not None else "obstacle"

    @property
    def info(self):
        chosen = SUBSETS[self.subset]
        extra = {"roi_image": str(self.roi_path)} if chosen.roi else {}
        return {**super().info, "subset": self.subset, "official_split": chosen.official,
                "split_source": chosen.source, **extra}

    def _walk(self, split):
        images = self._require_dir(self.root / "leftImg8bit" / split)
        labels = self._require_dir(self.root / "gtCoarse" / split)
        if images is None or labels is None:
            return []
        frames = []
        for scene in sorted(p for p in images.iterdir() if p.is_dir()):
            for path in sorted(scene.iterdir()):
                ext = next((e for e in IMAGE_EXTS if path.name.endswith(IMAGE_SUFFIX + e)), None)
                if ext is None:
                    continue
                fid = path.name[: -len(IMAGE_SUFFIX + ext)]
                if scene_of(fid) != scene.name:
                    self._problem(path, f"not a Lost & Found frame of scene {scene.name} (expected {scene.name}_NNNNNN_NNNNNN)")
                    continue
                label = labels / scene.name / f"{fid}{LABEL_SUFFIX}"
                if self._require_file(label, f"label of frame {fid}"):
                    frames.append(Frame(fid, {"image": path, "label": label}))
        return frames

    def _discover(self):
        chosen = SUBSETS[self.subset]
        frames = sorted((f for split in chosen.splits for f in self._walk(split)), key=lambda f: f.id)
        if chosen.roi:
            self._load_roi()
        if chosen.ids is not None:
            wanted = set(self._listed_ids() if chosen.ids == "file" else chosen.ids)
            return [f for f in frames if f.id in wanted]
        if chosen.exclude_indices:
            full = SUBSETS[chosen.splits[0]].count
            if len(frames) != full:
                self._problem(
                    self.root / "leftImg8bit" / chosen.splits[0],
                    f"subset {self.subset} drops frames by their index in the full id-sorted {chosen.splits[0]} split "
                    f"({full} frames) but {len(frames)} were found")
                return []
            invalid = set(chosen.exclude_indices)
            frames = [f for i, f in enumerate(frames) if i not in invalid]
        return [f for f in frames if not f.id.startswith(chosen.exclude_prefix)] if chosen.exclude_prefix else frames

    def _listed_ids(self):
        """``FishyLAFObstacle-test``: ``test`` minus ``testInvalid`` of the ids file (upstream's FishyLAF-ids.json)."""
        if self.ids_path is None:
            self._problem(self.root, "subset fishyObstacleTest needs ids=PATH: the JSON with keys 'test' and "
                                     "'testInvalid' that road-anomaly-benchmark reads from $FISHY_LAF_ID_FILE")
            return ()
        try:
            data = json.loads(Path(self.ids_path).read_text())
            self.listed_ids = tuple(sorted(set(data["test"]) - set(data["testInvalid"])))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
            self._problem(Path(self.ids_path), f"not a FishyLAF ids file with lists 'test' and 'testInvalid' ({err!r})")
            return ()
        return self.listed_ids

    def _load_roi(self):
        self.roi_path = Path(self.roi_path) if self.roi_path is not None else self.root / ROI_FILE
        if not self._require_file(self.roi_path, "ROI image (road-anomaly-benchmark datasets/LAF_roi_2048.png; roi=PATH)"):
            return
        try:
            self.roi = read_label_png(self.roi_path).astype(bool)  # upstream: imread(roi_img).astype(bool)
        except FileReadError as err:
            self._problem(self.roi_path, f"unreadable ROI image ({err.what})")
            return
        if self.roi.ndim == 3:
            self.roi = self.roi[..., 0]

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], (0, 200))
        anomaly = label >= 2
        if self.roi is None:
            ood = anomaly.astype(np.uint8)
            ood[label == 0] = VOID
            return Sample(frame.id, image, ood)
        if self.roi.shape != label.shape:
            raise self._error(self.roi_path, f"ROI size {self.roi.shape[1]}x{self.roi.shape[0]} differs from frame "
                                             f"{frame.id} ({label.shape[1]}x{label.shape[0]})")
        ood = np.where(self.roi, 0, VOID).astype(np.uint8)
        ood[anomaly] = 1
        return Sample(frame.id, image, ood)
