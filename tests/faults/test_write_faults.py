"""Unwritable and full output places, through every command that writes: one line naming the path and the
operating system's reason, exit code 1, no temporary file left, and, for the commands that work long, the
refusal comes before the work (no model loaded, no frame evaluated, no world generated)."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import maskbench.cli.evaluate as cli_evaluate
from maskbench.cli import main

WEIGHTS = Path(__file__).resolve().parents[2] / "maskbench" / "weights" / "m2f_tiny_world.pth"
RO = "Read-only file system"
FULL = "No space left on device"


@pytest.fixture(scope="module")
def finished(ra21, tmp_path_factory):
    """A finished `bench run` results folder (with maps for overlays)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    result = CliRunner().invoke(main, ["run", "--dataset", "smiyc-ra21", "--root", str(ra21), "--checkpoint",
                                       str(WEIGHTS), "--out", str(out), "--workers", "1", "--scorer", "msp,rba"])
    assert result.exit_code == 0, result.output
    return out


def _maps(folder, n=3):
    """``n`` score maps (.npy) and labels (.png) for `bench evaluate --gt`."""
    rng = np.random.default_rng(0)
    (folder / "pred").mkdir(parents=True)
    (folder / "gt").mkdir()
    for i in range(n):
        gt = np.zeros((32, 48), np.uint8)
        gt[8:20, 10:30] = 1
        Image.fromarray(gt).save(folder / "gt" / f"f{i}.png")
        np.save(folder / "pred" / f"f{i}.npy", (gt + rng.random(gt.shape)).astype(np.float32))


def test_run_into_a_read_only_folder_fails_before_loading(fx, ra21, tmpfs):
    tmpfs.read_only()
    base = ["run", "--dataset", "smiyc-ra21", "--root", ra21, "--checkpoint", fx.weights]
    code, _, err = fx.bench(*base, "--out", tmpfs.path / "out")
    assert code == 1 and "loading the model" not in err
    assert fx.one_error_line(err) == f"{tmpfs.path / 'out'}: cannot write: cannot create the folder: {RO}"
    code, _, err = fx.bench(*base, "--out", tmpfs.path.parent / "out", "--cache", tmpfs.path / "cache")
    assert code == 1 and "loading the model" not in err
    assert fx.one_error_line(err).startswith(f"{tmpfs.path / 'cache'}/")
    assert fx.one_error_line(err).endswith(f": cannot write: cannot create the folder: {RO}")
    assert not (tmpfs.path.parent / "out").exists()  # the folder it created for nothing is gone again


def test_run_that_fills_the_disk_stops_cleanly_and_resumes(fx, ra21, tmpfs):
    out = tmpfs.path / "out"
    tmpfs.fill(leave=60_000)
    args = ["run", "--dataset", "smiyc-ra21", "--root", ra21, "--checkpoint", fx.weights, "--out", out,
            "--workers", "1", "--scorer", "msp,rba,eam"]
    code, _, err = fx.bench(*args)
    assert code == 1
    line = fx.one_error_line(err)
    assert line.startswith(f"{out}/") and line.endswith(f": cannot write: {FULL}")
    assert fx.temporaries(out) == [] and not (out / ".maskbench.lock").exists()
    (tmpfs.path / ".filler").unlink()
    code, _, err = fx.bench(*args)
    assert code == 0 and "resuming the run in" in err


def test_injected_failure_of_the_last_write(fx, ra21, tmp_path, monkeypatch):
    out = tmp_path / "out"
    replace = os.replace

    def failing(src, dst, *args, **kwargs):
        if str(dst).endswith("results.json"):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        return replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    args = ["run", "--dataset", "smiyc-ra21", "--root", ra21, "--checkpoint", fx.weights, "--out", out,
            "--workers", "1", "--scorer", "msp"]
    code, _, err = fx.bench(*args)
    assert code == 1 and fx.one_error_line(err) == f"{out / 'results.json'}: cannot write: {os.strerror(errno.EIO)}"
    assert fx.temporaries(out) == [] and not (out / ".maskbench.lock").exists()
    monkeypatch.undo()
    code, _, err = fx.bench(*args)
    assert code == 0 and "resuming the run in" in err and "4 of 4 frames already done" in err


