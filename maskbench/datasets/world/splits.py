"""The world's splits written in the official layouts, generated once into a cache folder.

============  =========================================  ============================  =======================
split         root (under the world root)                read with                      labels
============  =========================================  ============================  =======================
train         ``cityscapes/`` leftImg8bit/gtFine ``train`` :func:`training_set`          labelIds + labelTrainIds
val           ``cityscapes/`` leftImg8bit/gtFine ``val``   ``load_dataset("cityscapes")``  labelIds + labelTrainIds + instanceIds
anomaly       ``dataset_AnomalyTrack/`` (jpg)             ``load_dataset("smiyc-ra21")``  0 / 1 anomaly / 255 void
obstacle      ``dataset_ObstacleTrack/`` (lossless webp)  ``load_dataset("smiyc-ro21")``  0 road / 1 / 255 off-road
streethazards ``streethazards/test/.../{t5,t6}`` (png)    ``load_dataset("streethazards")`` raw 1..14, 14 anomaly
============  =========================================  ============================  =======================

The val split's ``instanceIds`` (for the Cityscapes iIoU) number each connected region (4-connectivity) of a
thing class (person, car) as ``labelId * 1000 + k``, k = 0, 1, ... in scan order: the renderer draws objects
without instance ids, so touching objects of one class are one instance. Everything else keeps its labelId.

Frame ``i`` of split ``s`` is rendered from ``SeedSequence([seed, SPLIT_CODES[s], i])``, so a frame does not
depend on the other frames or on the split sizes, and splits can be written in parallel. Each split is written
into a temporary folder, renamed into place and then marked complete (``.complete-<split>``), all under a file
lock: an interrupted generation is never used, it is redone. The world root is
``<cache>/world-v4-<digest of the configuration and of the generator's source>``; the cache is ``$MASKBENCH_CACHE``, else
``$XDG_CACHE_HOME/maskbench``, else ``~/.cache/maskbench``. Bump :data:`VERSION` whenever the renderer's output
changes on purpose (a shipped model trained on the world names the version it learned).
"""

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from maskbench.datasets.base import VOID
from maskbench.datasets.catalog import load_dataset
from maskbench.datasets.cityscapes import IMAGE_SUFFIX, INSTANCE_SUFFIX, LABEL_FILES, Cityscapes
from maskbench.datasets.cityscapes_labels import LABELS
from maskbench.datasets.replica_content import save as _save, save_jpg as _save_jpg
from maskbench.datasets.world.paint import (
    BUILDING, CAR, FENCE, PERSON, POLE, ROAD, SIDEWALK, SKY, TERRAIN, TRAFFIC_SIGN, VEGETATION, WALL,
)
from maskbench.datasets.world.scene import render_scene
from maskbench.errors import InputError, WriteError
from maskbench.fileio import write_text
from maskbench.workers import WorkerPool

VERSION = "world-v4"
SPLITS = ("train", "val", "anomaly", "obstacle", "streethazards")
EVAL_SPLITS = ("val", "anomaly", "obstacle", "streethazards")
SPLIT_CODES = {"train": 1, "val": 2, "anomaly": 3, "obstacle": 4, "streethazards": 5}
MODE = {"train": None, "val": None, "anomaly": "anomaly", "obstacle": "obstacle", "streethazards": "anomaly"}
DATASET_NAMES = {"val": "cityscapes", "anomaly": "smiyc-ra21", "obstacle": "smiyc-ro21", "streethazards": "streethazards"}
SPLIT_DIRS = {
    "train": ("cityscapes/leftImg8bit/train", "cityscapes/gtFine/train"),
    "val": ("cityscapes/leftImg8bit/val", "cityscapes/gtFine/val"),
    "anomaly": ("dataset_AnomalyTrack",),
    "obstacle": ("dataset_ObstacleTrack",),
    "streethazards": ("streethazards",),
}
CITY = "world"
EGO_LABEL_ID = 1  # cityscapesScripts labels.py: "ego vehicle", trainId 255
STATIC_LABEL_ID = 4  # cityscapesScripts labels.py: "static" (street furniture), trainId 255
DYNAMIC_LABEL_ID = 5  # cityscapesScripts labels.py: "dynamic" (movable clutter), trainId 255

