"""Leaderboards from hand-written results directories; expected rows are written out by hand."""

import math

import pandas as pd
import pytest
from click.testing import CliRunner

from maskbench.benchmark.results import load_results
from maskbench.benchmark.table_formats import format_leaderboard
from maskbench.benchmark.tables import build_leaderboard, marks
from maskbench.errors import InputError


@pytest.fixture
def two_runs(results_dir, entry):
    """SMIYC RA-21 (smiyc-anomaly) with three scorers and Road Anomaly (exact) with two."""
    a = results_dir("a", "smiyc-ra21", [
        entry("msp", "smiyc-ra21", "smiyc-anomaly", AP=0.2797, FPR95=0.7202, PPV=None,
              notes={"components": "no best-F1 threshold"}),
        entry("rba", "smiyc-ra21", "smiyc-anomaly", AP=0.9, FPR95=0.1, PPV=0.4),
        # 90.01 displays as 90.0: tied with rba on the displayed value, so both are bold
        entry("m2a", "smiyc-ra21", "smiyc-anomaly", AP=0.9001, FPR95=0.2, PPV=0.3),
    ])
    b = results_dir("b", "road-anomaly", [
        entry("msp", "road-anomaly", "exact", AP=0.15, FPR95=0.71, PPV=0.05),
        entry("rba", "road-anomaly", "exact", AP=0.7, FPR95=0.2, PPV=None),
    ], protocol="exact")
    return [a, b]


def body(text, start, end):
    lines = text.splitlines()
    return lines[lines.index(start) + 1:lines.index(end)]


def test_latex_rows_marks_and_missing(two_runs):
    tex = format_leaderboard(two_runs, "latex", ["AP", "FPR95", "PPV"])
    lines = tex.splitlines()
    assert r"\begin{tabular}{lcccccc}" in lines
    head = body(tex, r"\toprule", r"\midrule")
    assert head == [
        r" & \multicolumn{3}{c}{smiyc-ra21} & \multicolumn{3}{c}{road-anomaly} \\",
        r"\cmidrule(lr){2-4} \cmidrule(lr){5-7}",
        # the two runs use different FPR95 rules: every FPR95 header names its rule
        r"Scorer & AP $\uparrow$ & FPR$_{95}$ [smiyc-fpr95-rule] $\downarrow$ & PPV $\uparrow$ & AP $\uparrow$ & "
        r"FPR$_{95}$ [exact-fpr95-rule] $\downarrow$ & PPV $\uparrow$ \\",
    ]
    assert body(tex, r"\midrule", r"\bottomrule") == [
        # road-anomaly PPV has a single value: not marked
        r"msp & 28.0 & 72.0 & - & \underline{15.0} & \underline{71.0} & 5.0 \\",
        r"rba & \textbf{90.0} & \textbf{10.0} & \textbf{40.0} & \textbf{70.0} & \textbf{20.0} & - \\",
        r"m2a & \textbf{90.0} & \underline{20.0} & \underline{30.0} & - & - & - \\",
    ]
    assert lines.index(r"\bottomrule") < lines.index(r"\end{tabular}") < lines.index(r"\end{table}")


def test_markdown_rows(two_runs):
    md = format_leaderboard(two_runs, "markdown", ["AP", "FPR95"])
    lines = md.splitlines()
    assert lines[:5] == [
        "| Scorer | smiyc-ra21 AP ↑ | smiyc-ra21 FPR95 \\[smiyc-fpr95-rule\\] ↓ | road-anomaly AP ↑ | "
        "road-anomaly FPR95 \\[exact-fpr95-rule\\] ↓ |",
        "|:--|--:|--:|--:|--:|",
        "| msp | 28.0 | 72.0 | <u>15.0</u> | <u>71.0</u> |",
        "| rba | **90.0** | **10.0** | **70.0** | **20.0** |",
        "| m2a | **90.0** | <u>20.0</u> | - | - |",
    ]


def test_fpr95_lower_is_better(results_dir, entry):
    d = results_dir("a", "fs-laf", [
        entry("a", "fs-laf", "exact", AP=0.1, FPR95=0.9),
        entry("b", "fs-laf", "exact", AP=0.2, FPR95=0.05),
        entry("c", "fs-laf", "exact", AP=0.3, FPR95=0.5),
    ], protocol="exact")
    board = build_leaderboard([d], ["AP", "FPR95"])
    mk = marks(board)
    assert (mk.get(("b", 0, "FPR95")), mk.get(("c", 0, "FPR95")), mk.get(("a", 0, "FPR95"))) == \
        ("best", "second", None)
    assert (mk.get(("c", 0, "AP")), mk.get(("b", 0, "AP")), mk.get(("a", 0, "AP"))) == ("best", "second", None)


