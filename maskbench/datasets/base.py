"""Shared machinery for every dataset: samples, the registry, root resolution, file walking and checked reads.

A dataset walks its root once at construction (file names only) and reads one frame per ``ds[i]``.
Every problem found on disk is recorded as a :class:`Problem` naming the path; :func:`load_dataset`
refuses a dataset with problems, ``bench datasets check`` lists them all.

Frames: ``frames="labelled"`` (default) yields the frames that carry labels; ``frames="all"`` every frame of
the selected split, labelled or not (e.g. the SMIYC test frames, whose labels are withheld): a frame without
labels has ``ood is None``. ``ds.info["labelled_count"]`` counts the yielded frames with labels and
``ds.info["unlabelled_ids"]`` names the others.

Roots: an explicit ``root`` wins; otherwise ``$MASKBENCH_ROOT_<NAME>`` (name upper-cased, ``-`` -> ``_``,
e.g. ``MASKBENCH_ROOT_SMIYC_RA21``), otherwise ``$MASKBENCH_DATA/<name>`` (e.g. ``$MASKBENCH_DATA/smiyc-ra21``).

Paths: symbolic links under a root are followed, also to files outside it (a root assembled from links into a
shared store is common, and the root is the user's own arrangement); every file is still read by signature
(:mod:`maskbench.fileio`). A file name that a dataset's own files give (``frame_list.json``, the COCO annotation
``file_name``) must be a relative name without ``..``: one that would leave its folder is a problem naming the
listing, never opened (:meth:`Dataset._listed`).
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from maskbench.errors import DatasetError, FileReadError
from maskbench.fileio import read_image, read_label_png
from maskbench.registry import ClassRegistry

VOID = 255
"""Void / ignore value of every ``ood`` and ``semantic`` map produced here."""

FRAMES = ("labelled", "all")
"""Values of the ``frames`` option of every dataset."""


@dataclass(frozen=True, eq=False)
class Sample:
    """One frame: ``image`` uint8 (H, W, 3) RGB; ``ood`` uint8 (H, W) 0 inlier / 1 anomaly / 255 void, or
    ``None`` for a frame without labels (``frames="all"``: e.g. the SMIYC test frames).

    ``semantic`` (uint8 (H, W), known-class ids, 255 ignore), ``panoptic`` (int32 (H, W) segment ids, 0 void),
    ``segments`` (one dict per segment id), ``label_ids`` (uint8 (H, W) Cityscapes labelIds) and ``instance_ids``
    (int32 (H, W) Cityscapes instanceIds: labelId, or labelId * 1000 + k on a thing instance) are ``None`` where
    the frame has no such ground truth.
    """

    id: str
    image: np.ndarray
    ood: np.ndarray | None
    semantic: np.ndarray | None = None
    panoptic: np.ndarray | None = None
    segments: tuple | None = None
    label_ids: np.ndarray | None = None
    instance_ids: np.ndarray | None = None


@dataclass(frozen=True)
class Frame:
    """A discovered frame: its official id, the files it is read from (keyed by role), whether it has labels."""

    id: str
    paths: dict = field(hash=False)
    labelled: bool = True


@dataclass(frozen=True)
class Variant:
    """One official split (or policy) a dataset option selects: ``option=value`` is the reference's ``official``
    name, with ``count`` frames (``labelled`` of them with public labels; ``None``: the reference gives no count)
    per ``source`` (reference repository file)."""

    option: str
    value: str
    official: str
    count: int | None
    labelled: int | None
    source: str


@dataclass(frozen=True)
class Problem:
    """Something wrong on disk: ``path`` and what is wrong with it."""

    path: Path
    what: str

    def __str__(self):
        return f"{self.path}: {self.what}"


def env_roots(name):
    """The environment variables consulted for ``name``'s root, in order."""
    return (f"MASKBENCH_ROOT_{name.upper().replace('-', '_')}", "MASKBENCH_DATA")


