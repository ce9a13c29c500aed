"""Atomic writes and writable output folders.

:func:`atomic_write` writes to a temporary file in the target's folder (``.<name>.<pid>.<random>.tmp``),
flushes and ``fsync``\\ s it, renames it over the target (``os.replace``: atomic on POSIX and Windows) and
``fsync``\\ s the folder, so a reader sees the old file or the new one, never half of one. Any failure
(disk full, read-only file system, no permission, I/O error, or an exception of the writing code)
removes the temporary file; an ``OSError`` becomes a :class:`WriteError` naming the target and the
operating system's reason.
"""

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

from maskbench.errors import WriteError


def _reason(err):
    return err.strerror or str(err) or type(err).__name__


def _fsync_dir(folder):
    """Make a rename durable (POSIX); a folder cannot be opened for this on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None, *, sync=True):
    """Context manager: a file object to write ``path``'s new content; committed only if the block succeeds.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` default UTF-8). The new file gets the permissions a
    plain ``open(path, "w")`` would (``0o666`` less the umask). ``sync=False`` skips both ``fsync`` calls
    (for caches: still atomic if the process dies, not if the machine does).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as err:
        raise WriteError(path, _reason(err), err.errno) from None
    try:
        with open(fd, mode, encoding=encoding or ("utf-8" if mode == "w" else None)) as handle:
            yield handle
            handle.flush()
            if sync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if sync:
            _fsync_dir(path.parent)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise WriteError(path, _reason(err), err.errno) from None
        raise


def write_bytes(path, data):
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def write_text(path, text, encoding="utf-8"):
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)


def write_json(path, obj, indent=1):
    """``obj`` as JSON (no NaN/inf: those are not JSON) plus a newline, written atomically."""
    write_text(path, json.dumps(obj, indent=indent, allow_nan=False) + "\n")


def ensure_writable_dir(folder, *, min_free_bytes=0):
    """Create ``folder`` (with parents) if needed and prove it writable; raises :class:`WriteError` if not.

    A probe file is created, written, synced and removed (permission bits say little when running as
    root, on read-only mounts or network file systems). ``min_free_bytes``: also require that much free
    space. Returns the folder as an absolute :class:`Path`.
    """
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise WriteError(folder, "it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(folder, f"cannot create the folder: {_reason(err)}", err.errno) from None
    probe = folder / f".maskbench-write-probe.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        write_bytes(probe, b"maskbench write probe\n")
    except WriteError as err:
        raise WriteError(folder, err.reason, err.errno) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)
    if min_free_bytes:
        free = shutil.disk_usage(folder).free
        if free < min_free_bytes:
            raise WriteError(folder, f"only {free / 2**20:.1f} MiB free, about {min_free_bytes / 2**20:.1f} MiB "
                                     "needed")
    return folder
