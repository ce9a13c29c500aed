"""One maskbench process per folder: :class:`FolderLock`.

The lock is ``<folder>/.maskbench.lock``, held with ``flock(LOCK_EX | LOCK_NB)`` for as long as the
process runs its job; the file records the holder (pid, host, start time, command) so that a refused
second process can say who holds the folder. The kernel drops an ``flock`` when its holder dies, however
it dies (SIGKILL included), so a lock file left behind by a killed process is free to take: that
*stale* lock is taken over and its record kept in :attr:`FolderLock.stale`. Releasing removes the file
while still holding the lock; an acquirer checks that the file it locked is still the one at the path.

Where ``flock`` is unavailable (Windows; file systems that refuse locks) the record alone decides: a
holder on this host whose pid is gone is stale, any other holder keeps the folder (two processes starting
in the same instant could then both take a stale lock).
"""

import contextlib
import errno
import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from maskbench.errors import LockError, WriteError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = ".maskbench.lock"


def pid_alive(pid):
    """Whether a process with this pid exists on this host (a zombie counts as alive)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _try_flock(fd):
    """True: locked; False: held by another process; None: locking unsupported here."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _read_record(fd):
    try:
        data = os.pread(fd, 65536, 0) if hasattr(os, "pread") else b""
        record = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {"unreadable": True}
    return record if isinstance(record, dict) else {"unreadable": True}


def describe_holder(record):
    """``pid 123 on host, started 2024-..., command 'bench run'`` from a lock record."""
    if not record:
        return "a process that is starting up"
    if record.get("unreadable"):
        return "a process whose lock record is unreadable"
    text = f"pid {record.get('pid')} on {record.get('host')}, started {record.get('started')}"
    return text + (f", command {record['command']!r}" if record.get("command") else "")


class FolderLock:
    """Exclusive use of ``folder`` by this process: ``with FolderLock(out, command="bench run ..."): ...``.

    A second process is refused with :class:`LockError` naming the holder; a stale lock (its holder died)
    is taken over, its record kept in :attr:`stale` (``None`` when the folder was free).
    """

    def __init__(self, folder, *, command=None):
        self.folder = Path(folder).absolute()
        self.path = self.folder / LOCK_NAME
        self.command = command if command is not None else " ".join(sys.argv)
        self.stale = None
        self._fd = None

    def _record(self):
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                "command": self.command}

    def _refuse(self, record):
        how = ""
        if record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int) \
                and not pid_alive(record["pid"]):
            how = f" (pid {record['pid']} has exited, but a process it started still holds the lock)"
        raise LockError(f"{self.folder} is in use by another maskbench process: {describe_holder(record)}{how}; "
                        "wait for it to finish or use another folder", record)

    def _open(self):
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise WriteError(self.path, err.strerror or str(err), err.errno) from None

    def _unlocked_holder(self, record):
        """Without flock: whether the recorded holder still counts (alive here, or on another host)."""
        if not record or record.get("unreadable"):
            return False
        if record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
            return False
        return record.get("host") != socket.gethostname() or pid_alive(record.get("pid"))

    def acquire(self):
        """Take the folder or raise :class:`LockError`; returns self."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this FolderLock")
        for _ in range(100):  # a holder releasing in between makes us start over; it cannot go on for long
            fd = self._open()
            try:
                locked = _try_flock(fd)
                previous = _read_record(fd)
                if locked is False:
                    self._refuse(previous)
                if locked is None and self._unlocked_holder(previous):
                    self._refuse(previous)
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(self.path))
                except FileNotFoundError:
                    same = False
                if not same:  # the holder released (removed the file) between our open and our lock
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, (json.dumps(self._record()) + "\n").encode())
                os.fsync(fd)
            except OSError as err:
                os.close(fd)
                raise WriteError(self.path, err.strerror or str(err), err.errno) from None
            except BaseException:
                os.close(fd)
                raise
            self.stale = previous or None
            self._fd = fd
            return self
        raise LockError(f"{self.folder}: the lock file keeps changing; another process is taking and releasing it")

    def release(self):
        """Give the folder back (removes the lock file); a no-op when not held."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
