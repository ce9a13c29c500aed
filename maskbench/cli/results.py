"""`bench table`, `bench plot` and `bench check`: functions of stored results directories alone."""

from pathlib import Path

import click

from maskbench.benchmark.golden import check as check_golden
from maskbench.benchmark.golden import parse_tolerances, write_golden
from maskbench.benchmark.plots import plot_results
from maskbench.benchmark.table_formats import format_leaderboard
from maskbench.benchmark.tables import FORMATS, parse_metrics
from maskbench.benchmark.replicates import DEFAULT_LEVEL
from maskbench.benchmark.results import results_folders
from maskbench.cli.common import user_errors, writable_file
from maskbench.fileio import write_text


@click.command()
@click.option("--results", "results_dirs", required=True, multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Results directory written by `bench run` (or its results.json, or a folder of results directories "
                   "such as the embedded run's); repeat for several runs.")
@click.option("--format", "fmt", type=click.Choice(list(FORMATS)), default="text",
              show_default=True, help="latex: booktabs table; markdown: pipe table; csv: raw fractions.")
@click.option("--metrics", default=None,
              help="Comma-separated metric keys of results.json, in column order "
                   "(default: those of AP,FPR95,sIoU,PPV,F1 the results have).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table to this file instead of stdout.")
@click.option("--bootstrap", type=click.IntRange(min=0), is_flag=False, flag_value=0, default=None, metavar="[B]",
              help="Print every value with its bootstrap interval [low, high] (CSV: <metric>.low/.high columns) and "
                   "mark best values whose lead over the second is not significant (paired bootstrap), from the "
                   "bootstrap.npz of runs made with --bootstrap B; with B: check that they hold B replicates.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="With --bootstrap: check that the runs' draws used this seed (default: any).")
@click.option("--level", type=click.FloatRange(0, 100, min_open=True, max_open=True), default=DEFAULT_LEVEL,
              show_default=True, help="With --bootstrap: confidence level of the intervals and of the paired tests.")
@user_errors
def table(results_dirs, fmt, metrics, out_path, bootstrap, seed, level):
    """Leaderboard: scorers x (dataset, protocol) x metrics, x100, best bold, second underlined."""
    if bootstrap is None and (seed is not None or level != DEFAULT_LEVEL):
        raise click.UsageError("--seed and --level go with --bootstrap")
    if out_path is not None:
        writable_file(out_path)
    dirs = [d for given in results_dirs for d in results_folders(given)]
    text = format_leaderboard(dirs, fmt=fmt, metrics=parse_metrics(metrics) if metrics else None,
                              bootstrap=bootstrap is not None, level=level, replicates=bootstrap or None, seed=seed)
    if out_path is None:
        click.echo(text, nl=False)
        return
    write_text(out_path, text)
    click.echo(f"wrote {out_path.absolute()}")


@click.command()
@click.option("--results", "results_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="Results directory of `bench run`.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the PNG/PDF figures (default: RESULTS/plots).")
@click.option("--frames", default=None, help="Comma-separated frame ids of maps/<id>.npz to overlay (default: all).")
@user_errors
def plot(results_dir, out_dir, frames):
    """PR/ROC curves (AP, AUROC in the legends) and score-map overlays, as PNG and PDF."""
    ids = [f.strip() for f in frames.split(",") if f.strip()] if frames else None
    for path in plot_results(results_dir, out_dir, ids):
        click.echo(f"wrote {path}")


@click.command()
@click.option("--golden", "golden_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Golden JSON of expected metrics (format: maskbench.benchmark.golden).")
@click.argument("results_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--tolerance", "tolerances", multiple=True, metavar="[METRIC=]NUMBER",
              help="Absolute tolerance on stored fractions, overriding the golden file: NUMBER for every metric, "
                   "METRIC=NUMBER for one (repeatable). Default 1e-4.")
@click.option("--update", is_flag=True,
              help="Write the golden file from the results (deliberately) instead of checking.")
@user_errors
def check(golden_path, results_dirs, tolerances, update):
    """Compare every metric of RESULTS_DIR/results.json to a golden file; exit 1 on drift (a folder of results
    directories, such as the embedded run's, stands for all of them)."""
    tol = parse_tolerances(tolerances)
    results_dirs = [d for given in results_dirs for d in results_folders(given)]
    if update:
        if golden_path.exists():
            click.echo(f"previous {golden_path} vs these results:")
            click.echo(check_golden(golden_path, results_dirs, tol).format())
        command = ["bench", "check", "--golden", str(golden_path), *map(str, results_dirs),
                   *(f"--tolerance={t}" for t in tolerances), "--update"]
        data = write_golden(golden_path, results_dirs, tol, command=command)
        click.echo(f"wrote {golden_path}: {len(data['entries'])} entries, tolerance {data['tolerance']}")
        return
    report = check_golden(golden_path, results_dirs, tol)
    click.echo(report.format())
    if not report.ok:
        raise SystemExit(1)
