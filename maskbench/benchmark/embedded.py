"""The embedded benchmark: ``bench run`` with no arguments.

Generates the miniature road world's evaluation splits if needed (:func:`maskbench.datasets.world.ensure_world`),
loads the shipped tiny Mask2Former (:data:`EMBEDDED_WEIGHTS`, trained by ``bench train`` on the world's inlier
``train`` split, loaded through the same :func:`~maskbench.model.checkpoint.load_model` as real checkpoints),
runs every scorer on the world's anomaly track (``smiyc-ra21`` layout) and obstacle track (``smiyc-ro21``
layout) with each track's official protocol, prints the leaderboard and writes LaTeX, markdown, CSV and plots.
Beside the anomaly numbers, the closed-set number of the same checkpoint (:func:`run_closed_set`: the ``semantic``
task on the world's val split, Cityscapes layout): one line under the leaderboard (text, markdown, the LaTeX
caption) and a column of the CSV. With the shipped inlier model it also evaluates every shipped outlier-exposure
variant on both tracks and writes the grid and the methods table (:mod:`maskbench.benchmark.embedded_variants`).

The folder is locked for the run (a second embedded run into it is refused) and every stage is announced
through ``log``. Layout of ``out`` (default ``./maskbench-results``)::

    anomaly/, obstacle/     one results directory per track (RESULTS_SCHEMA.md)
    semantic/               the closed-set results of the checkpoint on the world's val split
    leaderboard.{txt,tex,md,csv}
    plots/<track>/          PR/ROC curves and score-map overlays
    variants/<recipe>/<track>/, grid.*, methods.*, plots/variants/   the variants (embedded_variants)
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import pandas as pd

from maskbench.benchmark.calibrate import WEIGHTS_DIR
from maskbench.benchmark.embedded_variants import variant_runs, write_comparison
from maskbench.benchmark.plots import plot_results
from maskbench.benchmark.run import DEFAULT_SCORERS, RunConfig, run_benchmark
from maskbench.benchmark.summary import run_summary
from maskbench.benchmark.table_formats import to_frame, to_latex, to_markdown, to_text
from maskbench.benchmark.tables import build_leaderboard
from maskbench.datasets.world import DATASET_NAMES, WorldConfig, ensure_world
from maskbench.fileio import claim_folder, write_text

EMBEDDED_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world.pth"
#: Its GMA twin (``bench train --gma``): ``bench run --checkpoint`` it for the embedded benchmark with GMA.
EMBEDDED_GMA_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world_gma.pth"
EMBEDDED_TRACKS = ("anomaly", "obstacle")
#: Default results folder of the embedded run.
EMBEDDED_OUT = "maskbench-results"
#: Results directory (under ``out``) of the closed-set step.
CLOSED_SET_DIR = "semantic"


def run_embedded(out: Path = Path(EMBEDDED_OUT), *, weights: Path | None = None, tracks=EMBEDDED_TRACKS,
                 scorers=DEFAULT_SCORERS, limit: int | None = None, workers: int | None = None,
                 world_config=None, progress=None, echo=print, plugins=(), scorer_params=None, bootstrap=None,
                 seed=0, level=95.0, log=None) -> list[dict]:
    """Run the embedded benchmark into ``out``; return the results.json content of each track run (the inlier
    model's, then each variant's: :func:`~maskbench.benchmark.embedded_variants.variant_runs`).

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
        log(f"world: the miniature world's val, {' and '.join(tracks)} splits (generated once, then cached)")
        world = ensure_world(("val", *tracks), config=world_config or WorldConfig(), log=log)
        results, dirs = [], []
        runs = variant_runs(out, weights)
        for recipe, checkpoint, parent in runs:
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
        log(f"closed set: the semantic task on the world's val split ({DATASET_NAMES['val']} layout)")
        closed = run_closed_set(world, weights, out / CLOSED_SET_DIR, limit=limit, progress=progress, log=log,
                                recipe=runs[0][0])
        write_reports(dirs[:len(tracks)], out, echo=echo, log=log, closed_set=[closed],
                      bootstrap=bootstrap is not None, level=level)
        if len(runs) > 1:
            write_comparison(dirs, out, log=log)
            echo((out / "methods.txt").read_text())
    log(f"results: {out} (one results folder per track: {', '.join(str(d) for d in dirs)}; closed set: "
        f"{out / CLOSED_SET_DIR})")
    log(f"leaderboard: {out / 'leaderboard.txt'} (also .tex, .md, .csv)")
    if len(runs) > 1:
        log(f"variants: {out / 'variants'}; grid {out / 'grid.txt'}, methods table {out / 'methods.txt'} "
            "(also .tex, .md, .csv)")
    log(f"plots: {out / 'plots'}")
    return results


