"""Options shared by several commands: scorer plug-ins, the FPR95 rule, and bootstrap intervals."""

import click

from maskbench.benchmark.replicates import DEFAULT_LEVEL
from maskbench.metrics.exact_curve import FPR95_RULES


def plugin_option(func):
    """``--plugin MODULE_OR_FILE`` (repeatable) -> ``plugins``."""
    return click.option(
        "--plugin", "plugins", multiple=True, metavar="MODULE_OR_FILE",
        help="Scorer plug-in to import first: a module name or a .py file that registers scorers (repeatable; see "
             "`bench scorers`). Installed packages register through the entry-point group maskbench.scorers.")(func)


def fpr95_rule_help():
    rules = "; ".join(f"{name}: {FPR95_RULES.get(name).description}" for name in FPR95_RULES)
    return ("FPR95 rule (default first_geq). The exact protocols take every rule, the SMIYC protocols first_geq "
            f"only. {rules}.")


def fpr95_rule_option(func):
    """``--fpr95-rule RULE`` -> ``fpr95_rule`` (None: the protocol's)."""
    return click.option("--fpr95-rule", default=None, type=click.Choice(list(FPR95_RULES)),
                        help=fpr95_rule_help())(func)


def bootstrap_options(func):
    """``--bootstrap B``, ``--seed``, ``--level`` -> ``bootstrap``, ``seed``, ``level``."""
    for option in reversed((
        click.option("--bootstrap", type=click.IntRange(min=1), default=None, metavar="B",
                     help="Percentile bootstrap intervals of every metric from B replicates: frames resampled with "
                          "replacement, replicate b draws "
                          "numpy.random.default_rng(seed).integers(0, F, size=(B, F))[b] (default: off; e.g. 1000)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of the bootstrap draws."),
        click.option("--level", type=click.FloatRange(0, 100, min_open=True, max_open=True), default=DEFAULT_LEVEL,
                     show_default=True, help="Confidence level of the bootstrap intervals, in percent."),
    )):
        func = option(func)
    return func
