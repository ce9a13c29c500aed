"""COCO panoptic val2017 (5000 images) with the open-set unknown splits of EOPSN (Hwang et al., CVPR 2021).

Layout (cocodataset/panopticapi; facebookresearch/Mask2Former ``datasets/README.md``):
``annotations/panoptic_val2017.json``, ``val2017/<12-digit id>.jpg``, ``panoptic_val2017/<12-digit id>.png``
with segment id ``R + 256 G + 256^2 B`` per pixel (``panopticapi/utils.py:rgb2id``), 0 = void.

Unknown thing classes (``split=``, jd730/EOPSN ``datasets/unknown/unknown_K*.txt``; K is the percentage of
the 80 thing classes; default ``K20``, the split RbA uses). The benchmark's anomaly map for COCO (a harness
choice, not an upstream convention): pixels of non-crowd unknown-class segments 1, other labelled pixels 0,
void (id 0) and crowd segments 255. ``semantic`` holds the COCO category id of known-class segments
(crowd included) and 255 for void and unknown classes. ``panoptic`` (int32 segment ids) and ``segments``
(``id, category_id, iscrowd, isthing, unknown`` per segment) are the ground truth for PQ, where EOPSN
relabels every unknown segment as one "unknown" class.
"""

import json

import numpy as np

from maskbench.datasets.base import DATASETS, VOID, Dataset, Frame, Sample
from maskbench.errors import FileReadError
from maskbench.fileio import read_label_png

UNKNOWN_SPLITS = {
    "K5": ("car", "cow", "pizza", "toilet"),
    "K10": ("car", "boat", "cow", "tie", "pizza", "zebra", "toilet", "stop sign"),
    "K20": ("car", "dining table", "boat", "banana", "cow", "bicycle", "tie", "cake", "pizza", "sink", "zebra",
            "cat", "toilet", "keyboard", "stop sign", "bear"),
}
ANNOTATIONS = "annotations/panoptic_val2017.json"


def rgb_to_id(rgb):
    """Panoptic segment ids (int32) from an (H, W, 3+) uint8 PNG: ``R + 256 G + 256^2 B`` (panopticapi ``rgb2id``)."""
    rgb = rgb.astype(np.int32)
    return rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]


def id_to_rgb(ids):
    """The (H, W, 3) uint8 PNG of panoptic segment ids: the inverse of :func:`rgb_to_id` (panopticapi ``id2rgb``)."""
    ids = np.asarray(ids).astype(np.uint32)
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536 % 256], axis=-1).astype(np.uint8)


