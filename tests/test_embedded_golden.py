"""The embedded benchmark (``bench run`` with no arguments) against ``results/golden/embedded*.json``.

Recomputes every metric of every scorer on both tracks of the world with the shipped model and with each shipped
outlier-exposure variant, and fails on drift beyond each golden file's tolerance (absolute 1e-4 on the stored
fractions): ``embedded.json`` for the inlier model, ``embedded_<recipe>.json`` for each variant. On the platform
that wrote the golden files the run is bit-identical (fixed world, fixed weights, deterministic forward and
metrics); the tolerance only absorbs float32 summation-order differences of other BLAS/oneDNN builds and thread
counts in the forward. Update deliberately with ``bench run`` then ``bench check --update`` (see README).
"""

import hashlib
import json
from pathlib import Path

from maskbench.benchmark.golden import check

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "results" / "golden"
GOLDEN = GOLDEN_DIR / "embedded.json"


def test_embedded_benchmark_reproduces_the_golden_values(tmp_path):
    from maskbench.benchmark.embedded import EMBEDDED_TRACKS, run_embedded
    from maskbench.benchmark.embedded_variants import VARIANT_RECIPES
    from maskbench.train.recipes import variant_weights

    run_embedded(tmp_path, echo=lambda _: None)
    runs = {"none": tmp_path, **{r: tmp_path / "variants" / r for r in VARIANT_RECIPES}}
    for recipe, parent in runs.items():
        golden = GOLDEN if recipe == "none" else GOLDEN_DIR / f"embedded_{recipe}.json"
        report = check(golden, [parent / track for track in EMBEDDED_TRACKS])
        assert report.entries == 12, recipe  # six scorers x two tracks
        assert report.ok, f"{recipe}: {report.format()}"
        sha = hashlib.sha256(variant_weights(recipe).read_bytes()).hexdigest()
        for track in EMBEDDED_TRACKS:
            checkpoint = json.loads((parent / track / "results.json").read_text())["run"]["checkpoint"]
            assert (checkpoint["recipe"], checkpoint["sha256"]) == (recipe, sha)
    methods = (tmp_path / "methods.md").read_text()
    assert methods.count(" | yes | ") == 3 and methods.count(" | no | ") == 5
