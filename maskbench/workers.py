"""Worker processes that never outlive the main process, and the chunked map-and-merge built on them.

Each worker serves one duplex pipe: it receives ``(index, item)``, answers ``(index, ok, payload)``, and
stops at ``None``. The parent waits on the pipes *and* the workers' sentinels, so a worker that dies
without answering (out of memory, a crash in native code) is a :class:`WorkerError` at once, never a hang.

Lifetime rules:

* workers never see Ctrl-C: SIGINT is blocked while they start (the mask is inherited) and ignored in
  them; the parent alone gets ``KeyboardInterrupt``, and leaving :class:`WorkerPool` by any exception
  terminates every worker (SIGTERM, then SIGKILL after a grace period) before the exception goes on;
* a worker exits when its parent is gone: Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (``man 2 prctl``),
  and everywhere a watchdog thread that polls ``os.getppid()`` (a re-parented worker sees it change).
"""

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import wait

from maskbench.errors import WorkerError

#: Seconds between two checks of the watchdog thread in each worker.
WATCHDOG_INTERVAL = 0.5
#: Seconds a terminated worker gets before SIGKILL.
TERMINATE_GRACE = 2.0
_PR_SET_PDEATHSIG = 1


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker (the ``__cause__`` of the re-raised one)."""

    def __str__(self):
        return self.args[0]


def _die_with_parent(parent_pid):
    """Exit when the parent goes away (PDEATHSIG on Linux, and a watchdog thread everywhere)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no libc prctl (e.g. a static or non-glibc build): the watchdog below still works
    ppid = os.getppid()
    if parent_pid is not None and ppid != parent_pid:
        os._exit(1)  # the parent died before the death signal was armed

    def watchdog():
        while True:
            time.sleep(WATCHDOG_INTERVAL)
            if os.getppid() != ppid:
                os._exit(1)

    threading.Thread(target=watchdog, name="maskbench-parent-watchdog", daemon=True).start()


def _portable_error(err):
    """The exception itself if it survives pickling, else a RuntimeError with its text."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001 - any exception that cannot travel is replaced
        return RuntimeError(f"{type(err).__name__}: {err}")


def _serve(conn, parent_pid, func, args):
    """Worker main loop: answer ``func(item, *args)`` for each ``(index, item)`` until ``None`` or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, item = task
        try:
            answer = (index, True, func(item, *args))
            conn.send(answer)
        except Exception as err:  # noqa: BLE001 - every failure goes back to the parent, which re-raises it
            conn.send((index, False, (_portable_error(err), traceback.format_exc())))


def _exit_text(code):
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        killed = -code == getattr(signal, "SIGKILL", 9)
        oom = " (out of memory? the kernel's OOM killer sends SIGKILL)" if killed else ""
        return f"was killed by {name}{oom}"
    return f"exited with code {code}"