# train id -> Cityscapes labelId (cityscapesScripts labels.py)
LABEL_IDS = np.full(256, 0, np.uint8)  # 0 "unlabeled"; only the ego vehicle and unused train ids reach it
LABEL_IDS[[ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR]] = \
    [7, 8, 11, 12, 13, 17, 20, 21, 22, 23, 24, 26]
# train id -> StreetHazards on-disk value (hendrycks/anomaly-seg: 1 unlabeled, 2 building, 3 fence, 4 other,
# 5 pedestrian, 6 pole, 7 road line, 8 road, 9 sidewalk, 10 vegetation, 11 car, 12 wall, 13 traffic sign).
# CARLA has no sky (unlabeled) and no terrain class ("other"); street furniture is "other" too.
STREETHAZARDS_VALUES = np.full(256, 1, np.uint8)
STREETHAZARDS_VALUES[[ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR]] = \
    [8, 9, 2, 12, 3, 6, 13, 10, 4, 1, 5, 11]
STREETHAZARDS_OTHER, STREETHAZARDS_ROAD_LINE, STREETHAZARDS_ANOMALY = 4, 7, 14


@dataclass(frozen=True)
class WorldConfig:
    """Everything the generated bytes depend on (besides :data:`VERSION`): seed, frame sizes, split sizes."""

    seed: int = 0
    size: tuple = (256, 512)
    streethazards_size: tuple = (288, 512)  # 16:9 like StreetHazards' 1280x720
    train: int = 1500
    val: int = 50
    anomaly: int = 40
    obstacle: int = 40
    streethazards: int = 40

    def frames(self, split):
        return getattr(self, split)

    def frame_size(self, split):
        return tuple(self.streethazards_size if split == "streethazards" else self.size)

    def digest(self):
        """Hash of the version, this configuration and the generator's source (a code change is a new world)."""
        text = json.dumps({"version": VERSION, **asdict(self)}, sort_keys=True, default=list)
        sha = hashlib.sha256(text.encode())
        for module in sorted(Path(__file__).parent.glob("*.py")):  # the renderer's modules and this one
            sha.update(module.read_bytes())
        return sha.hexdigest()[:12]


def frame_seed(config, split, index):
    """The seed of frame ``index`` of ``split``."""
    return np.random.SeedSequence([int(config.seed), SPLIT_CODES[split], int(index)])


def render_frame(config, split, index):
    """The :class:`~maskbench.datasets.world.scene.Scene` of frame ``index`` of ``split``."""
    ego = False if split == "streethazards" else None
    return render_scene(frame_seed(config, split, index), config.frame_size(split), mode=MODE[split], ego=ego)


def frame_ids(config, split):
    """Official-style frame ids of ``split``, in frame order."""
    n = config.frames(split)
    if split in ("train", "val"):
        return [f"{CITY}_{i:06d}_000019" for i in range(n)]
    if split == "anomaly":
        return [f"validation{i:04d}" for i in range(n)]
    if split == "obstacle":
        return [f"validation_{i + 1}" for i in range(n)]
    return [f"{'t5' if i < (n + 1) // 2 else 't6'}_{i + 1}" for i in range(n)]


THING_LABEL_IDS = tuple(int(v) for v in np.unique(LABEL_IDS) if any(lb.id == v and lb.has_instances for lb in LABELS))


def instance_ids(label_ids):
    """Cityscapes instanceIds (uint16) of a labelIds image: each 4-connected region of a thing class is one instance."""
    out = label_ids.astype(np.uint16)
    for label_id in THING_LABEL_IDS:
        regions, _ = ndimage.label(label_ids == label_id)
        inside = regions > 0
        out[inside] = label_id * 1000 + regions[inside] - 1
    return out


