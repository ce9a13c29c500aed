"""Helpers of the results directory: curve downsampling and the per-image row log."""

import json

import numpy as np

from maskbench.benchmark.results import downsample_curve, read_rows


def test_downsampled_curve_keeps_ends_size_and_area():
    rng = np.random.default_rng(0)
    fpr = np.concatenate([[0.0], np.sort(rng.random(20000)), [1.0]])
    tpr = np.sqrt(fpr)
    tpr[5000:5005] = tpr[5000]  # a flat step
    x, y = downsample_curve(fpr, tpr)
    assert x.dtype == np.float32 and y.dtype == np.float32 and 2 <= x.size <= 2000
    assert (x[0], y[0], x[-1], y[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(x) >= 0)  # order kept
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert abs(float(np.sum(np.diff(x.astype(np.float64)) * (y[1:] + y[:-1]) / 2)) - area) < 1e-4
    small_x, small_y = downsample_curve([0.0, 0.5, 1.0], [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(small_x, [0.0, 0.5, 1.0])


def test_read_rows_last_row_wins_and_torn_line_ignored(tmp_path):
    path = tmp_path / "rows.jsonl"
    rows = [{"id": "a", "index": 0, "v": 1}, {"id": "b", "index": 1, "v": 1}, {"id": "a", "index": 0, "v": 2}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "c", "in')
    got = read_rows([path, tmp_path / "absent.jsonl"])
    assert got == {0: rows[2], 1: rows[1]}
