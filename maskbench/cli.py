"""The ``bench`` command line: a thin click layer over the library."""

import functools
from pathlib import Path

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


@main.group(invoke_without_command=True)
@click.pass_context
def datasets(ctx):
    """List every dataset with the layout it expects; `check` a root; write a `replica`."""
    if ctx.invoked_subcommand is None:
        from maskbench.datasets import format_dataset_list

        click.echo(format_dataset_list())


@datasets.command("check")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: $MASKBENCH_ROOT_<NAME> or $MASKBENCH_DATA/<name>).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Dataset option, e.g. -o subset=testNoKnown, -o version=2, -o split=K10.")
@click.option("--quick", is_flag=True, help="Only walk the file names; do not read and validate every frame.")
@click.option("--partial", is_flag=True, help="Accept a frame count other than the official one (replicas, subsets).")
@user_errors
def datasets_check(name, root, options, quick, partial):
    """Report what is under the root of dataset NAME: frame count vs official, every missing or malformed path."""
    from maskbench.datasets import check_dataset, parse_options

    report = check_dataset(name, root, read=not quick, partial=partial, **parse_options(options))
    click.echo(report.format())
    if not report.ok:
        raise SystemExit(1)


@datasets.command("replica")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write into.")
@click.option("--frames", default=3, show_default=True, type=click.IntRange(min=1), help="Labelled frames to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the replica content.")
@user_errors
def datasets_replica(name, out, frames, seed):
    """Write a tiny replica of dataset NAME in its official layout (known content, for tests and smoke runs)."""
    from maskbench.datasets.replica import make

    replica = make(name, out, frames=frames, seed=seed)
    click.echo(f"wrote a {len(replica.samples)}-frame replica of {name} at {replica.root}")
