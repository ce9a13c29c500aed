"""Fishyscapes validation sets (Blum et al. 2021): Lost & Found (100 frames) and Static (30 frames).

Label files as shipped by hermannsblum/bdl-benchmark ``bdlb/fishyscapes/fishyscapes_tfds.py``:
``NNNN_<base id>_labels.png`` with 0 in-distribution, 1 anomaly, 255 void, used as stored (the official
metric keeps ``label in {0, 1}``). Frame id = the label name minus ``_labels.png``, i.e. ``NNNN_<base id>``
(the TFDS ``image_id`` NNNN and ``basedata_id``), so frames come in Fishyscapes order.
Images are not shipped: FS Lost & Found uses the Lost & Found left images (train and test splits); FS Static
builds each image as ``clip(cityscapes_val_leftImg8bit + npz['rgb'], 0, 255)`` from ``NNNN_<id>_rgb.npz``.

Official frame list of FS Lost & Found: the 100 Lost & Found ids of road-anomaly-benchmark ``tracks_extra.py``
``FishyscapesLAFSubset.FRAME_IDS_SETS['Anomaly-val']`` (the Fishyscapes relabelling of those frames), compared with
the ``<base id>`` part of each frame id; the TFDS numbers ``NNNN`` are not listed anywhere public, so they are not
checked. FS Static has no published list (its 30 Cityscapes val ids are only in the TFDS archive).
"""

import re

import numpy as np

from maskbench.datasets.base import DATASETS, Dataset, Frame, Sample, files_with_suffix
from maskbench.datasets.lost_and_found import find_laf_image
from maskbench.datasets.lost_and_found_splits import FISHY_LAF_VAL
from maskbench.errors import FileReadError
from maskbench.fileio import read_npz

LABEL_SUFFIX = "_labels.png"
FISHY_ID = re.compile(r"([0-9]+)_(.+)")
LAF_LABEL_DIR = "fishyscapes_lostandfound"
STATIC_DIR = re.compile(r"fs_val_v([0-9]+)")
LABEL_CONVENTION = "Fishyscapes labels.png used as stored: 0 inlier, 1 anomaly, 255 void"


def _label_files(dataset, directory):
    """``{fid: label path}`` of the Fishyscapes label files in ``directory``; malformed names are problems."""
    labels = {}
    for fid, path in files_with_suffix(directory, LABEL_SUFFIX).items():
        if FISHY_ID.fullmatch(fid):
            labels[fid] = path
        else:
            dataset._problem(path, "label name does not match NNNN_<frame id>_labels.png")
    return labels


@DATASETS.register
class FishyscapesLostAndFound(Dataset):
    """Fishyscapes Lost & Found validation (100 frames, scenes of both Lost & Found splits); track ``anomaly``.

    Root: a Lost & Found root (``leftImg8bit/{train,test}/...``) holding ``fishyscapes_lostandfound/``;
    ``labels_root=`` points elsewhere for the label files (that folder or its parent).
    """

    name = "fs-laf"
    summary = "Fishyscapes Lost & Found validation (100): Fishyscapes labels + Lost & Found images (train and test)"
    official_count = 100
    track = "anomaly"
    label_convention = LABEL_CONVENTION
    layout = f"""<LostAndFound root>/
  leftImg8bit/{{train,test}}/<NN_scene>/<laf id>_leftImg8bit.png
  {LAF_LABEL_DIR}/NNNN_<laf id>_labels.png      (100; 0 inlier, 1 anomaly, 255 void; or labels_root=DIR)"""

    def __init__(self, root=None, *, labels_root=None, frames="labelled"):
        self.labels_root = labels_root
        super().__init__(root, frames=frames)

    @property
    def official_ids(self):
        return FISHY_LAF_VAL

    def official_id(self, frame_id):
        """The Lost & Found id of ``NNNN_<laf id>``."""
        match = FISHY_ID.fullmatch(frame_id)
        return match.group(2) if match else frame_id

    def _discover(self):
        labels_dir = self.root / LAF_LABEL_DIR
        if self.labels_root is not None:
            given = self._require_dir(self.labels_root)
            if given is None:
                return []
            labels_dir = given / LAF_LABEL_DIR if (given / LAF_LABEL_DIR).is_dir() else given
        if self._require_dir(labels_dir) is None or self._require_dir(self.root / "leftImg8bit") is None:
            return []
        frames = []
        for fid, label in _label_files(self, labels_dir).items():
            laf_id = FISHY_ID.fullmatch(fid).group(2)
            image = find_laf_image(self.root, laf_id)
            if image is None:
                self._problem(
                    self.root / "leftImg8bit" / "{train,test}" / "<scene>" / f"{laf_id}_leftImg8bit.png",
                    f"missing Lost & Found image of frame {fid}",
                )
            else:
                frames.append(Frame(fid, {"image": image, "label": label}))
        return frames

    def _load(self, frame):
        image = self._read_image(frame.paths["image"])
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], {0, 1, 255})
        return Sample(frame.id, image, label.astype(np.uint8, copy=False))