class WorkerPool:
    """``n`` worker processes computing ``func(item, *args)``; use as a context manager.

    ``context``: a multiprocessing start method (default ``fork`` where available, else ``spawn``; with
    ``spawn``/``forkserver`` ``func`` and ``args`` must be picklable).
    """

    def __init__(self, n, func, args=(), *, context=None):
        if context is None:
            context = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        ctx = multiprocessing.get_context(context)
        parent = os.getpid() if context != "forkserver" else None  # forkserver workers are its children
        self._workers = []
        blocked = hasattr(signal, "pthread_sigmask")
        try:
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if blocked else None
            try:
                for i in range(n):
                    mine, theirs = ctx.Pipe()
                    proc = ctx.Process(target=_serve, args=(theirs, parent, func, tuple(args)), daemon=True,
                                       name=f"maskbench-worker-{i}")
                    proc.start()
                    theirs.close()
                    self._workers.append((proc, mine))
            finally:
                if blocked:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        except BaseException:  # a Ctrl-C held back while starting arrives here: stop what started
            self.terminate()
            raise

    @property
    def pids(self):
        return [proc.pid for proc, _ in self._workers]

    def imap_unordered(self, items):
        """Yield ``(index, func(items[index], *args))`` as results arrive. A worker's exception is re-raised here
        (with its traceback as ``__cause__``), a worker that dies is a :class:`WorkerError`; after a failure no new
        item starts, the items under way finish, and the failure of the lowest index is raised: the same one
        whatever the timing, and the one a serial loop over the items would meet first."""
        todo = iter(enumerate(items))
        busy = {}  # conn -> (proc, index)
        failures = {}  # index -> exception
        for proc, conn in self._workers:
            if not self._give(proc, conn, todo, busy):
                break
        while busy:
            conns = list(busy)
            ready = wait(conns + [busy[c][0].sentinel for c in conns])
            for conn in [c for c in conns if c in ready] or [c for c in conns if busy[c][0].sentinel in ready]:
                proc, index = busy.pop(conn)
                try:
                    got, ok, payload = conn.recv()
                except (EOFError, OSError):
                    proc.join(TERMINATE_GRACE)
                    failures[index] = WorkerError(f"worker process {proc.pid} {_exit_text(proc.exitcode)} while "
                                                  f"computing item {index}")
                    continue
                if not ok:
                    err, text = payload
                    err.__cause__ = RemoteTraceback(f"\n(in worker process {proc.pid})\n{text}")
                    failures[index] = err
                    continue
                if not failures:
                    self._give(proc, conn, todo, busy)
                    yield got, payload
        if failures:
            raise failures[min(failures)]

    @staticmethod
    def _give(proc, conn, todo, busy):
        task = next(todo, None)
        if task is None:
            return False
        try:
            conn.send(task)
        except OSError:
            proc.join(TERMINATE_GRACE)
            raise WorkerError(f"worker process {proc.pid} {_exit_text(proc.exitcode)} before item {task[0]}") from None
        busy[conn] = (proc, task[0])
        return True

    def close(self):
        """Stop the workers after their current item (normal end)."""
        for proc, conn in self._workers:
            try:
                conn.send(None)
            except OSError:
                pass
        self._reap()

    def terminate(self):
        """Stop every worker now: SIGTERM, and SIGKILL for any still alive after the grace period."""
        for proc, _ in self._workers:
            if proc.exitcode is None:
                proc.terminate()
        self._reap()

    def _reap(self):
        deadline = time.monotonic() + TERMINATE_GRACE
        for proc, conn in self._workers:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                proc.kill()
                proc.join()
            conn.close()
        self._workers = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.terminate()


def chunks_of(frames, workers):
    """Contiguous chunks: one frame each without workers, else about 8 chunks per worker."""
    size = 1 if workers <= 1 else max(1, len(frames) // (8 * workers))
    return [frames[i:i + size] for i in range(0, len(frames), size)]


def map_merge(func, frames, args, workers, progress, *, context=None):
    """Run ``func(chunk, *args)`` over contiguous chunks of ``frames`` and merge the accumulators in order.

    ``func`` returns an object with ``merge(other) -> merged``; the chunks merge in frame order whatever
    order they finish in, so with an exact merge the result does not depend on ``workers``.
    ``progress(n)`` is called as each chunk of ``n`` frames finishes. ``workers > 1`` runs the chunks in a
    :class:`WorkerPool`. Returns ``None`` for no frames.
    """
    chunks = chunks_of(frames, workers)
    if workers <= 1 or len(chunks) <= 1:
        merged = None
        for chunk in chunks:
            acc = func(chunk, *args)
            merged = acc if merged is None else merged.merge(acc)
            progress(len(chunk))
        return merged
    merged, waiting, next_index = None, {}, 0
    with WorkerPool(min(workers, len(chunks)), func, args, context=context) as pool:
        for index, acc in pool.imap_unordered(chunks):
            progress(len(chunks[index]))
            waiting[index] = acc
            while next_index in waiting:
                acc = waiting.pop(next_index)
                merged = acc if merged is None else merged.merge(acc)
                next_index += 1
    return merged
