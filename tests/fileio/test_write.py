"""Atomic writes and writable folders: every failure is a WriteError naming the path and the OS reason, the
previous content survives, and no temporary file is left behind.

Faults come from a real full and a real read-only tmpfs where this machine lets us mount one, and always
from OSErrors injected at the lowest level the writer calls (``os.open``, ``os.fsync``, ``os.replace``);
we run as root, so permission bits would not stop a write.
"""

import errno
import json
import os
import subprocess

import numpy as np
import pytest

from maskbench.errors import WriteError
from maskbench.fileio import atomic_write, ensure_writable_dir, write_bytes, write_json, write_text


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_replaces_content_with_plain_permissions(tmp_path):
    target = tmp_path / "results.json"
    write_json(target, {"AP": 0.5})
    write_json(target, {"AP": 0.25})
    assert json.loads(target.read_text()) == {"AP": 0.25}
    with open(tmp_path / "plain", "w"):
        pass
    assert target.stat().st_mode == (tmp_path / "plain").stat().st_mode  # 0o666 less the umask, as open() gives
    with atomic_write(tmp_path / "maps.npz") as handle:
        np.savez(handle, a=np.arange(3))
    with np.load(tmp_path / "maps.npz") as z:
        assert np.array_equal(z["a"], np.arange(3))
    assert _leftovers(tmp_path) == []


def _fail(err_no):
    def fail(*args, **kwargs):
        raise OSError(err_no, os.strerror(err_no))
    return fail


@pytest.mark.parametrize("where,err_no", [
    ("fsync", errno.ENOSPC), ("fsync", errno.EIO), ("open", errno.EROFS), ("open", errno.EACCES),
    ("replace", errno.EACCES), ("replace", errno.EROFS),
])
def test_injected_failures_keep_the_old_file_and_leave_no_temporary(tmp_path, monkeypatch, where, err_no):
    target = tmp_path / "leaderboard.txt"
    target.write_text("old\n")
    monkeypatch.setattr(os, where, _fail(err_no))
    with pytest.raises(WriteError) as err:
        write_text(target, "new\n" * 1000)
    monkeypatch.undo()
    assert str(err.value) == f"{target}: cannot write: {os.strerror(err_no)}"
    assert err.value.errno == err_no and err.value.path == target
    assert target.read_text() == "old\n" and _leftovers(tmp_path) == []


def test_errors_of_the_writing_code_remove_the_temporary_and_pass_through(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json(tmp_path / "r.json", {"AP": float("nan")})
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "big.bin") as handle:
            handle.write(b"x" * 100)
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_ensure_writable_dir(tmp_path, monkeypatch):
    folder = ensure_writable_dir(tmp_path / "a" / "b")
    assert folder.is_dir() and folder.is_absolute() and list(folder.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match=r"file: cannot write: it is a file, not a folder"):
        ensure_writable_dir(tmp_path / "file")
    with pytest.raises(WriteError, match=r"file/sub: cannot write: cannot create the folder: Not a directory"):
        ensure_writable_dir(tmp_path / "file" / "sub")
    with pytest.raises(WriteError, match=r"cannot write: only [\d.]+ MiB free, about 1073741824\.0 MiB needed"):
        ensure_writable_dir(folder, min_free_bytes=1 << 50)
    monkeypatch.setattr(os, "open", _fail(errno.EROFS))
    with pytest.raises(WriteError) as err:
        ensure_writable_dir(folder)
    assert str(err.value) == f"{folder}: cannot write: Read-only file system"


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 64 KiB tmpfs (needs root / CAP_SYS_ADMIN); unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the injected-OSError tests cover these "
                    "failures")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=True)


def test_real_full_and_read_only_file_system(tiny_tmpfs):
    target = tiny_tmpfs / "map.bin"
    write_bytes(target, b"old")
    with pytest.raises(WriteError) as err:
        write_bytes(target, bytes(200_000))
    assert str(err.value) == f"{target}: cannot write: No space left on device"
    assert target.read_bytes() == b"old" and _leftovers(tiny_tmpfs) == []
    assert ensure_writable_dir(tiny_tmpfs) == tiny_tmpfs
    with pytest.raises(WriteError, match=r"only 0\.\d MiB free, about 1\.0 MiB needed"):
        ensure_writable_dir(tiny_tmpfs, min_free_bytes=1 << 20)
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    with pytest.raises(WriteError) as err:
        write_text(target, "new")
    assert str(err.value) == f"{target}: cannot write: Read-only file system"
    with pytest.raises(WriteError) as err:
        ensure_writable_dir(tiny_tmpfs / "results")
    assert str(err.value) == f"{tiny_tmpfs / 'results'}: cannot write: cannot create the folder: Read-only file system"
    assert target.read_bytes() == b"old"
