"""The methods table from hand-written results of four checkpoints (recipes); expected rows written out by hand."""

import io
import json

import pandas as pd
import pytest

from maskbench.benchmark.methods_table import METHODS, build_methods_table, format_methods_table
from maskbench.errors import InputError


def with_recipe(path, recipe, sha):
    """Record ``recipe`` as run.checkpoint.recipe of the results directory ``path`` (as the embedded run does)."""
    data = json.loads((path / "results.json").read_text())
    data["run"]["checkpoint"].update(recipe=recipe, sha256=sha)
    (path / "results.json").write_text(json.dumps(data))
    return path


@pytest.fixture
def grid(results_dir, entry):
    """Every scorer on the inlier model (none); on each variant also scorers that are not its method's."""
    ra, ob = "smiyc-ra21", "smiyc-ro21"
    none = results_dir("none_ra", ra, [
        entry("msp", ra, "smiyc-anomaly", AP=0.50, FPR95=0.30),
        entry("rba", ra, "smiyc-anomaly", AP=0.40, FPR95=0.90),
        entry("eam", ra, "smiyc-anomaly", AP=0.45, FPR95=0.80),
        entry("aem", ra, "smiyc-anomaly", AP=0.44, FPR95=0.80),
        entry("maskomaly", ra, "smiyc-anomaly", AP=0.30, FPR95=1.00),
        entry("mask2anomaly", ra, "smiyc-anomaly", AP=0.99, FPR95=0.01),  # not a method's row: no OE training
    ], checkpoint="m2f_tiny_world.pth")
    none_ob = results_dir("none_ob", ob, [entry("msp", ob, "smiyc-obstacle", AP=0.35, FPR95=0.18)],
                          protocol="smiyc-obstacle", checkpoint="m2f_tiny_world.pth")
    rba = results_dir("rba_ra", ra, [
        entry("msp", ra, "smiyc-anomaly", AP=0.60, FPR95=0.40),  # MSP's row is the inlier model's
        entry("rba", ra, "smiyc-anomaly", AP=0.70, FPR95=0.66),
    ], checkpoint="m2f_tiny_world_rba-oe.pth")
    eam = results_dir("eam_ra", ra, [entry("eam", ra, "smiyc-anomaly", AP=0.72, FPR95=0.50)],
                      checkpoint="m2f_tiny_world_eam-neg.pth")
    m2a = results_dir("m2a_ra", ra, [entry("mask2anomaly", ra, "smiyc-anomaly", AP=0.74, FPR95=0.16)],
                      checkpoint="m2f_tiny_world_m2a-cl.pth")
    m2a_ob = results_dir("m2a_ob", ob, [entry("mask2anomaly", ob, "smiyc-obstacle", AP=0.54, FPR95=0.168)],
                         protocol="smiyc-obstacle", checkpoint="m2f_tiny_world_m2a-cl.pth")
    return [with_recipe(none, "none", "a" * 64), with_recipe(none_ob, "none", "a" * 64),
            with_recipe(rba, "rba-oe", "b" * 64), with_recipe(eam, "eam-neg", "c" * 64),
            with_recipe(m2a, "m2a-cl", "d" * 64), with_recipe(m2a_ob, "m2a-cl", "d" * 64)]


def test_markdown_rows_ood_column_and_marks(grid):
    lines = format_methods_table(grid, "markdown", metrics=["AP", "FPR95"]).splitlines()
    assert lines[:10] == [
        "| Method / recipe | OoD data | smiyc-ra21 AP ↑ | smiyc-ra21 FPR95 ↓ | smiyc-ro21 AP ↑ | smiyc-ro21 FPR95 ↓ |",
        "|:--|:--|--:|--:|--:|--:|",
        "| MSP / none | no | 50.0 | <u>30.0</u> | <u>35.0</u> | <u>18.0</u> |",
        "| RbA / none | no | 40.0 | 90.0 | - | - |",
        "| RbA / rba-oe | yes | 70.0 | 66.0 | - | - |",
        "| EAM / none | no | 45.0 | 80.0 | - | - |",
        "| EAM / eam-neg | yes | <u>72.0</u> | 50.0 | - | - |",
        "| AEM / none | no | 44.0 | 80.0 | - | - |",
        "| Maskomaly / none | no | 30.0 | 100.0 | - | - |",
        "| Mask2Anomaly / m2a-cl | yes | **74.0** | **16.0** | **54.0** | **16.8** |",
    ]
    text = "\n".join(lines)
    assert "m2f\\_tiny\\_world\\_rba-oe.pth (sha256 bbbbbbbbbbbb)" in text
    assert "OoD data: yes" in text


def test_latex_head_and_rows(grid):
    tex = format_methods_table(grid, "latex", metrics=["AP"]).splitlines()
    top = tex.index(r"\toprule")
    assert tex[top - 1] == r"\begin{tabular}{llcc}"
    assert tex[top + 1:top + 4] == [
        r" &  & \multicolumn{1}{c}{smiyc-ra21} & \multicolumn{1}{c}{smiyc-ro21} \\",
        r"\cmidrule(lr){3-3} \cmidrule(lr){4-4}",
        r"Method / recipe & OoD data & AP $\uparrow$ & AP $\uparrow$ \\",
    ]
    mid = tex.index(r"\midrule")
    assert tex[mid + 1] == r"MSP / none & no & 50.0 & \underline{35.0} \\"
    assert tex[mid + 8] == r"Mask2Anomaly / m2a-cl & yes & \textbf{74.0} & \textbf{54.0} \\"


def test_text_and_csv(grid):
    text = format_methods_table(grid, "text", metrics=["AP"]).splitlines()
    assert text[1].startswith("method / recipe        OoD data | ")
    assert text[5] == "RbA / rba-oe           yes      |      70.0  |         - "
    frame = pd.read_csv(io.StringIO(format_methods_table(grid, "csv", metrics=["AP"])), header=[0, 1, 2],
                        index_col=[0, 1])
    assert frame.index.names == ["method / recipe", "OoD data"]
    assert list(frame.index) == [(m.label, m.ood_data) for m in METHODS]
    assert frame.loc[("EAM / eam-neg", "yes")].iloc[0] == pytest.approx(0.72, rel=1e-15)
    assert frame.loc[("MSP / none", "no")].iloc[0] == pytest.approx(0.50, rel=1e-15)


def test_a_method_without_results_keeps_its_row(grid):
    board = build_methods_table([g for g in grid if "eam_ra" not in str(g)], metrics=["AP"])
    assert board.rows == [m.label for m in METHODS]
    assert board.value("EAM / eam-neg", 0, "AP") is None
    assert "EAM / eam-neg: no results of scorer eam on a checkpoint of recipe eam-neg." in board.notes


def test_refusals(grid, results_dir, entry):
    unrecorded = results_dir("x", "smiyc-ra21", [entry("msp", "smiyc-ra21", "smiyc-anomaly", AP=0.5)])
    with pytest.raises(InputError, match="run.checkpoint.recipe"):
        build_methods_table([unrecorded])
    twice = with_recipe(results_dir("y", "smiyc-ra21", [entry("msp", "smiyc-ra21", "smiyc-anomaly", AP=0.1)]),
                        "none", "e" * 64)
    with pytest.raises(InputError, match="MSP / none on smiyc-ra21 .* appears twice"):
        build_methods_table(grid + [twice])
    with pytest.raises(InputError, match="unknown table format"):
        format_methods_table(grid, "html")