# -- one frame's files ----------------------------------------------------------------------------------------------
def _write_frame(out, config, split, index):
    scene = render_frame(config, split, index)
    fid = frame_ids(config, split)[index]
    if split in ("train", "val"):
        _save(out / "cityscapes" / "leftImg8bit" / split / CITY / f"{fid}{IMAGE_SUFFIX}", scene.image, compress_level=1)
        gt = out / "cityscapes" / "gtFine" / split / CITY
        label_ids = LABEL_IDS[scene.semantic]
        label_ids[scene.ego] = EGO_LABEL_ID
        label_ids[scene.static] = STATIC_LABEL_ID
        label_ids[scene.dynamic] = DYNAMIC_LABEL_ID
        _save(gt / f"{fid}{LABEL_FILES['labelIds'][0]}", label_ids)
        _save(gt / f"{fid}{LABEL_FILES['labelTrainIds'][0]}", scene.semantic)
        if split == "val":
            _save(gt / f"{fid}{INSTANCE_SUFFIX}", instance_ids(label_ids))
    elif split == "anomaly":
        root = out / "dataset_AnomalyTrack"
        _save_jpg(root / "images" / f"{fid}.jpg", scene.image)
        # SMIYC's labelling policy: unknown background objects are void, not "not anomaly"
        void = scene.ego | scene.static | scene.dynamic
        ood = np.where(scene.anomalies > 0, 1, np.where(void, VOID, 0)).astype(np.uint8)
        _save(root / "labels_masks" / f"{fid}_labels_semantic.png", ood)
    elif split == "obstacle":
        root = out / "dataset_ObstacleTrack"
        _save(root / "images" / f"{fid}.webp", scene.image, lossless=True, method=0)
        ood = np.where(scene.anomalies > 0, 1, np.where(scene.semantic == ROAD, 0, VOID)).astype(np.uint8)
        _save(root / "labels_masks" / f"{fid}_labels_semantic.png", ood)
    else:
        town, _, stem = fid.partition("_")
        raw = STREETHAZARDS_VALUES[scene.semantic]
        raw[scene.static | scene.dynamic] = STREETHAZARDS_OTHER
        raw[scene.road_line] = STREETHAZARDS_ROAD_LINE
        raw[scene.anomalies > 0] = STREETHAZARDS_ANOMALY
        _save(out / "streethazards" / "test" / "images" / "test" / town / f"{stem}.png", scene.image, compress_level=1)
        _save(out / "streethazards" / "test" / "annotations" / "test" / town / f"{stem}.png", raw)


def _write_frames(args):
    out, config, split, indices = args
    for i in indices:
        _write_frame(Path(out), config, split, i)


def write_split(out, config, split, workers=1):
    """Write every frame of ``split`` under ``out`` (the world root layout); ``workers`` processes."""
    n = config.frames(split)
    if split == "streethazards":  # both towns exist even when one has no frame
        for kind in ("images", "annotations"):
            for town in ("t5", "t6"):
                (Path(out) / "streethazards" / "test" / kind / "test" / town).mkdir(parents=True, exist_ok=True)
    if workers <= 1 or n < 2 * workers:
        _write_frames((str(out), config, split, range(n)))
        return
    # spawn, not fork: the caller may hold threads (torch, BLAS); frame k goes to worker k mod workers. The
    # workers ignore Ctrl-C and die with this process (maskbench.workers).
    with WorkerPool(workers, _write_frames, context="spawn") as pool:
        for _ in pool.imap_unordered([(str(out), config, split, range(k, n, workers)) for k in range(workers)]):
            pass


