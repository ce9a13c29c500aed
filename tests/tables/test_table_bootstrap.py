"""`bench table --bootstrap` on hand-made replicates: intervals, CSV bounds, and the mark of a best value whose
lead is not significant (one case significant, one not, worked out by hand below)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from maskbench.benchmark.replicates import write_replicates
from maskbench.benchmark.table_formats import format_leaderboard
from maskbench.benchmark.tables import build_leaderboard
from maskbench.cli import main
from maskbench.errors import InputError
from maskbench.metrics.bootstrap import METRICS, BootstrapResult

B, SEED = 200, 7
FRAMES = ["a", "b", "c"]


def replicate_values():
    """Per scorer and metric the B replicate values.

    AP: x = 0.60 + e, y = x − 0.05 − |u| (y below x in every replicate: x's lead is significant); z far below.
    FPR95 (lower is better): x = 0.20 + e, y = 0.21 + e ± 0.04 alternating (the difference x − y is −0.01 ∓ 0.04,
    half the replicates on each side of 0: not significant).
    """
    rng = np.random.default_rng(0)
    e, u = rng.normal(0, 0.02, B), rng.normal(0, 0.01, B)
    alternate = np.where(np.arange(B) % 2 == 0, 0.04, -0.04)
    nan = np.full(B, np.nan)
    values = {
        "x": {"AP": 0.60 + e, "FPR95": 0.20 + e},
        "y": {"AP": 0.55 + e - np.abs(u), "FPR95": 0.21 + e + alternate},
        "z": {"AP": 0.30 + e, "FPR95": 0.50 + e},
    }
    return {s: {m: v.get(m, nan) for m in METRICS} for s, v in values.items()}


@pytest.fixture
def boot_run(results_dir, entry):
    d = results_dir("a", "fs-laf", [
        entry("x", "fs-laf", "exact", AP=0.60, FPR95=0.20),
        entry("y", "fs-laf", "exact", AP=0.55, FPR95=0.21),
        entry("z", "fs-laf", "exact", AP=0.30, FPR95=0.50),
    ], protocol="exact")
    values = replicate_values()
    results = {s: BootstrapResult(len(FRAMES), B, SEED, v, np.full(B, 0.5)) for s, v in values.items()}
    write_replicates(d, results, FRAMES, {"replicates": B, "seed": SEED})
    return d, values


def shown(x):
    return f"{100 * x:.1f}"


def bounds(v, level=95.0):
    return np.percentile(v, [50 - level / 2, 50 + level / 2])


def test_hand_made_case_marks_only_the_unsure_lead(boot_run):
    d, values = boot_run
    # by hand: AP x − y > 0 in every replicate; FPR95 x − y = −0.01 ∓ 0.04 straddles 0
    assert (values["x"]["AP"] - values["y"]["AP"] > 0).all()
    fpr_diff = bounds(values["x"]["FPR95"] - values["y"]["FPR95"])
    assert fpr_diff[0] < 0 < fpr_diff[1]
    board = build_leaderboard([d], ["AP", "FPR95"], bootstrap=True)
    assert board.unsure == {("x", 0, "FPR95")}

    text = format_leaderboard([d], "text", ["AP", "FPR95"], bootstrap=True)
    row = {line.split("|")[0].strip(): line.split("|")[1] for line in text.splitlines() if "|" in line}
    ap_low, ap_high = bounds(values["x"]["AP"])
    f_low, f_high = bounds(values["x"]["FPR95"])
    assert row["x"].split() == ["60.0*", f"[{shown(ap_low)},", f"{shown(ap_high)}]",
                                "20.0*~", f"[{shown(f_low)},", f"{shown(f_high)}]"]
    y_low, y_high = bounds(values["y"]["AP"])
    assert f"55.0+  [{shown(y_low)}, {shown(y_high)}]" in row["y"]
    assert "~: the best value's lead over the second is not significant (the paired 95% bootstrap interval of " \
           "their difference contains 0)." in text
    assert "[low, high]: 95% percentile bootstrap interval over the frames resampled with replacement (B = 200, " \
           "seed 7)" in text

    md = format_leaderboard([d], "markdown", ["AP", "FPR95"], bootstrap=True)
    assert f"| x | **60.0** [{shown(ap_low)}, {shown(ap_high)}] | **20.0**† [{shown(f_low)}, {shown(f_high)}] |" in md
    assert "†: the best value's lead over the second is not significant" in md
    tex = format_leaderboard([d], "latex", ["AP", "FPR95"], bootstrap=True)
    assert (rf"x & \textbf{{60.0}} {{\scriptsize [{shown(ap_low)}, {shown(ap_high)}]}} & "
            rf"\textbf{{20.0}}$^\dagger$ {{\scriptsize [{shown(f_low)}, {shown(f_high)}]}} \\") in tex.splitlines()
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption{"))
    assert r"$^\dagger$: the best value's lead over the second is not significant" in caption
    assert r"[low, high]: 95\% percentile bootstrap interval" in caption


def test_csv_carries_the_bounds_and_level_recomputes_them(boot_run, tmp_path):
    d, values = boot_run
    path = tmp_path / "t.csv"
    path.write_text(format_leaderboard([d], "csv", ["AP", "FPR95"], bootstrap=True, level=80.0))
    frame = pd.read_csv(path, header=[0, 1, 2], index_col=0)
    assert frame.columns.get_level_values(2).tolist() == ["AP", "AP.low", "AP.high", "FPR95", "FPR95.low",
                                                          "FPR95.high"]
    for scorer in ("x", "y", "z"):
        row = frame.loc[scorer]
        for i, metric in ((0, "AP"), (3, "FPR95")):
            low, high = bounds(values[scorer][metric], 80.0)
            # full precision (pandas < 3 may parse the last bit differently: rel 1e-15)
            assert (row.iloc[i + 1], row.iloc[i + 2]) == (pytest.approx(low, rel=1e-15, abs=0),
                                                          pytest.approx(high, rel=1e-15, abs=0))
    # level 80 narrows the paired interval too; the FPR95 difference still straddles 0 (half the replicates each side)
    assert build_leaderboard([d], ["AP", "FPR95"], bootstrap=True, level=80.0).unsure == {("x", 0, "FPR95")}


def test_ties_and_missing_values(results_dir, entry):
    """Two rows tied on the display: each one's rival is the other; a row without a value is left out."""
    d = results_dir("t", "fs-laf", [entry("p", "fs-laf", "exact", AP=0.5004), entry("q", "fs-laf", "exact", AP=0.4996),
                                    entry("r", "fs-laf", "exact", AP=None)], protocol="exact")
    base = np.linspace(0.4, 0.6, B)
    nan = np.full(B, np.nan)
    values = {"p": base + 0.002, "q": base, "r": nan}  # p − q = 0.002 in every replicate: p's lead is real
    results = {s: BootstrapResult(3, B, SEED, {m: (v if m == "AP" else nan) for m in METRICS}, nan)
               for s, v in values.items()}
    write_replicates(d, results, FRAMES, {"replicates": B, "seed": SEED})
    board = build_leaderboard([d], ["AP"], bootstrap=True)
    assert board.unsure == {("q", 0, "AP")}  # both display 50.0 (bold); only q's "lead" over p is not significant
    assert board.intervals[("r", 0, "AP")] == (None, None)
    assert "| r | - [-, -] |" in format_leaderboard([d], "markdown", ["AP"], bootstrap=True)


def test_without_replicates_tables_are_unchanged_and_bootstrap_is_refused(boot_run, results_dir, entry, tmp_path):
    d, _ = boot_run
    plain = results_dir("plain", "fs-laf", [entry("x", "fs-laf", "exact", AP=0.6)], protocol="exact")
    text = format_leaderboard([plain], "text", ["AP"])
    assert "[" not in "".join(text.splitlines()[:4]) and "bootstrap" not in text
    with pytest.raises(InputError, match="no bootstrap.npz, so no intervals"):
        format_leaderboard([plain], "text", ["AP"], bootstrap=True)
    with pytest.raises(InputError, match="replicates 200, not the 100 asked for"):
        format_leaderboard([d], "text", ["AP"], bootstrap=True, replicates=100)
    with pytest.raises(InputError, match="seed 7, not the 8 asked for"):
        format_leaderboard([d], "text", ["AP"], bootstrap=True, seed=8)
    other = results_dir("other", "fs-laf", [entry("w", "fs-laf", "exact", AP=0.58)], protocol="exact",
                        checkpoint="other.pth", sha="cd" * 32)
    nan = np.full(B, np.nan)
    write_replicates(other, {"w": BootstrapResult(3, B, SEED, {m: nan for m in METRICS}, nan)}, ["a", "b", "d"],
                     {"replicates": B, "seed": SEED})
    with pytest.raises(InputError, match="resampled over different frames"):
        format_leaderboard([d, other], "text", ["AP"], bootstrap=True)


def test_cli_table_bootstrap(boot_run, tmp_path):
    d, values = boot_run
    runner = CliRunner()
    result = runner.invoke(main, ["table", "--results", str(d), "--bootstrap", "--format", "markdown",
                                  "--metrics", "AP,FPR95"])
    assert result.exit_code == 0, result.output
    assert result.output == format_leaderboard([d], "markdown", ["AP", "FPR95"], bootstrap=True)
    checked = runner.invoke(main, ["table", "--results", str(d), "--bootstrap", "200", "--seed", "7", "--level", "90"])
    assert checked.exit_code == 0 and "90% percentile bootstrap interval" in checked.output
    wrong = runner.invoke(main, ["table", "--results", str(d), "--bootstrap", "1000"])
    assert wrong.exit_code == 1 and "replicates 200, not the 1000 asked for" in wrong.output
    assert runner.invoke(main, ["table", "--results", str(d), "--level", "90"]).exit_code == 2
    ci = json.loads((d / "results.json").read_text())["results"][0].get("ci")
    assert ci is None and not math.isnan(values["x"]["AP"][0])  # the table reads bootstrap.npz, not results.json
