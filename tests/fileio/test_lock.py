"""FolderLock with real processes: a second holder is refused with the first one's pid, host and start time; a
lock left by a SIGKILLed process is taken over; of processes racing for a folder exactly one wins."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import maskbench.fileio.lock as lock_module
from maskbench.errors import LockError, WriteError
from maskbench.fileio import FolderLock

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import os, sys, time
    from maskbench.fileio import FolderLock
    lock = FolderLock(sys.argv[1], command="holder test").acquire()
    if sys.argv[2] == "fork":  # a child process inherits the lock, as fork-started workers do
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
    print("locked", flush=True)
    time.sleep(60)
""")


def _holder(folder, mode="plain"):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), mode], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_second_process_is_refused_naming_the_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(LockError) as err:
            FolderLock(tmp_path).acquire()
        record = json.loads((tmp_path / ".maskbench.lock").read_text())
        assert record["pid"] == proc.pid and record["host"] == socket.gethostname()
        assert str(err.value) == (f"{tmp_path} is in use by another maskbench process: pid {proc.pid} on "
                                  f"{socket.gethostname()}, started {record['started']}, command 'holder test'; wait "
                                  "for it to finish or use another folder")
        assert err.value.holder == record
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_a_killed_process_is_taken_over(tmp_path):
    proc = _holder(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / ".maskbench.lock").exists()  # left behind: SIGKILL runs no clean-up
    with FolderLock(tmp_path, command="second") as lock:
        assert lock.stale["pid"] == proc.pid and lock.stale["command"] == "holder test"
        assert json.loads((tmp_path / ".maskbench.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".maskbench.lock").exists()
    with FolderLock(tmp_path) as lock:  # released cleanly: nothing stale
        assert lock.stale is None


def test_lock_inherited_by_a_child_of_a_killed_process(tmp_path):
    proc = _holder(tmp_path, "fork")
    child = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        with pytest.raises(LockError, match=rf"pid {proc.pid} on .* \(pid {proc.pid} has exited, but a process it "
                                            r"started still holds the lock\)"):
            FolderLock(tmp_path).acquire()
    finally:
        for pid in child:
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while True:  # once the child is gone the lock is free
        try:
            FolderLock(tmp_path).acquire().release()
            break
        except LockError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


RACER = textwrap.dedent("""
    import os, sys, time
    from maskbench.errors import LockError
    from maskbench.fileio import FolderLock
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.001)
    try:
        with FolderLock(sys.argv[1]):
            print("won", flush=True)
            time.sleep(1.0)
    except LockError:
        print("refused", flush=True)
""")


def test_racing_processes_exactly_one_wins(tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path / "out"), str(go)], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}) for _ in range(4)]
    time.sleep(1.0)
    go.touch()
    outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
    assert outcomes == ["refused", "refused", "refused", "won"]


def test_same_process_twice_and_release(tmp_path):
    first = FolderLock(tmp_path / "new" / "out").acquire()
    assert first.held and (tmp_path / "new" / "out" / ".maskbench.lock").exists()
    with pytest.raises(LockError, match=rf"pid {os.getpid()} on"):
        FolderLock(tmp_path / "new" / "out").acquire()
    first.release()
    first.release()  # a no-op
    assert not first.held and list((tmp_path / "new" / "out").iterdir()) == []


def test_unwritable_folder_is_a_write_error(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(os, "open", fail)
    with pytest.raises(WriteError) as err:
        FolderLock(tmp_path).acquire()
    assert str(err.value) == f"{tmp_path / '.maskbench.lock'}: cannot write: Read-only file system"


def _write_record(folder, **record):
    (folder / ".maskbench.lock").write_text(json.dumps(
        {"pid": 1, "host": socket.gethostname(), "started": "2024-01-01T00:00:00Z", "command": "old", **record}))


def test_without_flock_the_record_decides(tmp_path, monkeypatch):
    """File systems that refuse flock (ENOLCK): a live holder here or any holder elsewhere keeps the folder."""
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(lock_module.fcntl, "flock", no_flock)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_record(tmp_path, pid=os.getppid())
    with pytest.raises(LockError, match=rf"pid {os.getppid()} on {socket.gethostname()}, started 2024-01-01T00:00:00Z"):
        FolderLock(tmp_path).acquire()
    _write_record(tmp_path, pid=dead.pid, host="other-host")
    with pytest.raises(LockError, match=rf"pid {dead.pid} on other-host"):
        FolderLock(tmp_path).acquire()
    _write_record(tmp_path, pid=dead.pid)
    with FolderLock(tmp_path) as lock:
        assert lock.stale["pid"] == dead.pid
