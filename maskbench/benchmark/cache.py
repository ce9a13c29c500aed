"""Forward-output cache: one ``.npz`` per (checkpoint, dataset, frame, resolution, view), never a pickle.

Layout under the cache root::

    <sha256[:16] of the checkpoint>/checkpoint.json        path, sha256, architecture config
    <sha256[:16]>/<dataset>/<quoted frame id>.<resolution>.<view>.npz

Each entry holds ``class_logits`` (float32 ``[Q, K+1]``), the mask logits in float16 and ``key`` (a JSON
string: format, checkpoint sha256, dataset name and version, frame id, sha256 of the image pixels, resolution,
view). A checkpoint's mask logits are stored as the network outputs them, ``mask_logits_quarter``
(``[Q, Hp/4, Wp/4]`` of the padded input, with ``processed_size``), 16x smaller than at image size; any other
forward's as ``mask_logits`` ``[Q, H, W]``. An entry is served only when its stored key equals the requested one, so a changed
checkpoint, dataset version, image, resolution or TTA view is never answered from the cache.
``view`` is ``"none"`` for the image and ``"hflip"`` for its horizontally flipped copy (``--tta flip``).
"""

import hashlib
import json
from pathlib import Path
from urllib.parse import quote

import numpy as np

from maskbench.benchmark.results import write_json_atomic, write_npz_atomic
from maskbench.errors import ConfigError, FileReadError, InputError, WriteError
from maskbench.fileio import FolderLock, read_npz

FORMAT = 1
VIEWS = ("none", "hflip")


def image_sha256(image):
    """sha256 of an image's shape, dtype and pixels (identifies the frame content in the cache key)."""
    image = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{image.dtype.str}{image.shape}".encode())
    h.update(image.data)
    return h.hexdigest()


class ForwardCache:
    """Forward outputs of one checkpoint on one dataset, read and written by frame id, resolution and view."""

    def __init__(self, root, checkpoint, dataset_name, dataset_version):
        self.root = Path(root)
        self.checkpoint = checkpoint
        self.dataset_name = dataset_name
        self.dataset_version = dataset_version
        self.folder = self.root / checkpoint["sha256"][:16] / dataset_name
        self._ready = False  # folder and checkpoint record written

    @staticmethod
    def checkpoint_in(root):
        """The checkpoint record of the only checkpoint cached under ``root`` (``--from-cache`` without ``--checkpoint``)."""
        root = Path(root)
        if not root.is_dir():
            raise ConfigError("from_cache", f" {root}: not a directory")
        records = sorted(root.glob("*/checkpoint.json"))
        if len(records) != 1:
            found = ", ".join(str(r.parent.name) for r in records) or "none"
            raise ConfigError("from_cache", f" {root}: expected the outputs of exactly one checkpoint, found {found}; "
                              "name the checkpoint to choose", mentions=("checkpoint",))
        try:
            return json.loads(records[0].read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{records[0]}: cannot read the checkpoint record ({err})") from err

    @staticmethod
    def recorded_config(root, sha256):
        """The architecture config recorded with checkpoint ``sha256`` under ``root`` (``None`` if absent)."""
        record = Path(root) / sha256[:16] / "checkpoint.json"
        try:
            return json.loads(record.read_text()).get("config") if record.is_file() else None
        except (OSError, ValueError) as err:
            raise InputError(f"{record}: cannot read the checkpoint record ({err})") from err

    def key(self, frame_id, image_hash, resolution, view):
        return {"format": FORMAT, "checkpoint_sha256": self.checkpoint["sha256"], "dataset": self.dataset_name,
                "dataset_version": self.dataset_version, "frame": frame_id, "image_sha256": image_hash,
                "resolution": resolution, "view": view}

    def path(self, frame_id, resolution, view):
        return self.folder / f"{quote(frame_id, safe='')}.{resolution}.{view}.npz"

    def load(self, key):
        """``{name: numpy array}`` of the entry for ``key`` (``key`` itself left out), or ``None`` when absent or stale."""
        path = self.path(key["frame"], key["resolution"], key["view"])
        if not path.is_file():
            return None
        try:
            arrays = read_npz(path, kinds="biufU")
            stored = json.loads(str(arrays.pop("key")))
        except FileReadError as err:
            raise FileReadError(path, f"unreadable cache entry ({err.what}); delete it to recompute") from None
        except (KeyError, ValueError) as err:
            raise FileReadError(path, f"unreadable cache entry (no valid key: {err}); delete it to recompute") from None
        return arrays if stored == key else None

    def lock(self):
        """A :class:`~maskbench.fileio.FolderLock` on this checkpoint's folder of this dataset (what a run writes);
        not yet acquired."""
        return FolderLock(self.folder)

    def store(self, key, **arrays):
        """Write one entry: ``arrays`` (``class_logits`` and the mask logits, see the module docstring) and ``key``."""
        if not self._ready:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise WriteError(self.folder, err.strerror or str(err), err.errno) from None
            record = self.folder.parent / "checkpoint.json"
            if not record.exists():
                write_json_atomic(record, self.checkpoint)
            self._ready = True
        write_npz_atomic(self.path(key["frame"], key["resolution"], key["view"]), sync=False,
                         key=np.array(json.dumps(key, sort_keys=True)), **arrays)

    def describe_miss(self, key):
        return (f"frame {key['frame']!r} ({key['view']} view, resolution {key['resolution']}, checkpoint "
                f"{key['checkpoint_sha256'][:16]}) is not in the cache {self.root} (or was cached with another "
                f"dataset version or image content)")
