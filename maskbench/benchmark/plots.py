"""Figures from a stored results directory: PR/ROC curves per dataset and score-map overlays per frame.

Inputs are ``results.json``, ``curves.npz`` and ``maps/<frame_id>.npz`` of RESULTS_SCHEMA.md: no model and
no dataset. Every figure is written as PNG and PDF with a fixed size and DPI, matplotlib's default style
(a user's matplotlibrc does not leak in) and no PDF creation date, so the same inputs give the same bytes.
Matplotlib is used through ``Figure`` objects only (no pyplot state, no interactive backend).
"""

import math
import re
from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from maskbench.benchmark.results import frame_ids, load_curves, load_frame_maps, load_results
from maskbench.errors import ConfigError
from maskbench.fileio import atomic_write, ensure_writable_dir

DPI = 100
#: Overlays show maps strided down to at most this width (the figure cannot show more pixels; PDFs stay small).
MAX_OVERLAY_WIDTH = 1024
_SAVE = {"png": {}, "pdf": {"metadata": {"CreationDate": None}}}


def _style():
    return matplotlib.style.context("default")


def _save(fig, stem):
    written = []
    for ext, kwargs in _SAVE.items():
        path = stem.with_name(f"{stem.name}.{ext}")
        with atomic_write(path) as handle:
            fig.savefig(handle, format=ext, dpi=DPI, **kwargs)
        written.append(path)
    return written


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}"


def _entries_by_scorer(results):
    """The entry each scorer's curve belongs to: the run's protocol when a scorer has several."""
    proto = (results.get("run") or {}).get("protocol")
    out = {}
    for entry in results["results"]:
        if entry["scorer"] not in out or entry["protocol"] == proto:
            out[entry["scorer"]] = entry
    return out


def plot_curves(results_dir, out_dir):
    """PR (recall -> precision, AP in the legend) and ROC (FPR -> TPR, AUROC and FPR95 in the legend)."""
    results = load_results(results_dir)
    entries = _entries_by_scorer(results)
    curves = load_curves(results_dir, entries)
    run = results.get("run") or {}
    datasets = sorted({e["dataset"] for s, e in entries.items() if s in curves})
    protocols = sorted({e["protocol"] for s, e in entries.items() if s in curves})
    dataset = "-".join(datasets) or (run.get("dataset") or {}).get("name") or "results"
    rule = run.get("fpr95_rule") or next(
        (e.get("protocol_details", {}).get("fpr95_rule") for e in entries.values()), None)
    with _style():
        fig = Figure(figsize=(11, 4.5), dpi=DPI)  # whole pixels in binary floating point
        ax_pr, ax_roc = fig.subplots(1, 2)
        for s, c in curves.items():
            m = entries.get(s, {}).get("metrics", {})
            ax_pr.plot(c["pr_recall"], c["pr_precision"], lw=1.5, label=f"{s} (AP {_pct(m.get('AP'))})")
            ax_roc.plot(c["roc_fpr"], c["roc_tpr"], lw=1.5,
                        label=f"{s} (AUROC {_pct(m.get('AUROC'))}, FPR95 {_pct(m.get('FPR95'))})")
        ax_roc.axhline(0.95, color="0.5", ls="--", lw=0.8)
        ax_roc.text(1.0, 0.95, "TPR 0.95 ", color="0.4", ha="right", va="bottom", fontsize=8)
        for ax, (xl, yl, title) in zip((ax_pr, ax_roc), (("recall", "precision", "precision-recall"),
                                                         ("false positive rate", "true positive rate", "ROC"))):
            ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel=xl, ylabel=yl, title=title)
            ax.grid(alpha=0.3)
            ax.legend(loc="lower left" if ax is ax_pr else "lower right", fontsize=8)
        fig.suptitle(f"{dataset} - protocol {', '.join(protocols)}; FPR95 rule {rule or 'not recorded'}; "
                     "values x100", fontsize=10)
        fig.tight_layout()
        out_dir.mkdir(parents=True, exist_ok=True)
        return _save(fig, out_dir / f"curves_{_safe(dataset)}")


def _safe(name):
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def plot_overlay(results_dir, frame_id, out_dir, scorers=()):
    """Image, ground truth (anomaly red, void grey) and each scorer's map over the grey image, own colour scale."""
    image, ood, maps = load_frame_maps(results_dir, frame_id)
    step = math.ceil(image.shape[1] / MAX_OVERLAY_WIDTH)
    image, ood = image[::step, ::step], ood[::step, ::step]
    maps = {k: v[::step, ::step] for k, v in maps.items()}
    order = [s for s in scorers if s in maps] + sorted(set(maps) - set(scorers))
    grey = image.astype(np.float32).mean(axis=2) / 255.0
    gt = np.repeat(grey[..., None] * 0.6, 3, axis=2)
    gt[ood == 1] = (1.0, 0.1, 0.1)
    gt[(ood != 0) & (ood != 1)] = (0.55, 0.55, 0.55)
    panels = 2 + len(order)
    ncols = 2
    nrows = math.ceil(panels / ncols)
    h, w = image.shape[:2]
    width = 11.0
    with _style():
        fig = Figure(figsize=(width, nrows * (width / ncols) * h / w + 0.6 * nrows), dpi=DPI)
        axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
        axes[0].imshow(image, interpolation="nearest")
        axes[0].set_title(f"image {frame_id}" + (f" (shown at 1/{step} resolution)" if step > 1 else ""), fontsize=9)
        axes[1].imshow(gt, interpolation="nearest")
        axes[1].set_title("ground truth (red anomaly, grey void)", fontsize=9)
        for ax, s in zip(axes[2:], order):
            score = np.ma.masked_invalid(maps[s])
            lo, hi = (float(score.min()), float(score.max())) if score.count() else (0.0, 1.0)
            ax.imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            im = ax.imshow(score, cmap="inferno", alpha=0.65, vmin=lo, vmax=hi if hi > lo else lo + 1,
                           interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.047 * h / w, pad=0.02)  # colour bar as tall as the map
            ax.set_title(f"{s} (min {lo:.3g}, max {hi:.3g})", fontsize=9)
        for ax in axes:
            ax.set_axis_off()
        fig.tight_layout()
        out_dir.mkdir(parents=True, exist_ok=True)
        return _save(fig, out_dir / f"overlay_{frame_id}")


def plot_results(results_dir, out_dir=None, frames=None):
    """Write the curve figure and the overlays of ``frames`` (default: every saved map); return the paths."""
    results_dir = Path(results_dir)
    out_dir = Path(out_dir) if out_dir is not None else results_dir / "plots"
    available = frame_ids(results_dir)
    if frames:
        unknown = [f for f in frames if f not in available]
        if unknown:
            raise ConfigError("frames", f": no maps/<id>.npz in {results_dir} for {', '.join(unknown)}; "
                              f"available: {', '.join(available) or 'none'}")
    ensure_writable_dir(out_dir)  # before any figure is drawn
    written = plot_curves(results_dir, out_dir)
    scorers = list(_entries_by_scorer(load_results(results_dir)))
    for fid in frames or available:
        written += plot_overlay(results_dir, fid, out_dir, scorers)
    return written
