"""Writing and reading the results directory of `bench run` (the contract in RESULTS_SCHEMA.md).

``run.json`` (metadata), ``per_image.jsonl`` (one row per finished frame, appended as frames finish),
``results.json`` / ``results.csv`` (one entry per scorer), ``curves.npz`` (PR / ROC curves, at most
:data:`MAX_CURVE_POINTS` points each) and ``maps/<frame id>.npz`` (score maps of the first frames).
"""

import csv
import hashlib
import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from maskbench.errors import InputError

#: Metric keys of a result (the `bench evaluate` JSON keys), in table order.
METRIC_KEYS = ("AP", "AUROC", "FPR95", "sIoU", "PPV", "F1", "MDM_F1_60", "MDM_F1_70", "threshold")
MAX_CURVE_POINTS = 2000


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


def checkpoint_sha256(path):
    """sha256 of a checkpoint file; for a directory (HF ``save_pretrained``), of its files' names and hashes."""
    path = Path(path)
    if path.is_file():
        return _file_sha256(path)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(path).as_posix()}\0{_file_sha256(f)}\n".encode())
        return h.hexdigest()
    raise InputError(f"--checkpoint {path}: no such file or directory")


def _file_sha256(path):
    h = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                h.update(chunk)
    except OSError as err:
        raise InputError(f"--checkpoint {path}: cannot read ({err})") from err
    return h.hexdigest()


def write_json_atomic(path, obj):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read as JSON ({err})") from err


class RowLog:
    """Append-only JSON-lines file: each row is written with one ``write`` and flushed to disk at once."""

    def __init__(self, path):
        self.path = Path(path)
        self._handle = open(self.path, "a", encoding="utf-8")

    def append(self, row):
        self._handle.write(json.dumps(row, allow_nan=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self):
        self._handle.close()


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


def write_rows(path, rows):
    """Rewrite ``path`` with ``rows`` (sorted by index), atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for index in sorted(rows):
            handle.write(json.dumps(rows[index], allow_nan=False) + "\n")
    os.replace(tmp, path)


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


def write_results(out, run, entries, curves):
    """``results.json``, ``results.csv`` and ``curves.npz`` for ``entries`` (one per scorer)."""
    out = Path(out)
    write_json_atomic(out / "results.json", {"run": run, "results": entries})
    tmp = out / f".results.csv.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scorer", "dataset", "protocol", *METRIC_KEYS, "images", "n_pixels", "n_positive"])
        for e in entries:
            m = e["metrics"]
            writer.writerow([e["scorer"], e["dataset"], e["protocol"],
                             *("" if m[k] is None else repr(float(m[k])) for k in METRIC_KEYS),
                             m["images"], m["n_pixels"], m["n_positive"]])
    os.replace(tmp, out / "results.csv")
    arrays = {}
    for name, (precision, recall, fpr, tpr) in curves.items():
        arrays[f"{name}/pr_precision"], arrays[f"{name}/pr_recall"] = downsample_curve(precision, recall)
        arrays[f"{name}/roc_fpr"], arrays[f"{name}/roc_tpr"] = downsample_curve(fpr, tpr)
    tmp = out / f".curves.npz.{os.getpid()}.tmp"
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, out / "curves.npz")
