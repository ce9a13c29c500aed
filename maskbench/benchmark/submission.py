"""The SegmentMeIfYouCan submission format: one HDF5 score file per frame, laid out as the official code stores them.

``road_anomaly_benchmark/evaluation.py`` ``Evaluation.save_output`` casts each score map to float16 and writes it
through ``datasets/dataset_io.py`` ``ChannelLoaderHDF5("anomaly_p/{method_name}/{dset_name}/{fid}.hdf5",
compression=9)``: one dataset ``value`` (H x W, higher = more anomalous) per file, gzip level 9. ``dset_name`` is
the dataset's ``name_for_persistence`` (``tracks.py``): every ObstacleTrack split stores under
``ObstacleTrack-all``, the Anomaly Track under ``AnomalyTrack-all``, the Lost & Found test subsets under
``LostAndFound-test``. The frame id is used as it is, dots included (``snowstorm1_00_16_02.578.hdf5``).
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
#: ``name_for_persistence`` of the official splits, by maskbench dataset name (``tracks.py``).
OFFICIAL_NAMES = {"smiyc-ra21": "AnomalyTrack-all", "smiyc-ro21": "ObstacleTrack-all",
                  "lost-and-found": "LostAndFound-test"}
#: Fixed timestamp of the zip members, so the same files give the same zip bytes.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def dataset_folder(dataset_name):
    """The ``<dset_name>`` folder of a maskbench dataset: the official persistence name, else its own name."""
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


__all__ = ["GZIP_LEVEL", "MANIFEST", "OFFICIAL_NAMES", "ROOT_DIR", "SUFFIX", "VALUE", "dataset_folder",
           "value_path", "write_value", "write_zip"]
