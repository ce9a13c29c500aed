"""Road Anomaly (Lis et al., ICCV 2019): 60 frames, 1280x720.

Layout of ``RoadAnomaly_jpg.zip`` (cvlab-epfl/detecting-the-unexpected ``src/datasets/road_anomaly.py``):
``frame_list.json`` (a JSON list of image file names), ``frames/<name>.jpg`` and
``frames/<name>.labels/labels_semantic.png``. Labels hold 0 (not anomaly) and 2 (anomaly); the original
loader takes ``labels >= 2`` as anomaly and has no void/ROI, so every pixel is 0 or 1 here.
Frame order is the sorted ids (not the JSON order); the id is the file name minus its extension.
"""

import json

import numpy as np

from maskbench.datasets.base import DATASETS, Dataset, Frame, Sample


@DATASETS.register
class RoadAnomaly(Dataset):
    """Road Anomaly: anomaly = label >= 2, everything else inlier, no void; protocol track ``anomaly``."""

    name = "road-anomaly"
    summary = "Road Anomaly (Lis et al.), 60 frames; label >= 2 anomaly, no void"
    root_dirname = "RoadAnomaly_jpg"
    official_count = 60
    track = "anomaly"
    label_convention = "labels_semantic.png: >= 2 -> 1 anomaly, else 0 inlier; no void (Lis et al.)"
    layout = """RoadAnomaly_jpg/
  frame_list.json                                 (JSON list of image names, e.g. "animals01_....jpg")
  frames/<name>.jpg
  frames/<name>.labels/labels_semantic.png        (0 not anomaly, 2 anomaly)"""

    def _frame_names(self, path):
        try:
            names = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            self._problem(path, f"unreadable frame list ({err})")
            return []
        if not isinstance(names, list) or not all(isinstance(n, str) and "." in n for n in names):
            self._problem(path, "expected a JSON list of image file names like \"animals01_x.jpg\"")
            return []
        return names

    def _discover(self):
        listing = self.root / "frame_list.json"
        if not self._require_file(listing, "frame list") or self._require_dir(self.root / "frames") is None:
            return []
        frames = []
        for name in self._frame_names(listing):
            fid = name.rsplit(".", 1)[0]
            image = self._listed(self.root / "frames", name, listing)
            if image is None:
                continue
            label = self.root / "frames" / f"{fid}.labels" / "labels_semantic.png"
            if self._require_file(image, f"image listed in {listing.name}") & self._require_file(label, f"label of frame {fid}"):
                frames.append(Frame(fid, {"image": image, "label": label}))
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        return Sample(frame.id, image, (label >= 2).astype(np.uint8))
