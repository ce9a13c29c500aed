"""Defaults that work on any checkpoint, and no silent surprises.

Maskomaly's query ids: the shipped tiny models use the ids fitted for them (found beside the weights, also when
named with --checkpoint), a `bench train` output uses its own when its file records the weights' sha256, any
other checkpoint gets the published ids with a WARNING, or, where those are out of range for its queries, the
scorer is skipped with a line naming `bench calibrate maskomaly`; run.json records where every id list came from.
A best-F1 threshold at the highest score (a binary map: AP 100 but sIoU 0) is said in a note; the summary says
what the frame count means; --debug shows the traceback; Ctrl-C and unexpected OS errors are one line too.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest
from PIL import Image

import maskbench.cli.evaluate as cli_evaluate
from maskbench.benchmark.passes import THRESHOLD_AT_MAX
from maskbench.benchmark.summary import frames_text, run_summary

SHIPPED_PARAMS = "m2f_tiny_world.scorers.json"


def _run(fx, ra21, out, checkpoint):
    code, stdout, err = fx.bench("run", "--dataset", "smiyc-ra21", "--root", ra21, "--checkpoint", checkpoint,
                                 "--out", out, "--workers", "1", "--scorer", "msp,maskomaly", "--limit", "1")
    assert code == 0, err
    return stdout, json.loads((out / "run.json").read_text())


def test_shipped_model_uses_its_fitted_ids(fx, ra21, tmp_path):
    shipped = json.loads((fx.weights.parent / SHIPPED_PARAMS).read_text())["params"]["maskomaly"]
    stdout, run = _run(fx, ra21, tmp_path / "out", fx.weights)
    source = f"fitted for this checkpoint ({fx.weights.parent / SHIPPED_PARAMS})"
    assert run["scorer_param_sources"] == {"maskomaly": {"accept": source, "ground": source}}
    assert {k: run["scorers"]["maskomaly"][k] for k in ("accept", "ground")} == shipped
    assert run["skipped_scorers"] == {} and "WARNING" not in stdout
    assert f"maskomaly query ids: accept, ground {source}" in stdout


def test_other_checkpoints_skip_out_of_range_published_ids(fx, ra21, tmp_path):
    copy = tmp_path / "copy.pth"
    shutil.copy(fx.weights, copy)  # the same weights elsewhere: nothing says which ids belong to them
    stdout, run = _run(fx, ra21, tmp_path / "out", copy)
    reason = ("its published Swin-L Cityscapes query ids (accept [49, 31, 83, 32], ground [19, 24]) are out of range "
              "for this checkpoint's 24 queries; fit ids for it with `bench calibrate maskomaly` and pass the "
              "calibration file")
    assert run["skipped_scorers"] == {"maskomaly": reason} and list(run["scorers"]) == ["msp"]
    assert f"SKIPPED: maskomaly: {reason}" in stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [e["scorer"] for e in results["results"]] == ["msp"]


@pytest.mark.parametrize("recorded,used", [(True, True), (False, False)], ids=["sha-matches", "sha-differs"])
def test_bench_train_output_uses_its_ids_when_they_name_its_weights(fx, ra21, tmp_path, recorded, used):
    model = tmp_path / "model.pth"
    shutil.copy(fx.weights, model)
    sha = hashlib.sha256(model.read_bytes()).hexdigest() if recorded else "0" * 64
    fitted = {"params": {"maskomaly": {"accept": [3], "ground": [5, 1]}}, "checkpoint_sha256": sha}
    (tmp_path / "model.scorers.json").write_text(json.dumps(fitted))
    _, run = _run(fx, ra21, tmp_path / "out", model)
    if used:
        assert run["scorers"]["maskomaly"]["accept"] == [3] and run["scorers"]["maskomaly"]["ground"] == [5, 1]
        assert run["scorer_param_sources"]["maskomaly"]["ground"].startswith("fitted for this checkpoint (")
    else:
        assert "maskomaly" in run["skipped_scorers"]


def _binary_maps(tmp_path, noisy=False):
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        gt = np.zeros((40, 60), np.uint8)
        gt[10:30, 15:45] = 1
        gt[:4] = 255
        Image.fromarray(gt).save(tmp_path / "gt" / f"f{i}.png")
        scores = (gt == 1).astype(np.float32)
        if noisy:
            scores = scores * 0.5 + rng.random(gt.shape, dtype=np.float32) * 0.5
        np.save(tmp_path / "pred" / f"f{i}.npy", scores)


@pytest.mark.parametrize("noisy", [False, True], ids=["binary", "continuous"])
def test_threshold_at_the_highest_score_is_said(fx, tmp_path, noisy):
    _binary_maps(tmp_path, noisy)
    code, stdout, err = fx.bench("evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol",
                                 "smiyc-anomaly", "--json", tmp_path / "m.json", "--workers", "1")
    assert code == 0, err
    result = json.loads((tmp_path / "m.json").read_text())
    if noisy:  # scores above the threshold exist: no note
        assert "components.threshold_at_max" not in result["notes"]
        return
    # perfect separation: AP 1; the threshold is 1.0 and nothing is strictly above it, so no component survives
    assert result["AP"] == 1.0 and result["threshold"] == 1.0 and result["sIoU"] == 0.0 and result["F1"] == 0.0
    note = THRESHOLD_AT_MAX.format(t=1.0)
    assert result["notes"]["components.threshold_at_max"] == note
    assert f"note: components.threshold_at_max: {note}" in stdout


def test_summary_says_what_the_frame_count_means_and_names_notes():
    assert frames_text(10, 10) == "10 frames"
    assert frames_text(4, 10) == "4 frames of 10 official (partial: not comparable to published numbers)"
    assert frames_text(40, 10) == ("40 frames, more than the 10 of the official split (other data in its layout, "
                                   "e.g. a replica: not comparable to published numbers)")
    assert frames_text(40, 10, own=(40, "the miniature world's anomaly track")) == (
        "40 frames of the miniature world's anomaly track (the official count 10 does not apply)")
    assert frames_text(8, None, own=(40, "the world")) == "8 of the 40 frames (partial) of the world"
    run = {"dataset": {"name": "smiyc-ra21", "info": {"official_count": 10}}, "frames": 40, "checkpoint":
           {"sha256": "a" * 64}, "source": "forward", "resolution": "native", "tta": "none", "scorers": {"msp": {}}}
    entry = {"scorer": "msp", "notes": {"components.threshold_at_max": THRESHOLD_AT_MAX.format(t=1.0)}}
    lines = run_summary({"run": run, "results": [entry]}).splitlines()
    assert lines[0].startswith("smiyc-ra21: 40 frames, more than the 10 of the official split")
    assert lines[1] == f"NOTE: msp: {THRESHOLD_AT_MAX.format(t=1.0)}"


def test_debug_shows_the_traceback(fx, tmp_path, monkeypatch):
    _binary_maps(tmp_path)
    (tmp_path / "pred" / "f1.npy").write_bytes(b"")
    args = ["evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol", "smiyc-anomaly",
            "--workers", "1"]
    code, _, err = fx.bench(*args)
    assert code == 1 and "Traceback" not in err
    code, _, err = fx.bench("--debug", *args)
    assert code == 1 and "Traceback (most recent call last)" in err and "FileReadError" in err
    empty = tmp_path / "pred" / "f1.npy"
    assert err.rstrip().splitlines()[-1] == f"Error: {empty}: not a .npy file: it is empty (0 bytes)"
    monkeypatch.setenv("MASKBENCH_DEBUG", "1")
    code, _, err = fx.bench(*args)
    assert code == 1 and "Traceback (most recent call last)" in err


def test_ctrl_c_and_unexpected_os_errors_of_any_command_are_one_line(fx, tmp_path, monkeypatch):
    _binary_maps(tmp_path)
    args = ["evaluate", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--protocol", "smiyc-anomaly"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_evaluate, "evaluate_dirs", interrupted)
    code, _, err = fx.bench(*args)
    assert code == 130 and fx.one_error_line(err) == "interrupted"

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "gt" / "f0.png"))

    monkeypatch.setattr(cli_evaluate, "evaluate_dirs", denied)
    code, _, err = fx.bench(*args)
    assert code == 1 and fx.one_error_line(err) == f"{tmp_path / 'gt' / 'f0.png'}: Permission denied"
