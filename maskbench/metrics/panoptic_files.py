"""Panoptic quality of panopticapi-format files (panopticapi ``evaluation.py`` ``pq_compute``; EOPSN open set
with ``unknown``): the GT and prediction JSONs, the RGB PNGs they name, and the summary table.

Each image goes through :class:`~maskbench.metrics.panoptic.PanopticQuality`, in this process or in worker
processes whose accumulators are merged (identical results).
"""

import json
import os

import numpy as np

from maskbench.datasets.coco import rgb_to_id
from maskbench.errors import InputError
from maskbench.fileio import read_label_png
from maskbench.metrics.panoptic import PanopticQuality
from maskbench.metrics.panoptic_categories import int_field
from maskbench.workers import map_merge

__all__ = ["pq_compute_files", "read_panoptic_png", "format_table"]

# the group rows of the summary table, in this order (the names of PanopticCategories.groups)
_OPEN_GROUPS = ("All", "Things", "Stuff", "Unknown")


def read_panoptic_png(path):
    """Read a panoptic PNG as an (H, W) uint32 id map, ``id = R + 256 G + 256² B`` (panopticapi ``rgb2id``).

    The file must be an RGB or RGBA PNG by its signature (:func:`maskbench.fileio.read_label_png`: a JPEG saved
    as ``.png`` would change the ids); alpha is ignored, as ``rgb2id`` ignores it.
    """
    pixels = read_label_png(path, modes=("RGB", "RGBA"))
    return rgb_to_id(pixels[..., :3]).astype(np.uint32)


def _load_json(path, what):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} JSON file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read the {what} JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise InputError(f"{path}: expected a panoptic JSON object with an 'annotations' list")
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "file_name", "segments_info"} <= ann.keys():
            raise InputError(f"{path}: annotations[{i}] needs 'image_id', 'file_name' and 'segments_info'")
    return data


def _evaluate_images(categories, unknown, jobs):
    """Evaluate a list of (gt_png, gt_segments, gt_label, pred_png, pred_segments, pred_label) jobs."""
    quality = PanopticQuality(categories, unknown=unknown)
    for gt_png, gt_segments, gt_label, pred_png, pred_segments, pred_label in jobs:
        quality.update(read_panoptic_png(gt_png), gt_segments, read_panoptic_png(pred_png), pred_segments,
                       gt_name=gt_label, pred_name=pred_label)
    return quality


def _inside(folder, name, listing):
    """``folder/name`` for a PNG named in the JSON ``listing``; a name that would leave ``folder`` is refused."""
    if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        raise InputError(f"{listing}: file_name {name!r} is not a file name inside {folder}; refusing to read it")
    return os.path.join(folder, name)


def _evaluate_chunk(jobs, categories, unknown):
    return _evaluate_images(categories, unknown, jobs)


def pq_compute_files(gt_json, gt_dir, pred_json, pred_dir, unknown=None, *, workers=1):
    """PQ / SQ / RQ of panopticapi-format files (``pq_compute``); with ``unknown`` the EOPSN protocol.

    Every GT image needs a prediction with the same ``image_id``; extra predictions are ignored (as in
    panopticapi). ``workers > 1`` evaluates image chunks in separate processes; the result is identical.
    """
    gt = _load_json(gt_json, "GT")
    pred = _load_json(pred_json, "prediction")
    if not isinstance(gt.get("categories"), list):
        raise InputError(f"{gt_json}: expected a 'categories' list in the GT JSON")
    for folder, what in ((gt_dir, "GT"), (pred_dir, "prediction")):
        if not os.path.isdir(folder):
            raise InputError(f"{folder}: {what} PNG folder does not exist")
    workers = int_field(workers, "workers")
    if workers < 1:
        raise InputError(f"workers: expected a positive integer, got {workers}")

    pred_by_image = {}
    for ann in pred["annotations"]:
        if ann["image_id"] in pred_by_image:
            raise InputError(f"{pred_json}: image_id {ann['image_id']!r} appears twice in 'annotations'")
        pred_by_image[ann["image_id"]] = ann
    jobs, seen = [], set()
    for ann in gt["annotations"]:
        image_id = ann["image_id"]
        if image_id in seen:
            raise InputError(f"{gt_json}: image_id {image_id!r} appears twice in 'annotations'")
        seen.add(image_id)
        if image_id not in pred_by_image:
            raise InputError(f"{pred_json}: no prediction for image_id {image_id!r}")
        pred_ann = pred_by_image[image_id]
        gt_png = _inside(gt_dir, ann["file_name"], gt_json)
        pred_png = _inside(pred_dir, pred_ann["file_name"], pred_json)
        jobs.append((gt_png, ann["segments_info"], f"{gt_png} (image_id {image_id!r}, {gt_json})",
                     pred_png, pred_ann["segments_info"], f"{pred_png} (image_id {image_id!r}, {pred_json})"))

    # validate the categories (and the unknown split) once, before any PNG is read
    try:
        quality = PanopticQuality(gt["categories"], unknown=unknown)
    except InputError as err:
        raise InputError(f"{gt_json}: {err}") from None
    if workers == 1 or len(jobs) < 2:
        return quality.merge(_evaluate_images(gt["categories"], unknown, jobs)).compute()
    merged = map_merge(_evaluate_chunk, jobs, (gt["categories"], unknown), min(workers, len(jobs)), lambda n: None)
    return quality.merge(merged).compute()


def format_table(result):
    """The summary table (values x100, as panopticapi prints them), headed by the protocol."""
    groups = [g for g in _OPEN_GROUPS if g in result]
    lines = [f"Protocol: {result['protocol']}  ({result['images']} images)",
             f"{'':10s}| {'PQ':>6s} {'SQ':>6s} {'RQ':>6s} {'N':>5s}", "-" * 38]
    for group in groups:
        row = result[group]
        cells = ["  null" if row[k] is None else f"{100 * row[k]:6.1f}" for k in ("pq", "sq", "rq")]
        lines.append(f"{group:10s}| {cells[0]} {cells[1]} {cells[2]} {row['n']:5d}")
    return "\n".join(lines)
