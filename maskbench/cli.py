"""The ``bench`` command line: a thin click layer over the library."""

import functools

import click

from maskbench import __version__
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
@click.option("--gt-json", required=True, type=click.Path(dir_okay=False), help="GT panoptic JSON (panopticapi format).")
@click.option("--gt-dir", required=True, type=click.Path(file_okay=False), help="Folder of GT panoptic PNGs.")
@click.option("--pred-json", required=True, type=click.Path(dir_okay=False), help="Predicted panoptic JSON.")
@click.option("--pred-dir", required=True, type=click.Path(file_okay=False), help="Folder of predicted panoptic PNGs.")
@click.option("--unknown", type=click.Choice(["K5", "K10", "K20"]), default=None,
              help="EOPSN open-set protocol: merge this split's COCO classes into the unknown category -1.")
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False), help="Where to write the results.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes reading images.")
@user_errors
def pq(gt_json, gt_dir, pred_json, pred_dir, unknown, json_out, workers):
    """Panoptic quality PQ/SQ/RQ (panopticapi semantics; EOPSN open set with --unknown)."""
    import json

    from maskbench.metrics.panoptic import format_table, pq_compute_files

    result = pq_compute_files(gt_json, gt_dir, pred_json, pred_dir, unknown=unknown, workers=workers)
    try:
        with open(json_out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    except OSError as err:
        raise click.ClickException(f"{json_out}: cannot write the results ({err})") from err
    click.echo(format_table(result))
