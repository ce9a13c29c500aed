"""The ``bench`` command line: a thin click layer over the library."""

import functools
import json
import sys
from pathlib import Path

import click

from maskbench import __version__
from maskbench.benchmark.evaluate import EVAL_PROTOCOLS, evaluate_dirs, format_evaluation, pair_frames
from maskbench.errors import MaskbenchError


def user_errors(func):
    """Turn a :class:`MaskbenchError` into a one-line message and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MaskbenchError as err:
            raise click.ClickException(str(err)) from err

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="maskbench")
def main():
    """maskbench: anomaly segmentation benchmark for mask-based networks."""


@main.command()
def run():
    """Run the benchmark: one forward per image, every scorer, every metric (not yet available)."""
    raise click.ClickException(
        "`bench run` is not yet available: the runner (scorers + model + datasets) has not landed. "
        "Use `bench evaluate` to score saved anomaly maps."
    )


@main.command()
@click.option("--pred", "pred_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory of <stem>.npy score maps (2-D float16/float32, higher = more anomalous).")
@click.option("--gt", "gt_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory of <stem>.png labels (uint8: 0 inlier, 1 anomaly, 255 or other = void).")
@click.option("--protocol", required=True, type=click.Choice(list(EVAL_PROTOCOLS)),
              help="smiyc-anomaly / smiyc-obstacle: the official SMIYC code; exact: exact float32 curve; "
                   "exact16: exact curve on float16 scores.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics as JSON (fractions; null where undefined).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: automatic; 1 = in-process).")
@user_errors
def evaluate(pred_dir, gt_dir, protocol, json_path, workers):
    """Evaluate saved anomaly maps: AP, AUROC, FPR95, sIoU, PPV, F1*, MDM."""
    n_frames = len(pair_frames(pred_dir, gt_dir))
    with click.progressbar(length=2 * n_frames, label="evaluating", file=sys.stderr) as bar:
        result = evaluate_dirs(pred_dir, gt_dir, protocol, workers=workers, progress=bar.update)
    if json_path:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    click.echo(format_evaluation(result))

