"""The SegmentMeIfYouCan submission format: one HDF5 score file per frame, laid out as the official code stores them.

``road_anomaly_benchmark/evaluation.py`` ``Evaluation.save_output`` casts each score map to float16 and writes it
through ``datasets/dataset_io.py`` ``ChannelLoaderHDF5("anomaly_p/{method_name}/{dset_name}/{fid}.hdf5",
compression=9)``: one dataset ``value`` (H x W, higher = more anomalous) per file, gzip level 9. ``dset_name`` is
``cfg.get('name_for_persistence', cfg.name)`` of the split (``tracks.py``, ``tracks_extra.py``): every Obstacle
Track split (``ObstacleTrack-*``, ``ObstacleScene-*``, ``Erasing-*``) stores under ``ObstacleTrack-all``;
``LostAndFound-testValid`` / ``-testNoKnown`` under ``LostAndFound-test`` and ``LostAndFound-trainValid`` under
``LostAndFound-train``; every other split (``AnomalyTrack-all``, ``AnomalyTrack-animals``, ``LostAndFound-train``,
``LostAndFound-anomalyTest``, ``FishyLAFObstacle-val``, ...) under its own name. The frame id is used as it is,
dots included (``snowstorm1_00_16_02.578.hdf5``).
"""

import zipfile
from pathlib import Path

import h5py
import numpy as np

from maskbench.fileio import atomic_write

ROOT_DIR = "anomaly_p"
VALUE = "value"
GZIP_LEVEL = 9
SUFFIX = ".hdf5"
MANIFEST = "manifest.json"
#: The folder of each dataset's default split (``name_for_persistence``, ``tracks.py``).
OFFICIAL_NAMES = {"smiyc-ra21": "AnomalyTrack-all", "smiyc-ro21": "ObstacleTrack-all",
                  "lost-and-found": "LostAndFound-test"}
#: Splits whose ``name_for_persistence`` is not their own name: by name prefix (the Obstacle Track's ``DEFAULTS``
#: and ``ErasingSubset``) and by name (``DatasetLostAndFound``).
PERSISTENCE_PREFIXES = {"ObstacleTrack-": "ObstacleTrack-all", "ObstacleScene-": "ObstacleTrack-all",
                        "Erasing-": "ObstacleTrack-all"}
PERSISTENCE = {"LostAndFound-trainValid": "LostAndFound-train", "LostAndFound-testValid": "LostAndFound-test",
               "LostAndFound-testNoKnown": "LostAndFound-test"}
#: Fixed timestamp of the zip members, so the same files give the same zip bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def persistence_name(official_split):
    """``name_for_persistence`` of an official split name of road-anomaly-benchmark (its own name by default)."""
    prefix = next((p for p in PERSISTENCE_PREFIXES if official_split.startswith(p)), None)
    return PERSISTENCE_PREFIXES[prefix] if prefix else PERSISTENCE.get(official_split, official_split)


def dataset_folder(dataset_name, official_split=None):
    """The ``<dset_name>`` folder of a maskbench dataset: the persistence name of its selected official split
    (``ds.info["official_split"]``), else of its default split, else the dataset's own name (datasets the
    official code does not read: Fishyscapes, Road Anomaly, StreetHazards, bundles)."""
    if official_split:
        return persistence_name(official_split)
    return OFFICIAL_NAMES.get(dataset_name, dataset_name)


def value_path(root, method, folder, frame_id):
    """``<root>/anomaly_p/<method>/<folder>/<frame id>.hdf5``."""
    return Path(root) / ROOT_DIR / method / folder / f"{frame_id}{SUFFIX}"


def write_value(path, scores):
    """One score map as the official ``ChannelLoaderHDF5.write_file``: float16 dataset ``value``, gzip level 9
    (written under a temporary name, then renamed)."""
    value = np.asarray(scores).astype(np.float16)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    with atomic_write(path, "w+b") as handle, h5py.File(handle, "w") as f:
        f.create_dataset(VALUE, data=value, compression="gzip", compression_opts=GZIP_LEVEL)
    return path


def write_zip(path, root, members):
    """A zip of ``members`` (paths under ``root``, stored under their path relative to ``root``), in the given
    order, with fixed timestamps; HDF5 members are already compressed, so they are stored."""

    with atomic_write(path) as handle, zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as z:
        for member in members:
            info = zipfile.ZipInfo(Path(member).relative_to(root).as_posix(), ZIP_DATE)
            info.external_attr = 0o644 << 16
            z.writestr(info, Path(member).read_bytes())
    return Path(path)


__all__ = ["GZIP_LEVEL", "MANIFEST", "OFFICIAL_NAMES", "PERSISTENCE", "PERSISTENCE_PREFIXES", "ROOT_DIR", "SUFFIX",
           "VALUE", "dataset_folder", "persistence_name", "value_path", "write_value", "write_zip"]
