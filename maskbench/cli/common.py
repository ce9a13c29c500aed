"""What every command shares: one error path (library errors, failed writes, Ctrl-C as one line with flag names;
the traceback only with ``bench --debug`` or ``MASKBENCH_DEBUG=1``), progress on the terminal."""

import functools
import json
import os
import sys
import time
import traceback

import click

from maskbench.errors import ConfigError, MaskbenchError, WriteError
from maskbench.fileio import ensure_writable_dir

#: Flags of configuration fields whose flag is not ``--<field with dashes>``.
FLAGS = {"scorers": "--scorer", "scorer_params": "--param", "dataset_options": "--option",
         "task_options": "--task-option", "street_classes": "--street-class", "out": "--out"}
#: Environment variable that shows the traceback of every error (as ``bench --debug``).
DEBUG_ENV = "MASKBENCH_DEBUG"
#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130


def flag(field):
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def debugging():
    """Whether tracebacks are shown: ``bench --debug`` (kept in the click context) or ``MASKBENCH_DEBUG=1``."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.meta.get(DEBUG_ENV)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


class Interrupted(click.ClickException):
    """Ctrl-C: one line, exit code 130."""

    exit_code = INTERRUPTED_EXIT


def error_line(err):
    """The one line shown for an expected failure: the library's message (with flag names for a configuration
    error), or ``<path>: <reason>`` for an operating-system error the library did not wrap."""
    if isinstance(err, ConfigError):
        return err.render(flag)
    if isinstance(err, OSError) and not isinstance(err, MaskbenchError):
        reason = err.strerror or str(err) or type(err).__name__
        return f"{err.filename}: {reason}" if err.filename is not None else reason
    return str(err)


def user_errors(func=None, *, interrupted=None):
    """Decorator of every command: a :class:`MaskbenchError` or an ``OSError`` becomes one line and exit code 1, Ctrl-C
    one line and exit code 130, never a traceback (unless :func:`debugging`). ``interrupted(params)`` -> the
    Ctrl-C line given the command's parameters (default ``"interrupted"``), e.g. how to resume."""
    if func is None:
        return functools.partial(user_errors, interrupted=interrupted)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except KeyboardInterrupt as err:
            if debugging():
                traceback.print_exc()
            raise Interrupted(interrupted(kwargs) if interrupted else "interrupted") from err
        except (MaskbenchError, OSError) as err:
            if debugging():
                traceback.print_exc()
            raise click.ClickException(error_line(err)) from err

    return wrapper


def writable_file(path):
    """Check before the work that ``path`` can be written (its folder exists or can be made, and accepts files;
    ``path`` is not a folder); raises :class:`WriteError` naming it."""
    if path.is_dir():
        raise WriteError(path, "it is a folder; give a file name")
    ensure_writable_dir(path.absolute().parent)


def names(items, option="--scorer"):
    """``("msp,rba", "eam")`` -> ``("msp", "rba", "eam")``; given but naming nothing (``","``) is an error."""
    found = tuple(n.strip() for item in items for n in item.split(",") if n.strip())
    if items and not found:
        raise click.UsageError(f"{option} {','.join(items)!r}: names nothing; leave the option out for the default "
                               "list, or name at least one")
    return found


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


def status(line):
    """A line about what a command is doing or decided (stderr, beside the progress bars; results go to stdout)."""
    click.echo(line, err=True)


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
