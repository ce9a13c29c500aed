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
import re
import secrets
import shutil
from pathlib import Path

from maskbench.errors import WriteError
from maskbench.fileio.lock import pid_alive


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


#: Temporary files of :func:`atomic_write` (and folders of :func:`atomic_path`): ``.<name>.<pid>.<8 hex digits>.tmp``.
TEMP_PATTERN = re.compile(r"\..+\.(\d+)\.[0-9a-f]{8}\.tmp")


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None, *, sync=True, newline=None):
    """Context manager: a file object to write ``path``'s new content; committed only if the block succeeds.

    ``mode`` is ``"wb"``, ``"w+b"`` (binary, readable too: HDF5 writers seek back) or ``"w"`` (text,
    ``encoding`` default UTF-8, ``newline`` as :func:`open`'s). The new file gets the permissions a plain
    ``open(path, "w")`` would (``0o666`` less the umask). ``sync=False`` skips both ``fsync`` calls (for
    caches: still atomic if the process dies, not if the machine does).
    """
    if mode not in ("wb", "w+b", "w"):
        raise ValueError(f"atomic_write mode must be 'wb', 'w+b' or 'w', not {mode!r}")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    flags = (os.O_RDWR if mode == "w+b" else os.O_WRONLY) | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as err:
        raise WriteError(path, _reason(err), err.errno) from None
    try:
        text = {"encoding": encoding or "utf-8", "newline": newline} if mode == "w" else {}
        with open(fd, mode, **text) as handle:
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
        # an OSError about another file (one the writing code reads) passes through as it is
        if isinstance(err, OSError) and (err.filename is None or Path(err.filename) in (tmp, path, path.parent)):
            raise WriteError(path, _reason(err), err.errno) from None
        raise


@contextlib.contextmanager
def atomic_path(path):
    """Context manager: a temporary path with ``path``'s file name, in a private folder beside it, for writers that
    want a file name rather than a file object (``torch.save`` names its archive after the file); renamed to
    ``path`` when the block succeeds, removed with its folder otherwise. ``OSError`` -> :class:`WriteError`."""
    path = Path(path)
    folder = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        os.mkdir(folder)
    except OSError as err:
        raise WriteError(path, _reason(err), err.errno) from None
    try:
        yield folder / path.name
        os.replace(folder / path.name, path)
        _fsync_dir(path.parent)
    except OSError as err:
        raise WriteError(path, _reason(err), err.errno) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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


def remove_stale_temps(folder, *, recursive=True):
    """Remove the temporary files (and :func:`atomic_path` folders) left in ``folder`` when their process was killed
    (SIGKILL, power loss): those whose pid is no longer running on this host. Returns the paths removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in list(folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        match = TEMP_PATTERN.fullmatch(path.name)
        if match and not pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                if path.is_dir():  # a folder of atomic_path
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
    return removed


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
