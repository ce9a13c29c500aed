"""Worker processes: results merge in order whatever order chunks finish in; errors keep their type; and no
worker outlives its parent -- checked on real processes after SIGINT (once and twice) and SIGKILL.

Orphans are looked up in /proc (a re-parented worker that exited may linger as a zombie: that counts as gone).
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from maskbench.errors import InputError, WorkerError
from maskbench.workers import RemoteTraceback, WorkerPool, chunks_of, map_merge

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process checks read /proc (Linux)")


class Concat:
    """An order-sensitive accumulator: merging in the wrong order gives a different list."""

    def __init__(self, items):
        self.items = list(items)

    def merge(self, other):
        return Concat(self.items + other.items)


def _slow_first(chunk, scale):
    if len(chunk) > 1:  # in workers (chunks of one frame run serially): early chunks finish last
        time.sleep(0.002 * (50 - chunk[0] % 50))
    return Concat(x * scale for x in chunk)


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_merge_order_and_progress_do_not_depend_on_workers(workers):
    frames = list(range(103))
    seen = []
    merged = map_merge(_slow_first, frames, (3,), workers, seen.append)
    assert merged.items == [3 * x for x in frames]  # the serial fold, by hand
    assert sum(seen) == len(frames) and len(seen) == len(chunks_of(frames, workers))
    assert map_merge(_slow_first, [], (3,), workers, seen.append) is None


def _fails_on_57(chunk):
    if 57 in chunk:
        raise InputError(f"/data/frame{chunk[0]}.npy: bad")
    return Concat(chunk)


def test_worker_errors_keep_their_type_and_traceback():
    with pytest.raises(InputError, match=r"/data/frame\d+\.npy: bad") as err:
        map_merge(_fails_on_57, list(range(100)), (), 3, lambda n: None)
    assert isinstance(err.value.__cause__, RemoteTraceback)
    assert "in worker process" in str(err.value.__cause__) and "_fails_on_57" in str(err.value.__cause__)


def _late_and_early_failures(item):
    """Item 1 fails after a while, item 2 (started later, on the other worker) fails at once."""
    if item == 1:
        time.sleep(1.0)
        raise InputError("item 1: bad")
    if item == 2:
        raise InputError("item 2: bad")
    return item


def test_the_failure_raised_is_the_lowest_item_whatever_finishes_first():
    """Worked by hand: 2 workers take items 0 and 1; item 0 ends at once, so item 2 starts and fails first in time,
    but a serial loop meets item 1 first: that is the error, every time."""
    for _ in range(3):
        with pytest.raises(InputError, match=r"^item 1: bad$"):
            with WorkerPool(2, _late_and_early_failures) as pool:
                list(pool.imap_unordered(range(6)))
    with pytest.raises(InputError, match=r"^item 1: bad$"):
        list(map(_late_and_early_failures, range(6)))  # the serial order agrees


def _dies_on_5(item):
    if item == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def test_a_worker_killed_mid_item_is_an_error_and_the_rest_stop():
    with pytest.raises(WorkerError, match=r"worker process \d+ was killed by SIGKILL \(out of memory\? the kernel's "
                                          r"OOM killer sends SIGKILL\) while computing item 5"):
        with WorkerPool(2, _dies_on_5) as pool:
            pids = pool.pids
            list(pool.imap_unordered(range(10)))
    assert all(_gone(pid) for pid in pids)


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def _gone(pid):
    return _state(pid) in (None, "Z", "X")


def _wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


SCRIPT = textwrap.dedent("""
    import os, sys, time
    import maskbench.workers as workers

    class Acc:
        def merge(self, other):
            return self

    def slow(chunk, marks):
        open(os.path.join(marks, str(os.getpid())), "w").close()
        time.sleep(120)
        return Acc()

    if __name__ == "__main__":
        if sys.argv[3] == "watchdog-only":
            workers._PR_SET_PDEATHSIG = -1  # an invalid prctl option: only the watchdog thread is left
        workers.map_merge(slow, list(range(40)), (sys.argv[1],), 2, lambda n: None, context=sys.argv[2])
""")


def _start(tmp_path, context="fork", mode="both"):
    marks = tmp_path / "marks"
    marks.mkdir()
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(marks), context, mode], stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while len(list(marks.iterdir())) < 2:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.05)
    return proc, [int(p.name) for p in marks.iterdir()]


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_stops_promptly_with_one_traceback_and_no_orphans(tmp_path, presses):
    proc, pids = _start(tmp_path)
    start = time.monotonic()
    try:
        for _ in range(presses):
            os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to the whole process group
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=30)  # orphans holding stderr open would time this out
        assert time.monotonic() - start < 10
        assert proc.returncode != 0 and stderr.rstrip().endswith("KeyboardInterrupt")
        assert "InvalidStateError" not in stderr and stderr.count("Traceback") == 1, stderr
        assert _wait_gone(pids, 5), [(_state(p), p) for p in pids]
    finally:
        _kill_leftovers([proc.pid, *pids])


def _kill_leftovers(pids):
    for pid in pids:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("context,mode", [("fork", "both"), ("fork", "watchdog-only"), ("spawn", "both")])
def test_workers_exit_when_the_parent_is_killed(tmp_path, context, mode):
    proc, pids = _start(tmp_path, context, mode)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    try:
        assert _wait_gone(pids, 5), [(_state(p), p) for p in pids]
    finally:
        _kill_leftovers(pids)
