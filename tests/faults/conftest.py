"""Fixtures of the fault-injection suite: small real file systems, real `bench` subprocesses, process checks.

Full and read-only file systems are real tmpfs mounts where this machine allows them (root / CAP_SYS_ADMIN);
elsewhere those tests are skipped with the reason, and the injected-OSError tests still cover the same paths.
Processes are checked in /proc: a process group that still has a live (non-zombie) member after a command
ended is a leak.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from maskbench.cli import main
from maskbench.datasets.replica import make

ROOT = Path(__file__).resolve().parents[2]
HOOK = Path(__file__).resolve().parent / "stage_hook.py"
TINY_WEIGHTS = ROOT / "maskbench" / "weights" / "m2f_tiny_world.pth"


class Mount:
    """A tmpfs of ``size`` at ``path``: ``fill(leave)`` leaves about ``leave`` bytes free; ``read_only()``."""

    def __init__(self, path):
        self.path = path

    def fill(self, leave=0):
        free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
        with open(self.path / ".filler", "wb") as handle:
            handle.write(bytes(max(0, free - leave)))

    def read_only(self):
        subprocess.run(["mount", "-o", "remount,ro", str(self.path)], check=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A real 2 MiB tmpfs (needs root / CAP_SYS_ADMIN); unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the injected-OSError tests cover these "
                    "failures")
    yield Mount(mnt)
    subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.fixture(scope="session")
def ra21(tmp_path_factory):
    """A 4-frame smiyc-ra21 replica (64x128)."""
    return make("smiyc-ra21", tmp_path_factory.mktemp("replica") / "ra21", frames=4, seed=3).root


def bench(*args):
    """``bench ARGS`` in this process: ``(exit code, stdout, stderr)``."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_error_line(stderr):
    """The single ``Error: ...`` line of a failed command, checking there is exactly one and no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip().splitlines()[-1] == errors[0], stderr  # it is the last thing said
    return errors[0][len("Error: "):]


def temporaries(folder):
    """Temporary files and folders of the atomic writers (and probes) left under ``folder``."""
    return sorted(str(p) for p in Path(folder).rglob(".*") if p.name.endswith(".tmp") or "probe" in p.name)


def subprocess_env(**extra):
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                OMP_NUM_THREADS="1", **extra)


def start(args, *, stage=None, marker=None, env=None):
    """A real ``bench ARGS`` process in its own process group (as a terminal runs it); with ``stage`` it pauses
    there (:mod:`stage_hook`), writing ``marker`` when it does."""
    command = [sys.executable, str(HOOK), *map(str, args)]
    extra = {"STAGE_HOOK": stage or "", "STAGE_MARKER": str(marker or "")}
    return subprocess.Popen(command, env=subprocess_env(**extra, **(env or {})), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for(marker, proc, timeout=120):
    """Wait until ``marker`` exists (the process reached its stage); returns its content."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(marker).is_file() and Path(marker).read_text().strip():
            return Path(marker).read_text().strip()
        if proc.poll() is not None:
            raise AssertionError(f"process ended before its stage (rc {proc.returncode}):\n{proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError(f"{marker} not written within {timeout} s")


def _stat(pid):
    """``(state, process group)`` of a live pid from /proc, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[2])


def live(pid):
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def group_members(pgid):
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == pgid and stat[0] != "Z":
                members.append(int(entry.name))
    return members


def gone_within(check, seconds):
    """Poll ``check()`` (True when done) for up to ``seconds``; returns whether it became True."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def fx():
    """The helpers above (conftest modules are not importable under --import-mode=importlib)."""
    from types import SimpleNamespace

    return SimpleNamespace(bench=bench, one_error_line=one_error_line, temporaries=temporaries, start=start,
                           wait_for=wait_for, live=live, group_members=group_members, gone_within=gone_within,
                           weights=TINY_WEIGHTS, subprocess_env=subprocess_env)
