"""The embedded benchmark (``bench run`` with no arguments) against ``results/golden/embedded.json``.

Recomputes every metric of every scorer on both tracks of the world with the shipped model, and the closed-set
numbers of the world's val split (the ``semantic`` task beside the leaderboard), and fails on
drift beyond the golden file's tolerance (absolute 1e-4 on the stored fractions). On the platform that wrote
the golden file the run is bit-identical (fixed world, fixed weights, deterministic forward and metrics);
the tolerance only absorbs float32 summation-order differences of other BLAS/oneDNN builds and thread counts
in the forward. Update deliberately with ``bench run`` then ``bench check --update`` (see docs/embedded.md).
"""

import json
from pathlib import Path

import pandas as pd

from maskbench.benchmark.golden import check

GOLDEN = Path(__file__).resolve().parents[1] / "results" / "golden" / "embedded.json"


def test_embedded_benchmark_reproduces_the_golden_values(tmp_path):
    from maskbench.benchmark.embedded import CLOSED_SET_DIR, EMBEDDED_TRACKS, run_embedded

    run_embedded(tmp_path, echo=lambda _: None)
    report = check(GOLDEN, [tmp_path / track for track in (*EMBEDDED_TRACKS, CLOSED_SET_DIR)])
    assert report.entries == 13  # six scorers x two tracks, and the closed-set entry
    assert report.ok, report.format()
    board = (tmp_path / "leaderboard.txt").read_text()
    assert "world val (50 frames) mIoU 80.1, iIoU 66.8 of m2f_tiny_world.pth" in board
    frame = pd.read_csv(tmp_path / "leaderboard.csv", header=[0, 1, 2], index_col=0)
    miou = json.loads((tmp_path / CLOSED_SET_DIR / "results.json").read_text())["results"][0]["metrics"]["mIoU"]
    assert frame.columns[-1][::2] == ("world val", "mIoU") and list(frame.iloc[:, -1]) == [miou] * 6
