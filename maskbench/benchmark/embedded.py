"""The embedded benchmark: ``bench run`` with no arguments.

Generates the miniature road world's evaluation splits if needed (:func:`maskbench.datasets.world.ensure_world`),
loads the shipped tiny Mask2Former (:data:`EMBEDDED_WEIGHTS`, trained by ``bench train`` on the world's inlier
``train`` split, loaded through the same :func:`~maskbench.model.checkpoint.load_model` as real checkpoints),
runs every scorer on the world's anomaly track (``smiyc-ra21`` layout) and obstacle track (``smiyc-ro21``
layout) with each track's official protocol, prints the leaderboard and writes LaTeX, markdown, CSV and plots.
With the shipped inlier model it also evaluates every shipped outlier-exposure variant and writes the grid and the
methods table (:mod:`maskbench.benchmark.embedded_variants`).

The folder is locked for the run (a second embedded run into it is refused) and every stage is announced
through ``log``. Layout of ``out`` (default ``./maskbench-results``)::

    anomaly/, obstacle/     one results directory per track (RESULTS_SCHEMA.md)
    leaderboard.{txt,tex,md,csv}
    plots/<track>/          PR/ROC curves and score-map overlays
    variants/<recipe>/<track>/, grid.*, methods.*, plots/variants/   the variants (embedded_variants)
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from maskbench.benchmark.calibrate import WEIGHTS_DIR
from maskbench.benchmark.embedded_variants import variant_runs, write_comparison
from maskbench.benchmark.plots import plot_results
from maskbench.benchmark.run import DEFAULT_SCORERS, RunConfig, run_benchmark
from maskbench.benchmark.summary import run_summary
from maskbench.benchmark.tables import format_leaderboard
from maskbench.datasets.world import DATASET_NAMES, WorldConfig, ensure_world
from maskbench.fileio import claim_folder, write_text

EMBEDDED_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world.pth"
#: Its GMA twin (``bench train --gma``): ``bench run --checkpoint`` it for the embedded benchmark with GMA.
EMBEDDED_GMA_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world_gma.pth"
#: Scorer parameters fitted for the shipped model (Maskomaly query ids), written by ``bench train``; `bench run`
#: finds them beside the weights (:func:`maskbench.benchmark.calibrate.fitted_params_file`).
EMBEDDED_SCORER_PARAMS = WEIGHTS_DIR / "m2f_tiny_world.scorers.json"
EMBEDDED_TRACKS = ("anomaly", "obstacle")
#: Default results folder of the embedded run.
EMBEDDED_OUT = "maskbench-results"


def embedded_scorer_params(path: Path = EMBEDDED_SCORER_PARAMS) -> dict:
    """``{scorer: {param: value}}`` shipped with the weights (empty when the file is absent)."""
    path = Path(path)
    return json.loads(path.read_text())["params"] if path.is_file() else {}


def run_embedded(out: Path = Path(EMBEDDED_OUT), *, weights: Path | None = None, tracks=EMBEDDED_TRACKS,
                 scorers=DEFAULT_SCORERS, limit: int | None = None, workers: int | None = None,
                 world_config=None, progress=None, echo=print, plugins=(), scorer_params=None, bootstrap=None,
                 seed=0, level=95.0, log=None) -> list[dict]:
    """Run the embedded benchmark into ``out``; return the results.json content of each run (every track of the
    inlier model, then of each variant; :func:`~maskbench.benchmark.embedded_variants.variant_runs`).

    limit: only the first N frames of each track (a partial run, flagged as such in every table).
    plugins, scorer_params, bootstrap, seed, level: as in :class:`~maskbench.benchmark.run.RunConfig` (the
    Maskomaly ids fitted for the weights come from the file beside them, as for any checkpoint). With bootstrap the
    leaderboards print the intervals. ``echo(text)`` shows the leaderboard, ``log(line)`` each stage (world, model,
    track, plots) and where everything went.
    """
    log = log or (lambda line: None)
    out = Path(out)
    weights = Path(weights) if weights is not None else EMBEDDED_WEIGHTS
    with contextlib.ExitStack() as held:
        out = claim_folder(out, held, log, command=" ".join(sys.argv))
        log(f"world: the miniature world's {' and '.join(tracks)} tracks (generated once, then cached)")
        world = ensure_world(tuple(tracks), config=world_config or WorldConfig(), log=log)
        results, dirs = [], []
        for recipe, checkpoint, parent in variant_runs(out, weights):
            for track in tracks:
                log(f"track {track}: {DATASET_NAMES[track]} layout at {world.path(track)}, model {checkpoint}"
                    + (f" (recipe {recipe})" if recipe is not None else ""))
                config = RunConfig(dataset=DATASET_NAMES[track], out=parent / track, scorers=tuple(scorers),
                                   root=world.path(track), scorer_params=dict(scorer_params or {}),
                                   checkpoint=checkpoint, protocol="official", limit=limit, workers=workers,
                                   command=list(sys.argv), plugins=tuple(plugins), bootstrap=bootstrap, seed=seed,
                                   level=level, recipe=recipe)
                results.append(run_benchmark(config, progress=progress, log=log))
                log(run_summary(results[-1], own=(world.config.frames(track), f"the miniature world's {track} track")))
                dirs.append(parent / track)
        write_reports(dirs[:len(tracks)], out, echo=echo, log=log, bootstrap=bootstrap is not None, level=level)
        if len(dirs) > len(tracks):
            write_comparison(dirs, out, log=log)
            echo((out / "methods.txt").read_text())
    log(f"results: {out} (one results folder per track: {', '.join(str(d) for d in dirs)})")
    log(f"leaderboard: {out / 'leaderboard.txt'} (also .tex, .md, .csv)")
    if len(dirs) > len(tracks):
        log(f"variants: {out / 'variants'}; grid {out / 'grid.txt'}, methods table {out / 'methods.txt'} "
            "(also .tex, .md, .csv)")
    log(f"plots: {out / 'plots'}")
    return results


def write_reports(results_dirs, out: Path, echo=print, log=None, bootstrap=False, level=95.0) -> list[Path]:
    """Leaderboard of ``results_dirs`` as text (echoed), LaTeX, markdown and CSV in ``out``; plots per run (said
    through ``log``). bootstrap: with the intervals at ``level`` and the significance of every lead (``bootstrap.npz``
    of each run).
    """
    written = []
    for fmt, suffix in (("text", "txt"), ("latex", "tex"), ("markdown", "md"), ("csv", "csv")):
        text = format_leaderboard([Path(d) for d in results_dirs], fmt, bootstrap=bootstrap, level=level)
        path = Path(out) / f"leaderboard.{suffix}"
        write_text(path, text)
        written.append(path)
        if fmt == "text":
            echo(text)
    if log is not None:
        log(f"plots: curves and overlays of {', '.join(Path(d).name for d in results_dirs)}")
    for d in results_dirs:
        written += plot_results(d, Path(out) / "plots" / Path(d).name)
    return written