def test_ties_competition_ranking(results_dir, entry):
    d = results_dir("a", "fs-laf", [
        entry("a", "fs-laf", "exact", AP=0.5, sIoU=0.5),
        entry("b", "fs-laf", "exact", AP=0.5, sIoU=0.4),
        entry("c", "fs-laf", "exact", AP=0.4, sIoU=0.4),
        entry("d", "fs-laf", "exact", AP=0.3, sIoU=0.3),
    ], protocol="exact")
    text = format_leaderboard([d], "markdown", ["AP", "sIoU"])
    # AP: two tied bests are bold, no value is second (two are better than 40.0)
    # sIoU: one best, the two tied seconds are underlined
    assert text.splitlines()[2:6] == [
        "| a | **50.0** | **50.0** |",
        "| b | **50.0** | <u>40.0</u> |",
        "| c | 40.0 | <u>40.0</u> |",
        "| d | 30.0 | 30.0 |",
    ]


def test_rounding_happens_before_ranking(results_dir, entry):
    # 0.12349 -> 12.3 and 0.12251 -> 12.3: equal as displayed, so both bold although raw values differ
    d = results_dir("a", "fs-laf", [entry("x", "fs-laf", "exact", AP=0.12349),
                                    entry("y", "fs-laf", "exact", AP=0.12251),
                                    entry("z", "fs-laf", "exact", AP=0.12)], protocol="exact")
    assert format_leaderboard([d], "markdown", ["AP"]).splitlines()[2:5] == [
        "| x | **12.3** |", "| y | **12.3** |", "| z | 12.0 |"]


def test_protocols_never_mixed_and_footnote(results_dir, entry):
    a = results_dir("a", "smiyc-ra21", [entry("msp", "smiyc-ra21", "smiyc-anomaly", AP=0.25)])
    b = results_dir("b", "smiyc-ra21", [entry("msp", "smiyc-ra21", "exact", AP=0.2625)], protocol="exact")
    tex = format_leaderboard([a, b], "latex", ["AP"])
    assert r" & \multicolumn{1}{c}{smiyc-ra21 (smiyc-anomaly, smiyc-fpr95-rule)} & " \
           r"\multicolumn{1}{c}{smiyc-ra21 (exact, exact-fpr95-rule)} \\" in tex.splitlines()
    assert r"msp & 25.0 & 26.2 \\" in tex.splitlines()
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption{"))
    assert ("smiyc-ra21 (smiyc-anomaly, smiyc-fpr95-rule): protocol smiyc-anomaly (official SMIYC AnomalyTrack: "
            r"float16 scores, per-frame 768-quantile bins, components \textgreater{}= 500 px") in caption
    assert "FPR95 rule exact-fpr95-rule; resolution native; TTA none." in caption
    assert "FPR95: lower is better" in caption
    text = format_leaderboard([a, b], "text", ["AP"])
    assert "protocol smiyc-anomaly" in text and "protocol exact" in text


def test_resolution_splits_columns(results_dir, entry):
    a = results_dir("a", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.25)], protocol="exact")
    b = results_dir("b", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.3)], protocol="exact",
                    resolution="short1024")
    board = build_leaderboard([a, b], ["AP"])
    assert board.labels == ["fs-laf (native)", "fs-laf (short1024)"]


def test_null_reason_in_footnote(two_runs):
    md = format_leaderboard(two_runs, "markdown", ["AP", "PPV"])
    assert "msp on smiyc-ra21: PPV not available (components: no best-F1 threshold)." in md


def test_latex_escaping(results_dir, entry):
    d = results_dir("a", "fs_laf#1", [entry("m2a_v2 & 100%", "fs_laf#1", "exact", AP=0.5),
                                      entry("x{~^$}\\", "fs_laf#1", "exact", AP=0.25)], protocol="exact")
    lines = format_leaderboard([d], "latex", ["AP"]).splitlines()
    assert r" & \multicolumn{1}{c}{fs\_laf\#1} \\" in lines
    assert r"m2a\_v2 \& 100\% & \textbf{50.0} \\" in lines
    assert r"x\{\textasciitilde{}\textasciicircum{}\$\}\textbackslash{} & \underline{25.0} \\" in lines


