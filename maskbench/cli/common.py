"""What every command shares: library errors as one-line messages with flag names, progress on the terminal."""

import functools
import json
import sys
import time

import click

from maskbench.errors import ConfigError, MaskbenchError

#: Flags of configuration fields whose flag is not ``--<field with dashes>``.
FLAGS = {"scorers": "--scorer", "scorer_params": "--param", "dataset_options": "--option",
         "task_options": "--task-option", "street_classes": "--street-class", "out": "--out"}


def flag(field):
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def user_errors(func):
    """Turn a :class:`MaskbenchError` into a one-line message and exit code 1 (no traceback); a configuration
    error names the command-line flags of its fields."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ConfigError as err:
            raise click.ClickException(err.render(flag)) from err
        except MaskbenchError as err:
            raise click.ClickException(str(err)) from err

    return wrapper


def names(items):
    """``("msp,rba", "eam")`` -> ``("msp", "rba", "eam")``."""
    return tuple(n.strip() for item in items for n in item.split(",") if n.strip())


def key_values(items, option, example="key=value"):
    """``["key=value", ...]`` -> ``[(key, value)]`` with JSON values (else strings)."""
    pairs = []
    for item in items:
        key, eq, value = item.partition("=")
        if not (eq and key):
            raise click.ClickException(f"{option} {item!r}: expected KEY=VALUE, e.g. {example}")
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        pairs.append((key, parsed))
    return pairs


class TerminalProgress:
    """``label  done/total  rate img/s  eta`` on stderr, redrawn in place."""

    def __init__(self, label, total, stream=None):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._draw()

    def update(self, n):
        self.done += n
        self._draw()

    def _draw(self):
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 and self.done else 0.0
        eta = f"{(self.total - self.done) / rate:.0f}s" if rate else "?"
        self.stream.write(f"\r{self.label}  {self.done}/{self.total}  {rate:.2f} img/s  eta {eta}   ")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()
