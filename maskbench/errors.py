"""Exceptions raised for bad user input.

Every error that a user can cause (a missing file, a malformed array, a value out of range) is a
:class:`MaskbenchError` whose message names the offending file or argument and the problem. The CLI turns
it into a one-line message and a non-zero exit code instead of a traceback.
"""

import re


class MaskbenchError(Exception):
    """Base class of every user-facing error raised by maskbench."""


class InputError(MaskbenchError, ValueError):
    """An input (array, file, option) is malformed: wrong shape, dtype, value range, or missing."""


class DatasetError(InputError):
    """A dataset on disk is missing, incomplete or malformed; the message names the dataset, file and problem."""


class FileReadError(InputError):
    """A file is missing, unreadable or not in the format it should be; ``path`` and ``what`` name both.

    ``missing`` is True when the file does not exist at all.
    """

    def __init__(self, path, what, *, missing=False):
        self.path = path
        self.what = what
        self.missing = missing
        super().__init__(f"{path}: {what}")

    def __reduce__(self):  # picklable (errors raised in worker processes travel back to the parent)
        return type(self), (self.path, self.what), self.__dict__


class WriteError(MaskbenchError):
    """A file or folder cannot be written (disk full, read-only file system, no permission, I/O error).

    ``path`` is what was being written, ``reason`` the operating system's words (``errno`` its code, or None).
    """

    def __init__(self, path, reason, errno=None):
        self.path = path
        self.reason = reason
        self.errno = errno
        super().__init__(f"{path}: cannot write: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason, self.errno), self.__dict__


class LockError(MaskbenchError):
    """A folder is in use by another maskbench process; ``holder`` describes it (pid, host, started, command)."""

    def __init__(self, message, holder=None):
        self.holder = holder or {}
        super().__init__(message)

    def __reduce__(self):
        return type(self), (str(self), self.holder), self.__dict__


class WorkerError(MaskbenchError):
    """A worker process ended without a result (killed, out of memory, crashed in native code)."""


class ConfigError(InputError):
    """A configuration field holds a bad value: ``fields`` names the field(s), ``detail`` says what is wrong and
    ``mentions`` lists other fields the detail names.

    ``str(err)`` is ``"<field> <detail>"`` (e.g. ``resolution 'x': choose one of native, short1024``); the CLI
    renders the same message with its flags in place of the field names (:meth:`render`).
    """

    def __init__(self, fields, detail, mentions=()):
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)
        self.detail = detail
        self.mentions = tuple(mentions)
        super().__init__(self.render(str))

    def render(self, name):
        """The message with every field ``f`` (named or mentioned) shown as ``name(f)``."""
        detail = self.detail
        if self.mentions:
            words = "|".join(re.escape(f) for f in sorted(self.mentions, key=len, reverse=True))
            detail = re.sub(rf"\b({words})\b", lambda m: name(m.group(1)), detail)
        return " and ".join(name(f) for f in self.fields) + detail
