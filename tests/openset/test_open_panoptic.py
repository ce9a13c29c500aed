"""The open-set panoptic track on a COCO replica: outputs round-trip through `bench pq`, and follow the
inference procedures applied to the forward outputs."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from maskbench.benchmark.run import RunConfig, run_benchmark
from maskbench.cli import main
from maskbench.errors import InputError
from maskbench.metrics.panoptic_files import read_panoptic_png
from maskbench.openset import add_unknown_segments, eam_unknown_instances, mine_unknown_instances, panoptic_inference
from maskbench.scorers import score_all

FORWARD = {"path": "test-forward", "sha256": "0" * 64, "config": None}


def run_open_panoptic(forward, dataset, scorers, out, **options):
    """The open-panoptic task of `bench run` on ``dataset`` (loaded), with ``forward``."""
    config = RunConfig(task="open-panoptic", dataset=dataset.name, root=dataset.root,
                       dataset_options={"split": dataset.split}, scorers=tuple(scorers), out=out, task_options=options,
                       workers=1, command=["test"])
    return run_benchmark(config, forward, checkpoint=dict(FORWARD))


def pq_cli(gt_json, gt_dir, pred_json, pred_dir, split, tmp_path):
    out = tmp_path / "pq.json"
    res = CliRunner().invoke(main, ["pq", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json",
                                    str(pred_json), "--pred-dir", str(pred_dir), "--unknown", split,
                                    "--json", str(out)])
    assert res.exit_code == 0, res.output
    return json.loads(out.read_text())


@pytest.mark.parametrize("kind", ["oracle", "tiny-model"])
def test_open_panoptic_round_trips_through_bench_pq(coco, tiny_forward, panoptic_oracle, tmp_path, kind):
    forward = panoptic_oracle(coco) if kind == "oracle" else tiny_forward(0, len(coco.categories))
    results = run_open_panoptic(forward, coco, ["msp", "eam"], tmp_path / "out", min_pixels=20)
    assert [e["scorer"] for e in results["results"]] == ["known", "eam/msp", "eam/eam", "mining"]
    assert results["run"]["calibration_frames"] == [coco.ids[0]]  # the first frame with unknown pixels
    for entry in results["results"]:
        d = entry["protocol_details"]
        pq = pq_cli(d["gt_json"], d["gt_dir"], d["pred_json"], d["pred_dir"], "K20", tmp_path)
        m = entry["metrics"]
        for group, suffix in (("Things", "_th"), ("Stuff", "_st"), ("All", ""), ("Unknown", "_unk")):
            assert [m[f"PQ{suffix}"], m[f"SQ{suffix}"], m[f"RQ{suffix}"]] == [pq[group][x] for x in ("pq", "sq", "rq")]
        assert m["images"] == 2
    if kind == "oracle":
        by = {e["scorer"]: e["metrics"] for e in results["results"]}
        assert by["known"]["PQ_th"] > 0.8 and by["known"]["PQ_st"] > 0.8
        assert by["known"]["PQ_unk"] == 0.0  # no unknown predicted: every unknown GT segment is an FN
        assert by["eam/msp"]["PQ_unk"] > 0.5


def test_open_panoptic_outputs_follow_the_procedures(coco, panoptic_oracle, tmp_path):
    forward = panoptic_oracle(coco, seed=2)
    results = run_open_panoptic(forward, coco, ["msp"], tmp_path / "out", min_pixels=20, calibration_frames=[1])
    threshold = results["results"][1]["metrics"]["threshold"]
    cat_ids = sorted(coco.categories)
    is_thing = torch.tensor([bool(coco.categories[c]["isthing"]) for c in cat_ids])
    preds = {e["scorer"]: json.loads(open(e["protocol_details"]["pred_json"]).read()) for e in results["results"]}
    for index in (0, 2):
        sample = coco[index]
        c, m = forward(sample.image)
        ids, segs = panoptic_inference(c, m, is_thing)
        known = [{"id": s["id"], "category_id": cat_ids[s["category_id"]], "isthing": int(s["isthing"])} for s in segs]
        masks = eam_unknown_instances(m, score_all(["msp"], c, m)["msp"], threshold, min_pixels=20)
        assert masks, "the oracle's unknown segment must produce an unknown instance"
        mined = mine_unknown_instances(c, m, is_thing, background_threshold=0.5, overlap_iou=0.5)
        for method, (want_ids, want_segs) in {"known": (ids, known), "eam/msp": add_unknown_segments(ids, known, masks),
                                              "mining": add_unknown_segments(ids, known, mined)}.items():
            got = read_panoptic_png(tmp_path / "out" / "panoptic" / method / f"{sample.id}.png")
            np.testing.assert_array_equal(got, want_ids.numpy())
            ann = next(a for a in preds[method]["annotations"] if a["file_name"] == f"{sample.id}.png")
            assert ann["segments_info"] == [{**s, "isthing": int(s["isthing"])} for s in want_segs]
    assert any(s["category_id"] == -1 for a in preds["eam/msp"]["annotations"] for s in a["segments_info"])


def test_open_panoptic_bad_inputs(coco, tiny_forward, panoptic_oracle, tmp_path):
    with pytest.raises(InputError, match="categories"):
        run_open_panoptic(tiny_forward(0, 5), coco, ["msp"], tmp_path / "a")
    with pytest.raises(InputError, match="calibration_frames"):
        run_open_panoptic(panoptic_oracle(coco), coco, ["msp"], tmp_path / "b", calibration_frames=[7])
    with pytest.raises(InputError, match="nothing left"):
        run_open_panoptic(panoptic_oracle(coco), coco, ["msp"], tmp_path / "c", calibration_frames=[0, 1, 2])
