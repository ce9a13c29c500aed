"""The embedded benchmark (``bench run`` with no arguments) against ``results/golden/embedded*.json``.

Recomputes every metric of every scorer on both tracks of the world with the shipped model and with each shipped
outlier-exposure variant, and the closed-set numbers of the shipped model on the world's val split (the
``semantic`` task beside the leaderboard), and fails on drift beyond each golden file's tolerance (absolute 1e-4
on the stored fractions): ``embedded.json`` for the inlier model, ``embedded_<recipe>.json`` for each variant. On
the platform that wrote the golden files the run is bit-identical (fixed world, fixed weights, deterministic
forward and metrics); the tolerance only absorbs float32 summation-order differences of other BLAS/oneDNN builds
and thread counts in the forward. Update deliberately with ``bench run`` then ``bench check --update`` (see
docs/embedded.md).
"""

import hashlib
import json
from pathlib import Path

import pandas as pd

from maskbench.benchmark.golden import check

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "results" / "golden"
GOLDEN = GOLDEN_DIR / "embedded.json"


def test_embedded_benchmark_reproduces_the_golden_values(tmp_path):
    from maskbench.benchmark.embedded import CLOSED_SET_DIR, EMBEDDED_TRACKS, run_embedded
    from maskbench.benchmark.embedded_variants import VARIANT_RECIPES
    from maskbench.train.recipes import variant_weights

    run_embedded(tmp_path, echo=lambda _: None)
    report = check(GOLDEN, [tmp_path / track for track in (*EMBEDDED_TRACKS, CLOSED_SET_DIR)])
    assert report.entries == 13  # six scorers x two tracks, and the closed-set entry
    assert report.ok, report.format()
    for recipe in VARIANT_RECIPES:
        report = check(GOLDEN_DIR / f"embedded_{recipe}.json",
                       [tmp_path / "variants" / recipe / track for track in EMBEDDED_TRACKS])
        assert report.entries == 12, recipe  # six scorers x two tracks
        assert report.ok, f"{recipe}: {report.format()}"
    runs = {"none": tmp_path, **{r: tmp_path / "variants" / r for r in VARIANT_RECIPES}}
    for recipe, parent in runs.items():  # every results.json records its checkpoint's recipe
        sha = hashlib.sha256(variant_weights(recipe).read_bytes()).hexdigest()
        for track in EMBEDDED_TRACKS + ((CLOSED_SET_DIR,) if recipe == "none" else ()):
            checkpoint = json.loads((parent / track / "results.json").read_text())["run"]["checkpoint"]
            assert (checkpoint["recipe"], checkpoint["sha256"]) == (recipe, sha)
    methods = (tmp_path / "methods.md").read_text()
    assert methods.count(" | yes | ") == 3 and methods.count(" | no | ") == 5
    board = (tmp_path / "leaderboard.txt").read_text()
    assert "world val (50 frames) mIoU 80.1, iIoU 66.8 of m2f_tiny_world.pth" in board
    frame = pd.read_csv(tmp_path / "leaderboard.csv", header=[0, 1, 2], index_col=0)
    miou = json.loads((tmp_path / CLOSED_SET_DIR / "results.json").read_text())["results"][0]["metrics"]["mIoU"]
    assert frame.columns[-1][::2] == ("world val", "mIoU") and list(frame.iloc[:, -1]) == [miou] * 6
