"""Exceptions raised for bad user input.

Every error that a user can cause (a missing file, a malformed array, a value out of range) is a
:class:`MaskbenchError` whose message names the offending file or argument and the problem. The CLI turns
it into a one-line message and a non-zero exit code instead of a traceback.
"""


class MaskbenchError(Exception):
    """Base class of every user-facing error raised by maskbench."""


class InputError(MaskbenchError, ValueError):
    """An input (array, file, option) is malformed: wrong shape, dtype, value range, or missing."""


class DatasetError(InputError):
    """A dataset on disk is missing, incomplete or malformed; the message names the dataset, file and problem."""
