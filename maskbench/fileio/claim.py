"""Claiming an output folder for one job: writable, locked, cleaned of what a killed job left.

:func:`claim_folder` is what every command that writes a folder does before its long work starts (`bench run
--out` and its ``--cache`` folder, `bench calibrate --out`, `bench train --out`, the embedded run's folder), so
an unwritable folder or a folder in use fails at once with one line, not after the work.
"""

import contextlib
from pathlib import Path

from maskbench.fileio.lock import FolderLock, describe_holder
from maskbench.fileio.write import ensure_writable_dir, remove_stale_temps


def claim_folder(folder, held, log=None, *, command=None):
    """Make ``folder`` writable (:func:`ensure_writable_dir`) and lock it (:class:`FolderLock`) until ``held`` (a
    :class:`contextlib.ExitStack`) closes; returns it as an absolute path.

    A lock left by a killed process is taken over, and the temporary files such a process leaves are removed
    (:func:`remove_stale_temps`); ``log(line)`` says so. A folder this call created is removed again if it is
    still empty when ``held`` closes (a job refused before it wrote anything).
    """
    log = log or (lambda line: None)
    created = not Path(folder).exists()
    folder = ensure_writable_dir(folder)
    if created:
        held.callback(_remove_if_empty, folder)
    lock = held.enter_context(FolderLock(folder, command=command))
    if lock.stale:
        log(f"{folder}: took over the lock of {describe_holder(lock.stale)}, which is no longer running")
    removed = remove_stale_temps(folder)
    if removed:
        log(f"{folder}: removed {len(removed)} temporary file(s) of an interrupted write")
    return folder


def _remove_if_empty(folder):
    with contextlib.suppress(OSError):
        folder.rmdir()
