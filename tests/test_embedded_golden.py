"""The embedded benchmark (``bench run`` with no arguments) against ``results/golden/embedded.json``.

Recomputes every metric of every scorer on both tracks of the world with the shipped model and fails on
drift beyond the golden file's tolerance (absolute 1e-4 on the stored fractions). On the platform that wrote
the golden file the run is bit-identical (fixed world, fixed weights, deterministic forward and metrics);
the tolerance only absorbs float32 summation-order differences of other BLAS/oneDNN builds and thread counts
in the forward. Update deliberately with ``bench run`` then ``bench check --update`` (see README).
"""

from pathlib import Path

from maskbench.benchmark.golden import check

GOLDEN = Path(__file__).resolve().parents[1] / "results" / "golden" / "embedded.json"


def test_embedded_benchmark_reproduces_the_golden_values(tmp_path):
    from maskbench.benchmark.embedded import EMBEDDED_TRACKS, run_embedded

    run_embedded(tmp_path, echo=lambda _: None)
    report = check(GOLDEN, [tmp_path / track for track in EMBEDDED_TRACKS])
    assert report.entries == 12  # six scorers x two tracks
    assert report.ok, report.format()