def _root_from_env(name):
    per_dataset, shared = env_roots(name)
    if os.environ.get(per_dataset):
        return Path(os.environ[per_dataset]), per_dataset
    if os.environ.get(shared):
        return Path(os.environ[shared]) / name, f"${shared}/{name}"
    return None, None


class Dataset:
    """Base class: lazy, ordered frames of one benchmark read from its official on-disk layout.

    Subclasses set the class attributes below, implement ``_discover()`` (returns the frames, recording
    problems with ``self._problem``) and ``_load(frame) -> Sample``, and extend ``info``. Frames are yielded
    sorted by ``_order`` (the frame id unless a subclass says otherwise).
    """

    name = ""
    summary = ""
    layout = ""
    official_count = None
    track = None
    version = None
    root_dirname = None  # the official top folder; its parent is accepted as root too
    label_convention = ""
    variants = ()  # the official splits and policies its options select (``Variant``), for listings and checks

    def __init__(self, root=None, *, frames="labelled"):
        if frames not in FRAMES:
            raise self._error("frames", f"unknown frames option {frames!r}; choose one of {', '.join(FRAMES)}")
        self.frames_option = frames
        self.problems = []
        self.root = self._resolve_root(root)
        found = self._discover()
        self.frames = sorted((f for f in found if f.labelled or frames == "all"), key=self._order)
        seen = set()
        for frame in self.frames:
            if frame.id in seen:
                self._problem(next(iter(frame.paths.values())), f"second file for frame {frame.id}")
            seen.add(frame.id)

    @staticmethod
    def _order(frame):
        return frame.id

    @classmethod
    def track_for(cls, options):
        """The protocol track (``"anomaly"``, ``"obstacle"`` or ``None``) of the frames the reader ``options`` select,
        known before anything is read (``info["track"]`` of the loaded dataset)."""
        return cls.track

    # -- public API ----------------------------------------------------------------------------------
    def __len__(self):
        return len(self.frames)

    def __getitem__(self, index):
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"{self.name}: index with an int, got {type(index).__name__}")
        return self._load(self.frames[index])

    def __iter__(self):
        for frame in self.frames:
            yield self._load(frame)

    @property
    def ids(self):
        return [frame.id for frame in self.frames]

    @property
    def official_ids(self):
        """The official frame list of the selected split (and ``frames``) where the benchmark publishes one, else ``None``."""
        return None

    def official_id(self, frame_id):
        """The id the official frame list (:attr:`official_ids`) names frame ``frame_id`` by (default: the same)."""
        return frame_id

    @property
    def info(self):
        """Conventions to copy into every result: name, version, labels, official count, protocol track, and
        which frames carry labels (``frames`` option, ``labelled_count``, ``unlabelled_ids``)."""
        return {
            "name": self.name,
            "version": self.version,
            "label_convention": self.label_convention,
            "official_count": self.official_count,
            "frames": len(self.frames),
            "frames_option": self.frames_option,
            "labelled_count": sum(f.labelled for f in self.frames),
            "unlabelled_ids": [f.id for f in self.frames if not f.labelled],
            "track": self.track,
            "void": VOID,
        }

    def __repr__(self):
        return f"{type(self).__name__}(root={str(self.root)!r}, frames={len(self)})"

    # -- discovery helpers -------------------------------------------------------------------------------
    def _resolve_root(self, root):
        source = "given root"
        if root is None:
            root, source = _root_from_env(self.name)
            if root is None:
                per_dataset, shared = env_roots(self.name)
                raise DatasetError(
                    f"{self.name}: no root given; pass root=..., or set ${per_dataset} or ${shared}\n"
                    f"expected layout:\n{self.layout}"
                )
        root = Path(root)
        if not root.is_dir():
            err = DatasetError(f"{self.name}: root {root} ({source}) is not a directory\nexpected layout:\n{self.layout}")
            err.problem = Problem(root, f"dataset root ({source}) is not a directory")
            raise err
        if self.root_dirname and root.name != self.root_dirname and (root / self.root_dirname).is_dir():
            return root / self.root_dirname
        return root

    def _problem(self, path, what):
        self.problems.append(Problem(Path(path), what))

    def _require_dir(self, path):
        """``path`` if it is a directory, else record it as missing and return ``None``."""
        path = Path(path)
        if path.is_dir():
            return path
        self._problem(path, "missing directory")
        return None

    def _listed(self, folder, name, listing):
        """``folder / name`` for a file name read from the dataset file ``listing``, or ``None`` (a problem
        recorded) when it is not a relative name inside ``folder`` (absolute, or climbing out with ``..``)."""
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            self._problem(listing, f"names {name!r}, which is not a file name inside {folder}; refusing to read it")
            return None
        return Path(folder) / name

    def _require_file(self, path, what):
        path = Path(path)
        if not path.is_file():
            self._problem(path, f"missing {what}")
            return False
        return True

    # -- checked reads -------------------------------------------------------------------------------------
    def _error(self, path, what):
        err = DatasetError(f"{self.name}: {path}: {what}")
        err.problem = Problem(Path(path), what)
        return err

    def _read_image(self, path):
        """uint8 (H, W, 3) RGB of a PNG/JPEG/WebP (by signature); alpha dropped, palette/grey expanded."""
        try:
            return read_image(path)
        except FileReadError as err:
            raise self._error(path, "image file is missing" if err.missing else err.what) from None

    def _read_label(self, path, shape=None):
        """The label array of a PNG as stored (palette indices, never colours); channel 0 of a multi-channel file."""
        try:
            label = read_label_png(path)
        except FileReadError as err:
            raise self._error(path, "label file is missing" if err.missing else err.what) from None
        if label.ndim == 3:
            label = label[..., 0]
        if shape is not None and label.shape != tuple(shape[:2]):
            raise self._error(
                path, f"label size {label.shape[1]}x{label.shape[0]} differs from image size {shape[1]}x{shape[0]}"
            )
        return label

    def _check_values(self, label, path, allowed):
        """Raise naming the file if ``label`` holds values outside ``allowed`` (a set or an inclusive (lo, hi))."""
        if label.dtype == np.uint8:  # a histogram is ~10x faster than np.unique on a 2048x1024 label
            counts = np.bincount(label.ravel(), minlength=256)
            values = np.flatnonzero(counts)
        else:
            values, counts = np.unique(label, return_counts=True)
            counts = dict(zip(values.tolist(), counts.tolist()))
        if isinstance(allowed, tuple):
            bad = values[(values < allowed[0]) | (values > allowed[1])]
            expected = f"{allowed[0]}..{allowed[1]}"
        else:
            bad = values[~np.isin(values, sorted(allowed))]
            expected = "{" + ", ".join(str(v) for v in sorted(allowed)) + "}"
        if bad.size:
            count = sum(int(counts[v]) for v in bad.tolist())
            raise self._error(
                path, f"unexpected label value(s) {bad.tolist()} in {count} pixel(s); expected values in {expected}"
            )


def files_with_suffix(directory, suffix):
    """``{id: path}`` of the files in ``directory`` whose name ends with ``suffix`` (id = name minus suffix).

    Suffixes are stripped as strings: frame ids may contain dots (``snowstorm1_00_16_02.578``).
    """
    return {
        p.name[: -len(suffix)]: p
        for p in sorted(Path(directory).iterdir())
        if p.is_file() and p.name.endswith(suffix) and len(p.name) > len(suffix)
    }


#: Dataset classes by name (a registered class subclasses :class:`Dataset` and sets ``name``).
DATASETS = ClassRegistry("dataset", Dataset, sort_names=True, unknown=lambda name, names: DatasetError(
    f"unknown dataset {name!r}; known datasets: {', '.join(names)}"))
