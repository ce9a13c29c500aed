"""`bench datasets` through click's CliRunner."""

import numpy as np
from click.testing import CliRunner
from PIL import Image

from maskbench.cli import main
from maskbench.datasets import DATASETS, load_dataset


def test_list():
    result = CliRunner().invoke(main, ["datasets"])
    assert result.exit_code == 0
    for name in DATASETS.names():
        assert f"\n{name}: " in "\n" + result.stdout
        assert f"$MASKBENCH_DATA/{name}" in result.stdout
    assert "labels_masks/<fid>_labels_semantic.png" in result.stdout


def test_replica_then_check(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["datasets", "replica", "streethazards", "--out", str(tmp_path), "--frames", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "streethazards"
    assert f"wrote a 2-frame replica of streethazards at {root}: 2 with labels, 0 without\n" == result.stdout
    assert load_dataset("streethazards", root).ids == ["t5_1", "t6_2"]
    result = runner.invoke(main, ["datasets", "check", "streethazards", "--root", str(root), "-o", "convention=hendrycks"])
    assert result.exit_code == 1 and "FAILED: frame count differs from the official one" in result.stdout
    result = runner.invoke(main, ["datasets", "check", "streethazards", "--root", str(root), "--partial",
                                  "-o", "convention=hendrycks"])
    assert result.exit_code == 0, result.output
    assert "frames found: 2 (official: 1500" in result.stdout and result.stdout.rstrip().endswith("OK")

    label = root / "test" / "annotations" / "test" / "t6" / "2.png"
    Image.fromarray(np.full((72, 128), 15, np.uint8)).save(label)
    result = runner.invoke(main, ["datasets", "check", "streethazards", "--root", str(root), "--partial"])
    assert result.exit_code == 1
    assert f"{label}: unexpected label value(s) [15] in 9216 pixel(s)" in result.stdout
    assert "expected layout:" in result.stdout
    assert runner.invoke(main, ["datasets", "check", "streethazards", "--root", str(root), "--quick", "--partial"]).exit_code == 0


def test_user_errors_exit_cleanly(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["datasets", "check", "nope", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "unknown dataset 'nope'; known datasets:" in result.stderr
    result = runner.invoke(main, ["datasets", "check", "cityscapes", "--root", str(tmp_path), "-o", "labels"])
    assert result.exit_code == 1 and "--option 'labels': expected KEY=VALUE" in result.stderr
    result = runner.invoke(main, ["datasets", "check", "cityscapes", "--root", str(tmp_path / "gone")])
    assert result.exit_code == 1 and "gone: dataset root (given root) is not a directory" in result.stdout
    result = runner.invoke(main, ["datasets", "replica", "nope", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no replica for dataset 'nope'" in result.stderr


def test_replica_counts_frames_with_and_without_labels(tmp_path):
    result = CliRunner().invoke(main, ["datasets", "replica", "smiyc-ro21", "--out", str(tmp_path), "--frames", "2"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "dataset_ObstacleTrack"
    every = load_dataset("smiyc-ro21", root, frames="all")
    unlabelled = len(every.info["unlabelled_ids"])
    assert unlabelled > 0 and every.info["labelled_count"] == 2
    assert result.stdout == (f"wrote a {2 + unlabelled}-frame replica of smiyc-ro21 at {root}: 2 with labels, "
                             f"{unlabelled} without (read them too with -o frames=all)\n")
    result = CliRunner().invoke(main, ["datasets", "replica", "bundle", "--out", str(tmp_path / "b"), "--frames", "2"])
    assert "; read it with -o convention=lost-and-found" in result.stdout
