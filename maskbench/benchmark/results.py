"""Everything that reads or writes a results directory (the contract in RESULTS_SCHEMA.md).

``run.json`` (metadata), ``per_image.jsonl`` (one row per finished frame, appended as frames finish),
``results.json`` / ``results.csv`` (one entry per scorer or method), ``curves.npz`` (PR / ROC curves, at most
:data:`MAX_CURVE_POINTS` points each) and ``maps/<frame id>.npz`` (score maps of the first frames). Every file
is written through :func:`maskbench.fileio.atomic_write`: a crash never leaves a truncated file under its final
name, and a failed write (disk full, read-only) is a :class:`~maskbench.errors.WriteError` naming the file.
"""

import csv
import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import numpy as np

from maskbench import fileio
from maskbench.benchmark.metric_keys import lookup, value_problem
from maskbench.errors import FileReadError, InputError, WriteError

RUN_FILE, ROWS_FILE, RESULTS_FILE, CSV_FILE, CURVES_FILE = (
    "run.json", "per_image.jsonl", "results.json", "results.csv", "curves.npz")
MAPS_DIR, WORK_DIR = "maps", "work"
MAX_CURVE_POINTS = 2000
CURVE_KEYS = ("pr_precision", "pr_recall", "roc_fpr", "roc_tpr")


# ---------------------------------------------------------------------------------------------- writing

def write_json_atomic(path, obj):
    """``obj`` as JSON (indent 1, no NaN/inf) plus a newline, atomically (:func:`maskbench.fileio.write_json`)."""
    fileio.write_json(path, obj)
    return path


def write_npz_atomic(path, *, sync=True, **arrays):
    """``np.savez`` of ``arrays`` to ``path``, atomically; ``sync=False`` for caches
    (:func:`maskbench.fileio.atomic_write`)."""
    with fileio.atomic_write(path, sync=sync) as handle:
        np.savez(handle, **arrays)
    return path


def jsonable(value):
    """``value`` with dict keys as strings, tuples as lists and paths as strings (ready for ``json.dumps``)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def utc_now():
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def package_versions():
    """Versions recorded with every run: python and the numeric packages results depend on."""
    versions = {"python": platform.python_version()}
    for name in ("torch", "numpy", "numba", "scipy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def map_file(out, frame_id):
    """``maps/<quoted frame id>.npz`` of a results directory."""
    return Path(out) / MAPS_DIR / f"{quote(frame_id, safe='')}.npz"


class RowLog:
    """Append-only JSON-lines file: each row is written with one ``write`` and flushed to disk at once."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self._handle = open(self.path, "a", encoding="utf-8")
        except OSError as err:
            raise WriteError(self.path, err.strerror or str(err), err.errno) from None

    def append(self, row):
        line = json.dumps(row, allow_nan=False) + "\n"
        try:
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as err:
            raise WriteError(self.path, err.strerror or str(err), err.errno) from None

    def close(self):
        try:
            self._handle.close()
        except OSError:  # the failed append already said why
            pass


def write_rows(path, rows):
    """Rewrite ``path`` with ``rows`` (sorted by index), atomically."""
    with fileio.atomic_write(path, "w") as handle:
        handle.writelines(json.dumps(rows[i], allow_nan=False) + "\n" for i in sorted(rows))


def downsample_curve(x, y, max_points=MAX_CURVE_POINTS):
    """At most ``max_points`` points of the polyline ``(x, y)``, evenly spaced along its length.

    The first and last points are kept, and so is the point nearest to each of ``max_points - 2`` equally
    spaced arc-length positions, so steps and corners survive (as SMIYC ``select_points_for_curve``).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.size <= max_points:
        return x.astype(np.float32), y.astype(np.float32)
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    targets = np.linspace(0.0, length[-1], max_points)
    keep = np.unique(np.clip(np.searchsorted(length, targets), 0, x.size - 1))
    keep = np.unique(np.concatenate([[0], keep, [x.size - 1]]))
    return x[keep].astype(np.float32), y[keep].astype(np.float32)


def write_curves(path, curves):
    """``curves.npz``: ``{name: (precision, recall, fpr, tpr)}`` downsampled (``<name>/<CURVE_KEYS>``)."""
    arrays = {}
    for name, (precision, recall, fpr, tpr) in curves.items():
        arrays[f"{name}/pr_precision"], arrays[f"{name}/pr_recall"] = downsample_curve(precision, recall)
        arrays[f"{name}/roc_fpr"], arrays[f"{name}/roc_tpr"] = downsample_curve(fpr, tpr)
    write_npz_atomic(path, **arrays)


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return repr(float(value))


def write_results(out, run, entries, csv_keys, curves=None):
    """``results.json``, ``results.csv`` (columns scorer, dataset, protocol, ``csv_keys``; ``IoU.road`` names one
    class of a per-class metric) and, with ``curves``, ``curves.npz``."""
    out = Path(out)
    write_json_atomic(out / RESULTS_FILE, {"run": run, "results": entries})

    with fileio.atomic_write(out / CSV_FILE, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scorer", "dataset", "protocol", *csv_keys])
        for e in entries:
            cells = (_csv_cell(lookup(e["metrics"], k)) for k in csv_keys)
            writer.writerow([e["scorer"], e["dataset"], e["protocol"], *cells])
    if curves:
        write_curves(out / CURVES_FILE, curves)


# ---------------------------------------------------------------------------------------------- reading

def read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise FileReadError(path, f"cannot read as JSON ({err})") from None


def read_rows(paths):
    """``{index: row}`` from JSON-lines files (the last row of an index wins; a torn last line is ignored)."""
    rows = {}
    for path in paths:
        if not Path(path).is_file():
            continue
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # the line being written when the process died
            if isinstance(row, dict) and "index" in row and "id" in row:
                rows[int(row["index"])] = row
    return rows


def _reject_constant(name):
    raise ValueError(f"{name} is not valid here (undefined metrics are null)")


def results_folders(path):
    """The results directories ``path`` names: itself (a results directory or a results.json), or, for a folder
    without a results.json, the results directories one level down (the embedded run's ``out``), sorted by name."""
    path = Path(path)
    if path.is_dir() and not (path / RESULTS_FILE).is_file():
        found = sorted(d for d in path.iterdir() if d.is_dir() and (d / RESULTS_FILE).is_file())
        if found:
            return found
    return [path]  # load_results says what is wrong with it, if anything


def load_results(path):
    """Read ``DIR/results.json`` (or a results.json path) and validate the parts tables need.

    Returns the parsed dict with ``"source"`` added (the file read). Every error is an :class:`InputError`
    naming the file and the problem.
    """
    path = Path(path)
    file = path / RESULTS_FILE if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"{path}: no results.json here (expected a results directory written by `bench run`)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{file}: cannot read as JSON ({err})") from err
    return validate_results(data, str(file))