@DATASETS.register
class CocoOpenPanoptic(Dataset):
    """COCO panoptic val2017 with EOPSN unknown thing classes; ``ood`` marks unknown-class segments."""

    name = "coco-open-panoptic"
    summary = "COCO panoptic val2017 (5000) with EOPSN unknown thing splits K5/K10/K20 (default K20)"
    official_count = 5000
    track = None  # open-set panoptic task: PQ, not the SMIYC component track
    layout = f"""<coco root>/
  {ANNOTATIONS}      (images[], annotations[] with segments_info[], categories[])
  val2017/<12-digit id>.jpg
  panoptic_val2017/<12-digit id>.png    (RGB-encoded segment ids, 0 void)"""

    def __init__(self, root=None, *, split="K20", frames="labelled"):
        if split not in UNKNOWN_SPLITS:
            raise self._error("split", f"unknown split {split!r}; choose one of {', '.join(UNKNOWN_SPLITS)}")
        self.split = split
        self.label_convention = (
            f"EOPSN {split} unknown things -> 1, other segments -> 0, void and crowd -> 255"
        )
        self.unknown_ids = ()
        super().__init__(root, frames=frames)

    @property
    def info(self):
        return {**super().info, "split": self.split, "unknown_classes": list(UNKNOWN_SPLITS[self.split]),
                "unknown_category_ids": list(self.unknown_ids)}

    def _read_annotations(self, path):
        try:
            data = json.loads(path.read_text())
            categories = {c["id"]: c for c in data["categories"]}
            by_name = {c["name"]: c["id"] for c in data["categories"]}
            images = {im["id"]: im["file_name"] for im in data["images"]}
            annotations = [(a["image_id"], a["file_name"], a["segments_info"]) for a in data["annotations"]]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            self._problem(path, f"unreadable annotation file ({err})")
            return None
        except (KeyError, TypeError) as err:
            self._problem(path, f"not a COCO panoptic annotation file (missing or malformed {err})")
            return None
        return categories, by_name, images, annotations

    def _discover(self):
        path = self.root / ANNOTATIONS
        if not self._require_file(path, "panoptic annotation file"):
            return []
        parsed = self._read_annotations(path)
        if parsed is None:
            return []
        self.categories, by_name, images, annotations = parsed
        missing = [n for n in UNKNOWN_SPLITS[self.split] if n not in by_name]
        if missing:
            self._problem(path, f"categories lack the {self.split} unknown classes {missing}")
            return []
        self.unknown_ids = tuple(sorted(by_name[n] for n in UNKNOWN_SPLITS[self.split]))
        frames, self.segments_info = [], {}
        for image_id, png_name, segments in annotations:
            image = self._listed(self.root / "val2017", images.get(image_id, f"<image id {image_id} not in images[]>"),
                                 path)
            png = self._listed(self.root / "panoptic_val2017", png_name, path)
            if image is None or png is None:
                continue
            if self._require_file(image, f"image of annotation {png_name}") & self._require_file(png, "panoptic PNG"):
                fid = image.name.rsplit(".", 1)[0]
                frames.append(Frame(fid, {"image": image, "panoptic": png}))
                self.segments_info[fid] = segments
        return frames

    def _segments(self, info, path):
        try:
            return tuple(
                {"id": int(s["id"]), "category_id": int(s["category_id"]), "iscrowd": int(s.get("iscrowd", 0)),
                 "isthing": int(self.categories[s["category_id"]]["isthing"]),
                 "unknown": s["category_id"] in self.unknown_ids}
                for s in info
            )
        except (KeyError, TypeError, ValueError) as err:
            raise self._error(path, f"malformed segments_info in {ANNOTATIONS} ({err!r})") from None

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        png = frame.paths["panoptic"]
        try:  # a PNG by signature (a JPEG would change the ids), RGB(A) as panopticapi's rgb2id reads it
            panoptic = rgb_to_id(read_label_png(png, modes=("RGB", "RGBA"))[..., :3])
        except FileReadError as err:
            raise self._error(png, "panoptic PNG is missing" if err.missing else err.what) from None
        if panoptic.shape != image.shape[:2]:
            raise self._error(png, f"panoptic size {panoptic.shape[1]}x{panoptic.shape[0]} differs from image "
                                   f"size {image.shape[1]}x{image.shape[0]}")
        segments = self._segments(self.segments_info[frame.id], png)
        listed = {s["id"] for s in segments}
        present = set(np.unique(panoptic).tolist()) - {0}
        if present - listed:
            raise self._error(png, f"unexpected segment id(s) {sorted(present - listed)} not in segments_info")
        if listed - present:
            raise self._error(png, f"segments_info lists id(s) {sorted(listed - present)} absent from the PNG")
        ood = np.full(panoptic.shape, VOID, dtype=np.uint8)
        semantic = np.full(panoptic.shape, VOID, dtype=np.uint8)
        for s in segments:
            mask = panoptic == s["id"]
            if not s["iscrowd"]:
                ood[mask] = 1 if s["unknown"] else 0
            if not s["unknown"]:
                semantic[mask] = s["category_id"]
        return Sample(frame.id, image, ood, semantic=semantic, panoptic=panoptic, segments=segments)
