"""The embedded benchmark's fair comparison: every scorer on every shipped training variant, and the methods table.

Mask2Anomaly TPAMI'24 §7.3 compares the methods "on the same data and using the same ResNet-50 backbone", each with
its whole recipe. The shipped variants are the inlier model (recipe ``none``) and its outlier-exposure fine-tunes
``maskbench/weights/m2f_tiny_world_<recipe>.pth`` (:mod:`maskbench.train.recipes`); the embedded run evaluates each
on the anomaly and obstacle tracks with every scorer and records the recipe as ``run.checkpoint.recipe``.

Layout under the embedded results folder (beside ``anomaly/``, ``obstacle/`` and ``leaderboard.*`` of the inlier
model)::

    variants/<recipe>/<track>/         one results directory per outlier-exposure variant and track
    grid.{txt,tex,md,csv}              every scorer x every variant, rows ``scorer [weights file]``
    methods.{txt,tex,md,csv}           one row per published method (:mod:`maskbench.benchmark.methods_table`)
    plots/variants/<recipe>/<track>/   each variant's curves; on the anomaly track the overlay of its first frame
"""

from __future__ import annotations

from pathlib import Path

from maskbench.benchmark.methods_table import build_methods_table
from maskbench.benchmark.plots import plot_curves, plot_overlay
from maskbench.benchmark.results import frame_ids
from maskbench.benchmark.table_formats import to_csv, to_latex, to_markdown, to_text
from maskbench.benchmark.tables import build_leaderboard
from maskbench.fileio import write_text
from maskbench.train.recipes import RECIPES, variant_weights

VARIANTS_DIR = "variants"
OVERLAY_TRACK = "anomaly"
#: The shipped outlier-exposure variants, in the order of :data:`~maskbench.train.recipes.RECIPES`.
VARIANT_RECIPES = tuple(name for name in RECIPES if name != "none")


def recipe_of_weights(weights: Path) -> str | None:
    """The recipe of a shipped variant's weights file (``none``: the inlier model); None for any other file."""
    path = Path(weights).resolve()
    return next((name for name in RECIPES if path == variant_weights(name).resolve()), None)


def variant_runs(out: Path, weights: Path) -> list[tuple[str | None, Path, Path]]:
    """``(recipe, weights, parent of the track folders)`` of an embedded run on ``weights``: the shipped inlier
    model comes with every variant (:data:`VARIANTS_DIR`), any other checkpoint runs alone."""
    recipe = recipe_of_weights(weights)
    runs = [(recipe, Path(weights), Path(out))]
    if recipe == "none":
        runs += [(name, variant_weights(name), Path(out) / VARIANTS_DIR / name) for name in VARIANT_RECIPES]
    return runs


def write_comparison(results_dirs, out: Path, log=None) -> list[Path]:
    """The grid and the methods table of ``results_dirs`` (every variant and track) as text, LaTeX, markdown and
    CSV in ``out``, and each variant's plots (curves; the overlay of the first saved frame of the anomaly track,
    ``OVERLAY_TRACK``). Returns the paths."""
    out, written = Path(out), []
    boards = (("grid", build_leaderboard([Path(d) for d in results_dirs]), "tab:maskbench-grid"),
              ("methods", build_methods_table([Path(d) for d in results_dirs]), "tab:maskbench-methods"))
    for stem, board, label in boards:
        for suffix, text in (("txt", to_text(board)), ("tex", to_latex(board, label=label)),
                             ("md", to_markdown(board)), ("csv", to_csv(board))):
            write_text(out / f"{stem}.{suffix}", text)
            written.append(out / f"{stem}.{suffix}")
    variants = [Path(d) for d in results_dirs if Path(d).parent.parent == out / VARIANTS_DIR]
    if log is not None and variants:
        log(f"plots: curves of each variant and one overlay on the {OVERLAY_TRACK} track, under "
            f"{out / 'plots' / VARIANTS_DIR}")
    for d in variants:
        plots = out / "plots" / VARIANTS_DIR / d.parent.name / d.name
        written += plot_curves(d, plots)
        if d.name == OVERLAY_TRACK:
            written += [p for fid in frame_ids(d)[:1] for p in plot_overlay(d, fid, plots)]
    return written