def test_csv_round_trip(two_runs, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(format_leaderboard(two_runs, "csv", ["AP", "FPR95", "PPV"]))
    frame = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    assert list(frame.index) == ["msp", "rba", "m2a"]
    assert frame.columns.get_level_values(0).tolist() == ["smiyc-ra21"] * 3 + ["road-anomaly"] * 3
    assert frame.columns.get_level_values(2).tolist() == ["AP", "FPR95", "PPV"] * 2
    assert all(p.startswith("smiyc-anomaly") for p in frame.columns.get_level_values(1)[:3])
    assert all(p.startswith("exact") for p in frame.columns.get_level_values(1)[3:])
    expected = {("msp", 0): 0.2797, ("msp", 1): 0.7202, ("msp", 2): None, ("msp", 5): 0.05,
                ("rba", 0): 0.9, ("rba", 5): None, ("m2a", 0): 0.9001, ("m2a", 3): None}
    for (row, col), value in expected.items():
        got = frame.loc[row].iloc[col]
        assert (math.isnan(got) if value is None else got == value), (row, col, got)


def test_text_leaderboard_for_runner(two_runs):
    loaded = load_results(two_runs[0])
    text = format_leaderboard(loaded, "text", ["AP", "FPR95"])
    rows = {line.split("|")[0].strip(): line for line in text.splitlines()[3:6]}
    assert rows["rba"].split("|")[1].split() == ["90.0*", "10.0*"]
    assert rows["m2a"].split("|")[1].split() == ["90.0*", "20.0+"]
    assert rows["msp"].split("|")[1].split() == ["28.0", "72.0"]
    assert "protocol smiyc-anomaly" in text


def test_checkpoints_split_rows_duplicates_error(results_dir, entry):
    a = results_dir("a", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.25)], protocol="exact",
                    checkpoint="swinl.pth", sha="11" * 32)
    b = results_dir("b", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.3)], protocol="exact",
                    checkpoint="r50.pth", sha="22" * 32)
    assert build_leaderboard([a, b], ["AP"]).rows == ["msp [swinl]", "msp [r50]"]
    with pytest.raises(InputError, match="appears twice"):
        build_leaderboard([a, a], ["AP"])


def test_bad_inputs(results_dir, entry, tmp_path):
    d = results_dir("a", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.25)], protocol="exact")
    with pytest.raises(InputError, match="PQ not in any result; available: .*AP"):
        build_leaderboard([d], ["PQ"])
    (d / "results.json").write_text((d / "results.json").read_text().replace("0.25", "NaN"))
    with pytest.raises(InputError, match="results.json: cannot read as JSON"):
        load_results(d)
    with pytest.raises(InputError, match="no results.json"):
        load_results(tmp_path / "nowhere")
    with pytest.raises(InputError, match="unknown table format"):
        format_leaderboard([d], "html")
    empty = results_dir("empty", "fs-laf", [], protocol="exact")
    with pytest.raises(InputError, match="no result entries in .*empty/results.json"):
        build_leaderboard([empty])


def test_cli_table(two_runs, tmp_path):
    from maskbench.cli import main

    out = tmp_path / "t.tex"
    res = CliRunner().invoke(main, ["table", "--results", str(two_runs[0]), "--results", str(two_runs[1]),
                                    "--format", "latex", "--metrics", "AP,FPR95", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == format_leaderboard(two_runs, "latex", ["AP", "FPR95"])
    res = CliRunner().invoke(main, ["table", "--results", str(two_runs[0]), "--metrics", "AP,nope"])
    assert res.exit_code == 1 and "unknown metric 'nope'; known metrics: anomaly_IoU_t5" in res.output


def test_default_metrics_are_those_present(results_dir, entry):
    d = results_dir("a", "fs-laf", [entry("msp", "fs-laf", "exact", AP=0.25, FPR95=0.5)], protocol="exact")
    assert build_leaderboard([d]).metrics == ["AP", "FPR95", "sIoU", "PPV", "F1"]
    res = {"run": {}, "results": [{"scorer": "msp", "dataset": "x", "protocol": "exact",
                                   "metrics": {"AP": 0.5, "mIoU_closed": 0.25}}]}
    assert build_leaderboard(res).metrics == ["AP"]
