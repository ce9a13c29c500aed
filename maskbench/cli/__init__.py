"""The ``bench`` command line: a thin click layer over the library (options -> config -> one library call).

Commands live in one module per group and are imported when invoked, so a command loads only the library
parts it uses.
"""

import importlib

import click

from maskbench import __version__
from maskbench.cli.common import DEBUG_ENV, Interrupted

#: ``bench`` command -> ``module:attribute`` of its click command.
COMMANDS = {
    "run": "maskbench.cli.run:run",
    "calibrate": "maskbench.cli.run:calibrate",
    "evaluate": "maskbench.cli.evaluate:evaluate",
    "pq": "maskbench.cli.evaluate:pq",
    "table": "maskbench.cli.results:table",
    "plot": "maskbench.cli.results:plot",
    "check": "maskbench.cli.results:check",
    "datasets": "maskbench.cli.data:datasets",
    "world": "maskbench.cli.data:world",
    "train": "maskbench.cli.train:train_command",
    "scorers": "maskbench.cli.scorers:scorers",
}


class LazyGroup(click.Group):
    """A group whose commands are imported from :data:`COMMANDS` on first use."""

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, cmd_name):
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:  # while a command is imported (commands turn their own Ctrl-C into a line)
            raise Interrupted("interrupted") from err


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="maskbench")
@click.option("--debug", is_flag=True, help=f"Show the traceback of an error (also {DEBUG_ENV}=1).")
@click.pass_context
def main(ctx, debug):
    """maskbench: anomaly segmentation benchmark for mask-based networks.

    Every expected failure (a bad file, an unwritable folder, a folder in use, Ctrl-C) is one line and a
    non-zero exit code (130 after Ctrl-C).
    """
    ctx.meta[DEBUG_ENV] = debug
