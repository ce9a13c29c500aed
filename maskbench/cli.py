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
