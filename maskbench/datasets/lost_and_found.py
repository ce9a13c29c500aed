"""Lost & Found test split (Pinggera et al. 2016), the obstacle protocol of SegmentMeIfYouCan.

Cityscapes-style layout: ``leftImg8bit/test/<NN_scene>/<fid>_leftImg8bit.png`` and
``gtCoarse/test/<NN_scene>/<fid>_gtCoarse_labelIds.png``. Labels are the ``labelIds`` (not the
``labelTrainIds``, whose trainId 0 silently turns the "non-hazard" objects 31, 33, 34, 36..39 into inliers):
0 -> void (unlabelled, ego vehicle, off-road), 1 (free space) -> inlier, 2..200 -> anomaly, exactly as
SegmentMeIfYouCan/road-anomaly-benchmark ``datasets/tracks.py`` ``LAF_CLASSES``. Values above 200 are rejected.

Subsets (``subset=``), from the same file:

- ``test`` (default): all 1203 test frames;
- ``testValid``: 1186, dropping the 17 frames whose labels are all zero, given as indices into the
  id-sorted full test split (so this needs the complete split);
- ``testNoKnown``: 1043, ``testValid`` minus frames starting with the prefixes in :data:`NO_KNOWN_PREFIXES`
  (children and bicycles, i.e. known Cityscapes classes).
"""

import re

from maskbench.datasets.base import DATASETS, Dataset, Frame, Sample

LAF_ID = re.compile(r"([0-9]{2})_(.*)_([0-9]{6})_([0-9]{6})")
IMAGE_SUFFIX = "_leftImg8bit"
IMAGE_EXTS = (".png", ".webp", ".jpg")
LABEL_SUFFIX = "_gtCoarse_labelIds.png"

TEST_COUNT = 1203
INVALID_TEST_INDICES = (17, 37, 55, 72, 91, 110, 129, 153, 174, 197, 218, 353, 490, 618, 686, 792, 793)
NO_KNOWN_PREFIXES = (
    "15_Rechbergstr_Deckenpfronn",  # children
    "01_Hanns_Klemm_Str_45_000006",  # bicycles
    "01_Hanns_Klemm_Str_45_000007",
    "10_Schlossberg_9_000004",
)
SUBSET_COUNTS = {"test": 1203, "testValid": 1186, "testNoKnown": 1043}


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
    """Lost & Found test split; labelIds 0 void, 1 inlier (free space), 2..200 anomaly; protocol track ``obstacle``."""

    name = "lost-and-found"
    summary = "Lost & Found test split, labelIds (0 void, 1 road, 2..200 obstacle); subset test|testValid|testNoKnown"
    track = "obstacle"
    official_count = TEST_COUNT
    label_convention = "gtCoarse labelIds: 0 -> 255 void, 1 -> 0 inlier, 2..200 -> 1 anomaly (SMIYC LAF_CLASSES)"
    layout = """<LostAndFound root>/
  leftImg8bit/test/<NN_scene>/<NN_scene>_<seq:06d>_<frame:06d>_leftImg8bit.png   (1203 frames; webp/jpg accepted)
  gtCoarse/test/<NN_scene>/<same id>_gtCoarse_labelIds.png                        (0 void, 1 free space, 2.. objects)"""

    def __init__(self, root=None, *, subset="test"):
        if subset not in SUBSET_COUNTS:
            raise self._error("subset", f"unknown subset {subset!r}; choose one of {', '.join(SUBSET_COUNTS)}")
        self.subset = subset
        self.official_count = SUBSET_COUNTS[subset]
        super().__init__(root)

    @property
    def info(self):
        return {**super().info, "subset": self.subset}

    def _discover(self):
        images = self._require_dir(self.root / "leftImg8bit" / "test")
        labels = self._require_dir(self.root / "gtCoarse" / "test")
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
        frames.sort(key=lambda f: f.id)
        return self._select(frames)

    def _select(self, frames):
        if self.subset == "test":
            return frames
        if len(frames) != TEST_COUNT:
            self._problem(
                self.root / "leftImg8bit" / "test",
                f"subset {self.subset} drops frames by their index in the full id-sorted test split "
                f"({TEST_COUNT} frames) but {len(frames)} were found",
            )
            return []
        invalid = set(INVALID_TEST_INDICES)
        frames = [f for i, f in enumerate(frames) if i not in invalid]
        if self.subset == "testNoKnown":
            frames = [f for f in frames if not f.id.startswith(NO_KNOWN_PREFIXES)]
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], (0, 200))
        ood = ((label >= 2).astype("uint8"))
        ood[label == 0] = 255
        return Sample(frame.id, image, ood)