def test_evaluate_and_pq_check_their_json_before_the_work(fx, tmp_path, tmpfs, monkeypatch):
    _maps(tmp_path)
    evaluate = ["evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol", "smiyc-anomaly",
                "--workers", "1"]
    tmpfs.fill(leave=0)
    code, out, err = fx.bench(*evaluate, "--json", tmpfs.path / "sub" / "m.json")
    assert code == 1 and out == "" and fx.one_error_line(err) == f"{tmpfs.path / 'sub'}: cannot write: {FULL}"
    (tmpfs.path / ".filler").unlink()
    evaluate_dirs = cli_evaluate.evaluate_dirs

    def filling(*args, **kwargs):  # the disk fills up while the maps are evaluated: the metrics are still shown
        result = evaluate_dirs(*args, **kwargs)
        tmpfs.fill(leave=0)
        return result

    monkeypatch.setattr(cli_evaluate, "evaluate_dirs", filling)
    code, out, err = fx.bench(*evaluate, "--json", tmpfs.path / "m.json")
    assert code == 1 and "AP" in out
    assert fx.one_error_line(err) == f"{tmpfs.path / 'm.json'}: cannot write: {FULL}"
    assert fx.temporaries(tmpfs.path) == []
    code, out, err = fx.bench(*evaluate, "--json", tmp_path)
    assert code == 2 and out == "" and fx.one_error_line(err) == (f"Invalid value for '--json': File '{tmp_path}' is a "
                                                                  "directory.")
    (tmp_path / "x.json").write_text("{}")
    tmpfs.read_only()
    code, out, err = fx.bench("pq", "--gt-json", tmp_path / "x.json", "--gt-dir", tmp_path, "--pred-json",
                              tmp_path / "x.json", "--pred-dir", tmp_path, "--json", tmpfs.path / "pq" / "pq.json")
    assert code == 1 and fx.one_error_line(err) == f"{tmpfs.path / 'pq'}: cannot write: cannot create the folder: {RO}"


def test_table_plot_and_golden_on_full_and_read_only_folders(fx, finished, tmpfs):
    tmpfs.fill(leave=20_000)  # room for the table, not for the figures
    code, out, err = fx.bench("table", "--results", finished, "--out", tmpfs.path / "t.txt")
    assert code == 0 and out.strip() == f"wrote {tmpfs.path / 't.txt'}"
    code, out, err = fx.bench("plot", "--results", finished, "--out", tmpfs.path / "plots")
    assert code == 1 and fx.one_error_line(err).endswith(f": cannot write: {FULL}")
    assert fx.temporaries(tmpfs.path) == []
    tmpfs.read_only()
    for args, path in ((("table", "--results", finished, "--out", tmpfs.path / "t2.txt"), tmpfs.path),
                       (("plot", "--results", finished, "--out", tmpfs.path / "p2"), tmpfs.path / "p2"),
                       (("check", "--golden", tmpfs.path / "g.json", finished, "--update"), tmpfs.path / "g.json")):
        code, out, err = fx.bench(*args)
        assert code == 1 and fx.one_error_line(err).startswith(f"{path}: cannot write: "), err
        assert RO in fx.one_error_line(err)


def test_world_and_replica_on_full_and_read_only_caches(fx, tmpfs):
    tmpfs.fill(leave=40_000)
    code, _, err = fx.bench("world", "--cache", tmpfs.path, "--split", "anomaly", "--frames", "3")
    line = fx.one_error_line(err)
    assert code == 1 and line.startswith(f"{tmpfs.path}/world-v4-")
    assert line.endswith(f": cannot write: {FULL} (the miniature world's cache; $MASKBENCH_CACHE puts it elsewhere)")
    assert not list(tmpfs.path.rglob(".tmp-*")) and fx.temporaries(tmpfs.path) == []
    code, _, err = fx.bench("datasets", "replica", "smiyc-ro21", "--out", tmpfs.path / "rep", "--frames", "30")
    line = fx.one_error_line(err)
    assert code == 1 and line.startswith(f"{tmpfs.path / 'rep'}/") and line.endswith(f": cannot write: {FULL}")
    assert fx.temporaries(tmpfs.path) == []
    tmpfs.read_only()
    code, _, err = fx.bench("datasets", "replica", "smiyc-ro21", "--out", tmpfs.path / "rep2")
    assert code == 1
    assert fx.one_error_line(err) == f"{tmpfs.path / 'rep2'}: cannot write: cannot create the folder: {RO}"
    code, _, err = fx.bench("world", "--cache", tmpfs.path / "c", "--split", "anomaly", "--frames", "1")
    assert code == 1 and fx.one_error_line(err).startswith(f"{tmpfs.path / 'c'}/world-v4-")
    assert RO in fx.one_error_line(err)


def test_calibrate_and_train_refuse_an_unwritable_out_before_working(fx, ra21, tmpfs):
    tmpfs.read_only()
    code, out, err = fx.bench("calibrate", "maskomaly", "--checkpoint", fx.weights, "--dataset", "smiyc-ra21",
                              "--root", ra21, "--out", tmpfs.path / "cal")
    assert code == 1 and "forward" not in err
    assert fx.one_error_line(err) == f"{tmpfs.path / 'cal'}: cannot write: cannot create the folder: {RO}"
    code, out, err = fx.bench("train", "--out", tmpfs.path / "train", "--iterations", "1")
    assert code == 1 and "world" not in out + err.replace(str(tmpfs.path), "")
    assert fx.one_error_line(err) == f"{tmpfs.path / 'train'}: cannot write: cannot create the folder: {RO}"


def test_results_written_by_a_run_are_whole_json(finished):
    for name in ("run.json", "results.json"):
        json.loads((finished / name).read_text())
    assert not list(finished.rglob(".*.tmp"))
