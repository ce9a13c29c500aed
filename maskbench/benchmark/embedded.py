"""The embedded benchmark: ``bench run`` with no arguments.

Generates the miniature road world's evaluation splits if needed (:func:`maskbench.datasets.world.ensure_world`),
loads the shipped tiny Mask2Former (:data:`EMBEDDED_WEIGHTS`, trained by ``bench train`` on the world's inlier
``train`` split, loaded through the same :func:`~maskbench.model.checkpoint.load_model` as real checkpoints),
runs every scorer on the world's anomaly track (``smiyc-ra21`` layout) and obstacle track (``smiyc-ro21``
layout) with each track's official protocol, prints the leaderboard and writes LaTeX, markdown, CSV and plots.
Beside the anomaly numbers, the closed-set number of the same checkpoint (:func:`run_closed_set`: the ``semantic``
task on the world's val split, Cityscapes layout): one line under the leaderboard (text, markdown, the LaTeX
caption) and a column of the CSV.

Layout of ``out`` (default ``./maskbench-results``)::

    anomaly/, obstacle/     one results directory per track (RESULTS_SCHEMA.md)
    semantic/               the closed-set results of the checkpoint on the world's val split
    leaderboard.{txt,tex,md,csv}
    plots/<track>/          PR/ROC curves and score-map overlays
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from maskbench.benchmark.plots import plot_results
from maskbench.benchmark.run import DEFAULT_SCORERS, RunConfig, run_benchmark
from maskbench.benchmark.tables import build_leaderboard, to_frame, to_latex, to_markdown, to_text
from maskbench.datasets.world import DATASET_NAMES, WorldConfig, ensure_world

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
EMBEDDED_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world.pth"
#: Its GMA twin (``bench train --gma``): ``bench run --checkpoint`` it for the embedded benchmark with GMA.
EMBEDDED_GMA_WEIGHTS = WEIGHTS_DIR / "m2f_tiny_world_gma.pth"
#: Scorer parameters fitted for the shipped model (Maskomaly query ids), written by ``bench train``.
EMBEDDED_SCORER_PARAMS = WEIGHTS_DIR / "m2f_tiny_world.scorers.json"
EMBEDDED_TRACKS = ("anomaly", "obstacle")
#: Results directory (under ``out``) of the closed-set step.
CLOSED_SET_DIR = "semantic"


def embedded_scorer_params(path: Path = EMBEDDED_SCORER_PARAMS) -> dict:
    """``{scorer: {param: value}}`` shipped with the weights (empty when the file is absent)."""
    path = Path(path)
    return json.loads(path.read_text())["params"] if path.is_file() else {}


def run_embedded(out: Path = Path("maskbench-results"), *, weights: Path | None = None, tracks=EMBEDDED_TRACKS,
                 scorers=DEFAULT_SCORERS, limit: int | None = None, workers: int | None = None,
                 world_config=None, progress=None, echo=print) -> list[dict]:
    """Run the embedded benchmark into ``out``; return the results.json content of each track.

    limit: only the first N frames of each track (a partial run, flagged as such in every table).
    """
    out = Path(out)
    weights = Path(weights) if weights is not None else EMBEDDED_WEIGHTS
    world = ensure_world(("val", *tracks), config=world_config or WorldConfig())
    params = {k: v for k, v in embedded_scorer_params(
        EMBEDDED_SCORER_PARAMS if weights == EMBEDDED_WEIGHTS else weights.with_suffix(".scorers.json")).items()
        if k in scorers}
    results, dirs = [], []
    for track in tracks:
        config = RunConfig(dataset=DATASET_NAMES[track], out=out / track, scorers=tuple(scorers),
                           root=world.path(track), scorer_params=params, checkpoint=weights, protocol="official",
                           limit=limit, workers=workers, command=list(sys.argv))
        results.append(run_benchmark(config, progress=progress))
        dirs.append(out / track)
    closed = run_closed_set(world, weights, out / CLOSED_SET_DIR, limit=limit, progress=progress)
    write_reports(dirs, out, echo=echo, closed_set=[closed])
    return results


def run_closed_set(world, weights: Path, out: Path, *, limit: int | None = None, progress=None) -> dict:
    """The closed-set number of one checkpoint: the ``semantic`` task (cityscapesScripts mIoU / IoU / iIoU) on the
    world's val split (Cityscapes layout), results in ``out``; returns the results.json content."""
    config = RunConfig(dataset=DATASET_NAMES["val"], task="semantic", out=Path(out), root=world.path("val"),
                       checkpoint=Path(weights), limit=limit, command=list(sys.argv))
    return run_benchmark(config, progress=progress)


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


def write_reports(results_dirs, out: Path, echo=print, closed_set=()) -> list[Path]:
    """Leaderboard of ``results_dirs`` as text (echoed), LaTeX, markdown and CSV in ``out``; plots per run.

    closed_set: :func:`run_closed_set` results, shown under the leaderboard (:func:`closed_set_line`) and as a
    column of the CSV."""
    board = build_leaderboard([Path(d) for d in results_dirs])
    board.notes[:0] = [closed_set_line(r) for r in closed_set]
    frame = to_frame(board)
    if closed_set:
        frame = _closed_set_column(board, frame, list(closed_set))
    texts = {"txt": to_text(board), "tex": to_latex(board), "md": to_markdown(board),
             "csv": frame.to_csv(lineterminator="\n")}
    written = []
    for suffix, text in texts.items():
        path = Path(out) / f"leaderboard.{suffix}"
        path.write_text(text)
        written.append(path)
    echo(texts["txt"])
    for d in results_dirs:
        written += plot_results(d, Path(out) / "plots" / Path(d).name)
    return written