# -- the cache ------------------------------------------------------------------------------------------------------
def cache_dir():
    """``$MASKBENCH_CACHE``, else ``$XDG_CACHE_HOME/maskbench``, else ``~/.cache/maskbench``."""
    if os.environ.get("MASKBENCH_CACHE"):
        return Path(os.environ["MASKBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "maskbench"


@contextmanager
def _locked(path):
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _CityscapesSplit(Cityscapes):
    """The ``cityscapes`` reader on the ``train`` folders (the registered reader reads ``val`` only)."""

    summary = "miniature-world training split in the Cityscapes layout"
    official_count = None

    def __init__(self, root, split, labels="labelTrainIds"):
        self.split = split
        super().__init__(root, labels=labels)


@dataclass(frozen=True)
class World:
    """A generated world: ``root`` and the configuration it was generated from."""

    root: Path
    config: WorldConfig

    def path(self, split):
        """The dataset root of ``split`` (the Cityscapes root for ``train`` and ``val``)."""
        _check_split(split)
        return self.root / SPLIT_DIRS[split][0].split("/")[0]

    def complete(self, split):
        return (self.root / f".complete-{split}").is_file()

    def dataset(self, split, **options):
        """``split`` read back by maskbench's reader of its official layout (``train`` by :func:`training_set`)."""
        if not self.complete(split):
            raise InputError(f"world split {split!r} has not been generated under {self.root}; "
                             f"call ensure_world(splits=[{split!r}])")
        if split == "train":
            return training_set(self.path(split), **options)
        return load_dataset(DATASET_NAMES[split], self.path(split), **options)


def training_set(root, labels="labelTrainIds"):
    """The ``train`` split of a Cityscapes-layout root (``leftImg8bit/train``, ``gtFine/train``) as samples."""
    ds = _CityscapesSplit(root, "train", labels=labels)
    if ds.problems:
        raise InputError(f"training split under {root}: " + "; ".join(str(p) for p in ds.problems[:5]))
    return ds


def _check_split(split):
    if split not in SPLITS:
        raise InputError(f"unknown world split {split!r}; choose from {', '.join(SPLITS)}")


def ensure_world(splits=EVAL_SPLITS, *, config=None, cache=None, workers=None, log=None):
    """The world root holding ``splits``, generating the missing ones first (atomically, under a lock).

    ``config`` (:class:`WorldConfig`) sets seed and sizes; ``cache`` the parent folder (default
    :func:`cache_dir`); ``workers`` the processes writing a split (default: the cores, at most 4, for the
    training split; 1 for the small evaluation splits); ``log(line)`` hears of each split generated. Returns a
    :class:`World`. A cache that cannot be written (read-only, full) is a :class:`~maskbench.errors.WriteError`
    naming the folder; an interrupted or failed generation leaves nothing behind but its lock file.
    """
    config = config or WorldConfig()
    splits = (splits,) if isinstance(splits, str) else tuple(splits)
    for name in ("size", "streethazards_size"):
        size = getattr(config, name)
        if len(size) != 2 or not all(isinstance(v, int) and v >= 32 for v in size):
            raise InputError(f"WorldConfig.{name} must be (height, width), each an int >= 32, got {size!r}")
    for split in splits:
        _check_split(split)
        if not isinstance(config.frames(split), int) or config.frames(split) < 1:
            raise InputError(f"WorldConfig.{split} must be a positive frame count, got {config.frames(split)!r}")
    root = Path(cache or cache_dir()) / f"{VERSION}-{config.digest()}"
    world = World(root, config)
    if all(world.complete(s) for s in splits):
        return world
    try:
        _generate(world, splits, workers, log or (lambda line: None))
    except (OSError, WriteError) as err:  # the cache folder (root) is what the user can change: name it
        reason = err.reason if isinstance(err, WriteError) else err.strerror or str(err)
        raise WriteError(root, f"{reason} (the miniature world's cache; $MASKBENCH_CACHE puts it elsewhere)",
                         err.errno) from None
    return world


def _generate(world, splits, workers, log):
    root, config = world.root, world.config
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        for stale in root.glob(".tmp-*"):  # left by an interrupted generation; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        manifest = root / "world.json"
        if not manifest.is_file():
            write_text(manifest, json.dumps({"version": VERSION, "config": asdict(config),
                                             "splits": {s: SPLIT_DIRS[s] for s in SPLITS}}, indent=1))
        for split in splits:
            if world.complete(split):
                continue
            log(f"world: generating the {split} split ({config.frames(split)} frames) into {root}")
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{split}-", dir=root))
            try:
                default = min(4, os.cpu_count() or 1) if split == "train" else 1  # pool start-up > gain
                write_split(tmp, config, split, workers=workers or default)
                for rel in SPLIT_DIRS[split]:
                    target = root / rel
                    if target.exists():  # a previous generation renamed it but never completed the split
                        shutil.rmtree(target)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(tmp / rel, target)
                write_text(root / f".complete-{split}", json.dumps({"frames": config.frames(split)}))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return world
