"""The embedded benchmark: ``bench run`` with no arguments.

Generates the miniature road world's evaluation splits if needed (:func:`maskbench.datasets.world.ensure_world`),
loads the shipped tiny Mask2Former (:data:`EMBEDDED_WEIGHTS`, trained by ``bench train`` on the world's inlier
``train`` split, loaded through the same :func:`~maskbench.model.checkpoint.load_model` as real checkpoints),
runs every scorer on the world's anomaly track (``smiyc-ra21`` layout) and obstacle track (``smiyc-ro21``
layout) with each track's official protocol, prints the leaderboard and writes LaTeX, markdown, CSV and plots.

Layout of ``out`` (default ``./maskbench-results``)::

    anomaly/, obstacle/     one results directory per track (RESULTS_SCHEMA.md)
    leaderboard.{txt,tex,md,csv}
    plots/<track>/          PR/ROC curves and score-map overlays
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from maskbench.benchmark.plots import plot_results
from maskbench.benchmark.run import DEFAULT_SCORERS, RunConfig, run_benchmark
from maskbench.benchmark.tables import format_leaderboard
from maskbench.datasets.world import DATASET_NAMES, WorldConfig, ensure_world

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
EMBEDDED_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world.pth"
#: Its GMA twin (``bench train --gma``): ``bench run --checkpoint`` it for the embedded benchmark with GMA.
EMBEDDED_GMA_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world_gma.pth"
#: Scorer parameters fitted for the shipped model (Maskomaly query ids), written by ``bench train``.
EMBEDDED_SCORER_PARAMS = WEIGHTS_DIR / "m2f_tiny_world.scorers.json"
EMBEDDED_TRACKS = ("anomaly", "obstacle")


def embedded_scorer_params(path: Path = EMBEDDED_SCORER_PARAMS) -> dict:
    """``{scorer: {param: value}}`` shipped with the weights (empty when the file is absent)."""
    path = Path(path)
    return json.loads(path.read_text())["params"] if path.is_file() else {}


def run_embedded(out: Path = Path("maskbench-results"), *, weights: Path | None = None, tracks=EMBEDDED_TRACKS,
                 scorers=DEFAULT_SCORERS, limit: int | None = None, workers: int | None = None,
                 world_config=None, progress=None, echo=print, plugins=(), scorer_params=None, bootstrap=None,
                 seed=0, level=95.0) -> list[dict]:
    """Run the embedded benchmark into ``out``; return the results.json content of each track.

    limit: only the first N frames of each track (a partial run, flagged as such in every table).
    plugins, bootstrap, seed, level: as in :class:`~maskbench.benchmark.run.RunConfig`; scorer_params: over the
    parameters shipped with the weights. With bootstrap the leaderboards print the intervals.
    """
    out = Path(out)
    weights = Path(weights) if weights is not None else EMBEDDED_WEIGHTS
    world = ensure_world(tuple(tracks), config=world_config or WorldConfig())
    params = {k: v for k, v in embedded_scorer_params(
        EMBEDDED_SCORER_PARAMS if weights == EMBEDDED_WEIGHTS else weights.with_suffix(".scorers.json")).items()
        if k in scorers}
    for name, values in (scorer_params or {}).items():
        params[name] = {**params.get(name, {}), **values}
    results, dirs = [], []
    for track in tracks:
        config = RunConfig(dataset=DATASET_NAMES[track], out=out / track, scorers=tuple(scorers),
                           root=world.path(track), scorer_params=params, checkpoint=weights, protocol="official",
                           limit=limit, workers=workers, command=list(sys.argv), plugins=tuple(plugins),
                           bootstrap=bootstrap, seed=seed, level=level)
        results.append(run_benchmark(config, progress=progress))
        dirs.append(out / track)
    write_reports(dirs, out, echo=echo, bootstrap=bootstrap is not None, level=level)
    return results


def write_reports(results_dirs, out: Path, echo=print, bootstrap=False, level=95.0) -> list[Path]:
    """Leaderboard of ``results_dirs`` as text (echoed), LaTeX, markdown and CSV in ``out``; plots per run.

    bootstrap: with the intervals at ``level`` and the significance of every lead (``bootstrap.npz`` of each run).
    """
    written = []
    for fmt, suffix in (("text", "txt"), ("latex", "tex"), ("markdown", "md"), ("csv", "csv")):
        text = format_leaderboard([Path(d) for d in results_dirs], fmt, bootstrap=bootstrap, level=level)
        path = Path(out) / f"leaderboard.{suffix}"
        path.write_text(text)
        written.append(path)
        if fmt == "text":
            echo(text)
    for d in results_dirs:
        written += plot_results(d, Path(out) / "plots" / Path(d).name)
    return written