@DATASETS.register
class FishyscapesStatic(Dataset):
    """Fishyscapes Static validation (30 frames) on Cityscapes val; track ``anomaly``.

    Root: a Cityscapes root (``leftImg8bit/val/<city>/...``) holding ``fs_val_v<N>/``. Without ``version=``
    the newest version present is used; results differ between v1/v2/v3, so ``info['version']`` records it.
    """

    name = "fs-static"
    summary = "Fishyscapes Static validation (30): Cityscapes val + fs_val_vN/*_rgb.npz overlays (newest version)"
    official_count = 30
    track = "anomaly"
    label_convention = LABEL_CONVENTION
    layout = """<Cityscapes root>/
  leftImg8bit/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png
  fs_val_v<N>/NNNN_<city>_<seq>_<frame>_labels.png   (30; 0 inlier, 1 anomaly, 255 void)
  fs_val_v<N>/NNNN_<city>_<seq>_<frame>_rgb.npz      (key 'rgb': signed overlay added to the Cityscapes image)"""

    def __init__(self, root=None, *, version=None, frames="labelled"):
        if version is not None and not re.fullmatch(r"v?[0-9]+", str(version)):
            raise self._error("version", f"expected a Fishyscapes Static version like 3 or 'v3', got {version!r}")
        self.requested_version = version
        super().__init__(root, frames=frames)

    def _discover(self):
        versions = (STATIC_DIR.fullmatch(p.name) for p in self.root.iterdir() if p.is_dir())
        present = sorted(int(m.group(1)) for m in versions if m)
        wanted = self.requested_version
        if wanted is not None:
            wanted = int(str(wanted).lstrip("v"))
        elif present:
            wanted = present[-1]
        if wanted is None or wanted not in present:
            self._problem(self.root / f"fs_val_v{wanted or '<N>'}", f"missing directory (versions present: {present})")
            return []
        self.version = f"v{wanted}"
        directory = self.root / f"fs_val_v{wanted}"
        frames = []
        for fid, label in _label_files(self, directory).items():
            city_id = FISHY_ID.fullmatch(fid).group(2)
            overlay = directory / f"{fid}_rgb.npz"
            base = self.root / "leftImg8bit" / "val" / city_id.split("_")[0] / f"{city_id}_leftImg8bit.png"
            if self._require_file(overlay, f"overlay of frame {fid}") & self._require_file(base, f"Cityscapes image of frame {fid}"):
                frames.append(Frame(fid, {"base": base, "overlay": overlay, "label": label}))
        return frames

    def _read_overlay(self, path, shape):
        try:
            rgb = read_npz(path, keys=("rgb",))["rgb"]
        except FileReadError as err:
            raise self._error(path, f"overlay: {err.what}") from None
        if rgb.shape != shape or not (np.issubdtype(rgb.dtype, np.integer) or np.issubdtype(rgb.dtype, np.floating)):
            raise self._error(path, f"overlay 'rgb' is {rgb.dtype} {rgb.shape}, expected numbers of shape {shape}")
        return rgb.astype(np.int64)  # bdl-benchmark: np.load(...)['rgb'].astype(int)

    def _load(self, frame):
        base = self._read_image(frame.paths["base"])
        rgb = self._read_overlay(frame.paths["overlay"], base.shape)
        image = np.clip(base.astype(np.int64) + rgb, 0, 255).astype(np.uint8)
        label = self._read_label(frame.paths["label"], image.shape)
        self._check_values(label, frame.paths["label"], {0, 1, 255})
        return Sample(frame.id, image, label.astype(np.uint8, copy=False))