def run_closed_set(world, weights: Path, out: Path, *, limit: int | None = None, progress=None, log=None,
                   recipe: str | None = None) -> dict:
    """The closed-set number of one checkpoint: the ``semantic`` task (cityscapesScripts mIoU / IoU / iIoU) on the
    world's val split (Cityscapes layout), results in ``out``; returns the results.json content. ``recipe``: the
    checkpoint's training recipe (``run.checkpoint.recipe``)."""
    config = RunConfig(dataset=DATASET_NAMES["val"], task="semantic", out=Path(out), root=world.path("val"),
                       checkpoint=Path(weights), limit=limit, command=list(sys.argv), recipe=recipe)
    return run_benchmark(config, progress=progress, log=log)


def closed_set_line(results: dict) -> str:
    """One sentence with the closed-set numbers of a :func:`run_closed_set` result, its protocol and checkpoint."""
    entry, run = results["results"][0], results["run"]
    m = entry["metrics"]
    show = {k: "-" if m[k] is None else f"{100 * m[k]:.1f}" for k in ("mIoU", "iIoU")}
    frames = run["frames"]
    official = run["dataset"]["info"].get("frames")
    partial = "" if frames == official else f" of {official}: partial"
    return (f"Closed set ({entry['protocol']}: cityscapesScripts evalPixelLevelSemanticLabeling on labelIds; "
            f"resolution {run['resolution']}; TTA {run['tta']}): world val ({frames} frames{partial}) mIoU "
            f"{show['mIoU']}, iIoU {show['iIoU']} of {Path(run['checkpoint']['path']).name} "
            f"(sha256 {run['checkpoint']['sha256'][:12]}).")


def _closed_set_column(board, frame, closed_set):
    """The CSV's closed-set column: each row's checkpoint mIoU (rows ``scorer [checkpoint]`` when the leaderboard
    holds several checkpoints; every row when one closed-set result is given)."""
    values = []
    for row in board.rows:
        match = [r for r in closed_set if len(closed_set) == 1
                 or row.endswith(f"[{Path(r['run']['checkpoint']['path']).stem}]")]
        values.append(match[0]["results"][0]["metrics"]["mIoU"] if match else None)
    protocol = closed_set[0]["results"][0]["protocol"]
    frame[("world val", f"{protocol}; cityscapesScripts (labelIds)", "mIoU")] = pd.Series(
        values, index=frame.index, dtype="float64")
    return frame


def write_reports(results_dirs, out: Path, echo=print, log=None, closed_set=(), bootstrap=False,
                  level=95.0) -> list[Path]:
    """Leaderboard of ``results_dirs`` as text (echoed), LaTeX, markdown and CSV in ``out``; plots per run (said
    through ``log``).

    closed_set: :func:`run_closed_set` results, shown under the leaderboard (:func:`closed_set_line`) and as a
    column of the CSV. bootstrap: with the intervals at ``level`` and the significance of every lead
    (``bootstrap.npz`` of each run)."""
    board = build_leaderboard([Path(d) for d in results_dirs], bootstrap=bootstrap, level=level)
    board.notes[:0] = [closed_set_line(r) for r in closed_set]
    frame = to_frame(board)
    if closed_set:
        frame = _closed_set_column(board, frame, list(closed_set))
    texts = {"txt": to_text(board), "tex": to_latex(board), "md": to_markdown(board),
             "csv": frame.to_csv(lineterminator="\n")}
    written = []
    for suffix, text in texts.items():
        path = Path(out) / f"leaderboard.{suffix}"
        write_text(path, text)
        written.append(path)
    echo(texts["txt"])
    if log is not None:
        log(f"plots: curves and overlays of {', '.join(Path(d).name for d in results_dirs)}")
    for d in results_dirs:
        written += plot_results(d, Path(out) / "plots" / Path(d).name)
    return written
