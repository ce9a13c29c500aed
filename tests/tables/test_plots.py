"""Figures from a hand-written results directory: files exist, are valid, and are byte-stable."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from maskbench.benchmark.plots import plot_results
from maskbench.errors import InputError


@pytest.fixture
def plotted_dir(results_dir, entry):
    rng = np.random.default_rng(7)
    curves = {}
    for name, k in (("msp", 1.5), ("rba", 4.0)):
        recall = np.linspace(1, 0, 50)
        fpr = np.linspace(0, 1, 50)
        curves.update({f"{name}/pr_precision": 1 - recall ** k, f"{name}/pr_recall": recall,
                       f"{name}/roc_fpr": fpr, f"{name}/roc_tpr": fpr ** (1 / k)})
    h, w = 24, 48
    ood = np.zeros((h, w), np.uint8)
    ood[8:16, 20:30] = 1
    ood[:2] = 255
    maps = {"frame_a": {"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "ood": ood,
                        "msp": rng.random((h, w)).astype(np.float16), "rba": (ood == 1).astype(np.float16)}}
    return results_dir("run", "smiyc-ra21", [
        entry("msp", "smiyc-ra21", "smiyc-anomaly", AP=0.28, AUROC=0.8, FPR95=0.72),
        entry("rba", "smiyc-ra21", "smiyc-anomaly", AP=0.9, AUROC=0.98, FPR95=0.1),
    ], curves=curves, maps=maps)


def test_plots_written_and_deterministic(plotted_dir, tmp_path):
    first = plot_results(plotted_dir, tmp_path / "p1")
    second = plot_results(plotted_dir, tmp_path / "p2", frames=["frame_a"])
    names = sorted(p.name for p in first)
    assert names == ["curves_smiyc-ra21.pdf", "curves_smiyc-ra21.png", "overlay_frame_a.pdf", "overlay_frame_a.png"]
    assert sorted(p.name for p in second) == names
    for a in first:
        data = a.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n" if a.suffix == ".png" else b"%PDF-")
        assert len(data) > 1000
        assert data == (tmp_path / "p2" / a.name).read_bytes(), a.name
        assert b"CreationDate" not in data
    with Image.open(tmp_path / "p1" / "curves_smiyc-ra21.png") as img:  # fixed size and DPI
        assert img.size == (1100, 450)


def test_unknown_frame_and_missing_curves(plotted_dir, tmp_path):
    with pytest.raises(InputError, match="^frames: no maps/<id>.npz .* for nope; available: frame_a"):
        plot_results(plotted_dir, tmp_path, frames=["nope"])
    (plotted_dir / "curves.npz").unlink()
    with pytest.raises(InputError, match="curves.npz: not found"):
        plot_results(plotted_dir, tmp_path)


def test_partial_curve_is_an_error(plotted_dir, tmp_path):
    with np.load(plotted_dir / "curves.npz") as npz:
        arrays = {k: npz[k] for k in npz.files if k != "rba/roc_tpr"}
    np.savez(plotted_dir / "curves.npz", **arrays)
    with pytest.raises(InputError, match="'rba' lacks rba/roc_tpr"):
        plot_results(plotted_dir, tmp_path)


def test_cli_plot(plotted_dir, tmp_path):
    from maskbench.cli import main

    res = CliRunner().invoke(main, ["plot", "--results", str(plotted_dir), "--out", str(tmp_path / "o"),
                                    "--frames", "frame_a"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "overlay_frame_a.png").stat().st_size > 0
    res = CliRunner().invoke(main, ["plot", "--results", str(plotted_dir), "--frames", "zzz"])
    assert res.exit_code == 1 and "available: frame_a" in res.output
