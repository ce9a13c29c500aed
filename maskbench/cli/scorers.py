"""`bench scorers`: every scorer, built-in and plug-in, with its hyperparameters, formula and provenance."""

import json
from dataclasses import asdict

import click

from maskbench.cli.common import user_errors
from maskbench.cli.options import plugin_option
from maskbench.scorers import describe_scorers, format_scorers, load_plugins, plugin_errors


@click.command()
@plugin_option
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON (name, kind, params, formula, "
                                                       "reference, source) instead of text.")
@user_errors
def scorers(plugins, as_json):
    """List every scorer (built-ins, --plugin files/modules, installed entry points): hyperparameters with defaults,
    the formula line and where it comes from. Exit 1 naming any plug-in that fails to load."""
    load_plugins(plugins)
    infos, errors = describe_scorers(), plugin_errors()
    if as_json:
        click.echo(json.dumps({"scorers": [asdict(i) for i in infos], "failed_plugins": [asdict(e) for e in errors]},
                              indent=1, default=list))
    else:
        click.echo(format_scorers(infos, errors))
    if errors:
        raise click.ClickException("plug-in(s) failed to load: " + "; ".join(
            f"{e.name} ({e.target}): {e.error}" for e in errors))
