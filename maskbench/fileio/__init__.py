"""Files in and out, safely: the bottom layer under datasets/, model/ and benchmark/ (imports only
:mod:`maskbench.errors`).

Reading: the format is recognised by its first bytes, never by the file name, and sizes claimed by a
header are checked before anything is allocated (:mod:`~maskbench.fileio.sniff`,
:mod:`~maskbench.fileio.arrays`, :mod:`~maskbench.fileio.images`). Writing: atomic files and writable
output folders (:mod:`~maskbench.fileio.write`); one process per output folder
(:mod:`~maskbench.fileio.lock`); both before a job starts (:mod:`~maskbench.fileio.claim`). Every failure is a
:mod:`maskbench.errors` exception naming the path.
"""

from maskbench.fileio.arrays import MAX_ARRAY_BYTES, read_hdf5_map, read_npy, read_npz
from maskbench.fileio.claim import claim_folder
from maskbench.fileio.images import MAX_IMAGE_PIXELS, read_image, read_label_png
from maskbench.fileio.lock import FolderLock, pid_alive
from maskbench.fileio.sniff import describe, expect, kind_of, read_head
from maskbench.fileio.write import (
    atomic_path, atomic_write, ensure_writable_dir, remove_stale_temps, write_bytes, write_json, write_text,
)

__all__ = ["MAX_ARRAY_BYTES", "MAX_IMAGE_PIXELS", "FolderLock", "atomic_path", "atomic_write", "claim_folder",
           "describe", "ensure_writable_dir", "expect", "kind_of", "pid_alive", "read_hdf5_map", "read_head",
           "read_image", "read_label_png", "read_npy", "read_npz", "remove_stale_temps", "write_bytes", "write_json",
           "write_text"]
