"""Interrupted and concurrent runs of a real `bench run` process: Ctrl-C (SIGINT to the process group, as a terminal
sends it) in the forward loop, in the metric passes and in the embedded run's plots ends within seconds with one
line saying how to resume, no process and no temporary file left; SIGKILL of the main process takes its metric
workers with it and leaves a stale lock that the next run takes over (and says so); a second run into a folder
in use is refused at once. Every resumed run gives the results of an uninterrupted one."""

import json
import os
import re
import signal
import socket

import pytest

import maskbench.benchmark.embedded as embedded
from tests.faults.small_world import SMALL_WORLD  # the hooked subprocess's world too

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process checks read /proc (Linux)")


def run_args(fx, ra21, out, cache):
    return ["run", "--dataset", "smiyc-ra21", "--root", ra21, "--checkpoint", fx.weights, "--out", out, "--cache",
            cache, "--workers", "2"]


@pytest.fixture
def reference(fx, ra21, tmp_path, one_thread):
    """The results entries of the same run, uninterrupted."""
    code, _, err = fx.bench(*run_args(fx, ra21, tmp_path / "clean", tmp_path / "clean-cache"))
    assert code == 0, err
    return json.loads((tmp_path / "clean" / "results.json").read_text())["results"]


def entries(out):
    return json.loads((out / "results.json").read_text())["results"]


def interrupt(fx, proc):
    """Ctrl-C to the whole process group; returns (exit code, stderr), checking it ended within 15 s (about one
    on an idle machine; the margin is for a loaded CI machine)."""
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=15)
    return proc.returncode, err


@pytest.mark.parametrize("stage", ["forward", "metrics"])
def test_ctrl_c_ends_in_one_line_leaves_nothing_and_resumes(fx, ra21, tmp_path, reference, stage):
    out, cache, marker = tmp_path / "out", tmp_path / "cache", tmp_path / "marker"
    proc = fx.start(run_args(fx, ra21, out, cache), stage=stage, marker=marker)
    paused = int(fx.wait_for(marker, proc))
    if stage == "metrics":
        assert paused != proc.pid  # the pause is in a worker process
        # a second run into the same folder, and one into another folder but the same cache, are refused at once
        code, _, err = fx.bench(*run_args(fx, ra21, out, tmp_path / "other-cache"))
        assert code == 1 and "loading the model" not in err
        assert re.fullmatch(rf"{re.escape(str(out))} is in use by another maskbench process: pid {proc.pid} on "
                            rf"{re.escape(socket.gethostname())}, started \S+Z, command '.*run --dataset smiyc-ra21 "
                            r".*'; "
                            "wait for it to finish or use another folder", fx.one_error_line(err))
        code, _, err = fx.bench(*run_args(fx, ra21, tmp_path / "other-out", cache))
        assert code == 1 and "is in use by another maskbench process" in fx.one_error_line(err)
        assert str(cache) in fx.one_error_line(err)
    code, err = interrupt(fx, proc)
    assert code == 130
    assert fx.one_error_line(err) == (f"interrupted; re-run the same command to resume (the finished frames are kept "
                                      f"in {out})")
    assert fx.gone_within(lambda: not fx.group_members(proc.pid), 5), fx.group_members(proc.pid)
    assert fx.temporaries(out) == [] and fx.temporaries(cache) == []
    assert not list(out.rglob(".maskbench.lock")) and not list(cache.rglob(".maskbench.lock"))

    code, _, err = fx.bench(*run_args(fx, ra21, out, cache))
    assert code == 0, err
    done = 1 if stage == "forward" else 4
    assert f"resuming the run in {out}: {done} of 4 frames already done" in err
    assert entries(out) == reference
    code, _, err = fx.bench(*run_args(fx, ra21, out, cache))
    assert code == 0 and f"{out} already holds the finished results of this run: nothing to do" in err


def test_sigkill_takes_the_workers_along_and_the_next_run_takes_over(fx, ra21, tmp_path, reference):
    out, cache, marker = tmp_path / "out", tmp_path / "cache", tmp_path / "marker"
    proc = fx.start(run_args(fx, ra21, out, cache), stage="metrics", marker=marker)
    worker = int(fx.wait_for(marker, proc))
    assert fx.live(worker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert fx.gone_within(lambda: not fx.live(worker), 5), "a metric worker outlived its killed parent"
    assert fx.gone_within(lambda: not fx.group_members(proc.pid), 5)
    assert (out / ".maskbench.lock").exists()  # left by the killed run: stale
    (out / f".results.json.{proc.pid}.0badcafe.tmp").write_text("half")  # as a kill during a write leaves it

    code, _, err = fx.bench(*run_args(fx, ra21, out, cache))
    assert code == 0, err
    assert re.search(rf"{re.escape(str(out))}: took over the lock of pid {proc.pid} on \S+, started \S+, command "
                     r"'.*', which is no longer running", err)
    assert f"{out}: removed 1 temporary file(s) of an interrupted write" in err
    assert "resuming the run in" in err and entries(out) == reference
    assert fx.temporaries(out) == [] and not (out / ".maskbench.lock").exists()


def test_ctrl_c_during_the_embedded_plots(fx, tmp_path, monkeypatch, one_thread):
    out, marker, cache = tmp_path / "results", tmp_path / "marker", tmp_path / "world-cache"
    proc = fx.start(["run", "--out", out, "--workers", "1", "--limit", "1"], stage="plots", marker=marker,
                    env={"SMALL_WORLD": "1", "MASKBENCH_CACHE": str(cache)})
    fx.wait_for(marker, proc)
    code, err = interrupt(fx, proc)
    assert code == 130 and fx.one_error_line(err).startswith("interrupted; re-run the same command to resume")
    # what a newcomer saw before: the world generated, each track and its stages, the model
    for line in ("world: the miniature world's val, anomaly and obstacle splits (generated once, then cached)",
                 "world: generating the anomaly split (3 frames) into ", "track anomaly: smiyc-ra21 layout at ",
                 "track obstacle: smiyc-ro21 layout at ", f"loading the model {fx.weights}",
                 "smiyc-ra21: 1 of the 3 frames (partial) of the miniature world's anomaly track (the official count "
                 "10 does not apply)",
                 "closed set: the semantic task on the world's val split (cityscapes layout)",
                 "plots: curves and overlays of anomaly, obstacle"):
        assert line in err, line
    assert fx.gone_within(lambda: not fx.group_members(proc.pid), 5)
    assert fx.temporaries(out) == [] and not list(out.rglob(".maskbench.lock"))
    assert not list(cache.rglob(".tmp-*"))

    monkeypatch.setenv("MASKBENCH_CACHE", str(cache))
    monkeypatch.setattr(embedded, "WorldConfig", lambda: SMALL_WORLD)
    code, stdout, err = fx.bench("run", "--out", out, "--workers", "1", "--limit", "1")
    assert code == 0, err
    assert "generating" not in err and f"{out / 'anomaly'} already holds the finished results" in err
    assert f"leaderboard: {out / 'leaderboard.txt'} (also .tex, .md, .csv)" in err
    assert f"plots: {out / 'plots'}" in err and "mask2anomaly" in stdout
    assert (out / "plots" / "anomaly").is_dir() and (out / "leaderboard.md").is_file()
    # the folder the run names is what `bench table --results` takes
    code, table, err = fx.bench("table", "--results", out)
    assert code == 0 and "smiyc-ra21" in table and "smiyc-ro21" in table