def validate_results(data, file="<results>"):
    """Check a parsed results.json dict (as :func:`load_results` does); returns it with ``"source"`` added."""
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InputError(f"{file}: expected an object with a \"results\" list (RESULTS_SCHEMA.md)")
    run = data.get("run")
    if run is not None and not isinstance(run, dict):
        raise InputError(f"{file}: \"run\" must be an object")
    for i, entry in enumerate(data["results"]):
        where = f"{file}: results[{i}]"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: expected an object")
        for key in ("scorer", "dataset", "protocol"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise InputError(f"{where}: \"{key}\" must be a non-empty string")
        metrics = entry.get("metrics")
        if not isinstance(metrics, dict):
            raise InputError(f"{where} ({entry['scorer']}/{entry['dataset']}): \"metrics\" must be an object")
        for name, value in metrics.items():
            problem = value_problem(name, value)
            if problem:
                raise InputError(f"{where} ({entry['scorer']}/{entry['dataset']}): {problem}")
    return {**data, "source": str(file)}


def load_curves(results_dir, scorers):
    """``{scorer: {key: float array}}`` from ``curves.npz``; scorers without any curve key are left out."""
    path = Path(results_dir) / CURVES_FILE
    if not path.is_file():
        raise InputError(f"{path}: not found (the runner writes the PR/ROC curves there)")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in fileio.read_npz(path).items()}
    names = list(scorers) + sorted({k.split("/", 1)[0] for k in arrays} - set(scorers))
    curves = {}
    for s in names:
        present = [k for k in CURVE_KEYS if f"{s}/{k}" in arrays]
        if not present:
            continue
        if len(present) < len(CURVE_KEYS):
            missing = sorted(set(CURVE_KEYS) - set(present))
            raise InputError(f"{path}: scorer {s!r} lacks {', '.join(f'{s}/{k}' for k in missing)}")
        c = {k: arrays[f"{s}/{k}"] for k in CURVE_KEYS}
        for a, b in (("pr_recall", "pr_precision"), ("roc_fpr", "roc_tpr")):
            if c[a].ndim != 1 or c[a].shape != c[b].shape:
                raise InputError(f"{path}: {s}/{a} and {s}/{b} must be 1-D arrays of one length, "
                                 f"got shapes {c[a].shape} and {c[b].shape}")
        curves[s] = c
    if not curves:
        raise InputError(f"{path}: no curves (expected keys '<scorer>/pr_precision', ...)")
    return curves


def frame_ids(results_dir):
    """The (quoted) frame ids of ``maps/``."""
    maps = Path(results_dir) / MAPS_DIR
    return sorted(p.stem for p in maps.glob("*.npz")) if maps.is_dir() else []


def load_frame_maps(results_dir, frame_id):
    """``(image, ood, {scorer: float32 map})`` from ``maps/<frame_id>.npz``, validated."""
    path = Path(results_dir) / MAPS_DIR / f"{frame_id}.npz"
    arrays = fileio.read_npz(path)
    image, ood = arrays.pop("image", None), arrays.pop("ood", None)
    if image is None or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{path}: 'image' must be a uint8 HxWx3 array")
    if ood is None or ood.shape != image.shape[:2]:
        raise InputError(f"{path}: 'ood' must be an HxW array matching the image {image.shape[:2]}")
    maps = {}
    for name, arr in arrays.items():
        if arr.shape != image.shape[:2] or not np.issubdtype(arr.dtype, np.floating):
            raise InputError(f"{path}: score map {name!r} must be a float HxW array, got {arr.dtype} {arr.shape}")
        maps[name] = arr.astype(np.float32)
    if not maps:
        raise InputError(f"{path}: no score maps besides 'image' and 'ood'")
    return image, ood, maps
