"""Training loop: bit-identical reruns, checkpoints that load through load_model, mIoU against sklearn."""

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.metrics import jaccard_score

from maskbench.datasets.world import render_scene
from maskbench.model.checkpoint import load_model
from maskbench.model.config import Mask2FormerConfig
from maskbench.train.loop import TrainConfig, semantic_targets, train
from maskbench.train.val_miou import confusion, miou

MICRO = Mask2FormerConfig(num_classes=19, num_queries=4, dec_layers=1, hidden_dim=32, nheads=8, dim_feedforward=32,
                          conv_dim=32, mask_dim=32, enc_layers=1, enc_nheads=4, enc_dim_feedforward=32)


@pytest.fixture(scope="module")
def frames():
    scenes = [render_scene(np.random.SeedSequence([7, i]), (64, 128)) for i in range(3)]
    return np.stack([s.image for s in scenes]), np.stack([s.semantic for s in scenes])


def micro_config(**changes):
    cfg = TrainConfig(iterations=3, batch_size=2, crop=(64, 64), warmup=2, num_points=64, eval_every=3,
                      threads=1, model=dataclasses.asdict(MICRO), backbone={"stem_channels": 8, "res2_channels": 8},
                      refine_iterations=0)
    return dataclasses.replace(cfg, **changes)


def test_three_steps_are_bit_identical_twice(tmp_path, frames):
    runs = []
    for name in ("a", "b"):
        summary = train(micro_config(), tmp_path / name, train_data=frames, val_data=(frames[0][:1], frames[1][:1]),
                        log=lambda _: None)
        state = torch.load(tmp_path / name / "model.pth", weights_only=True)["model"]
        runs.append((summary["final_val_miou"], state, (tmp_path / name / "log.csv").read_text()))
    (m1, s1, log1), (m2, s2, log2) = runs
    assert m1 == m2
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    strip = lambda text: [line.split(",")[:1] + line.split(",")[2:] for line in text.splitlines()]  # noqa: E731
    assert strip(log1) == strip(log2)  # every loss identical; only the wall-clock column may differ
    # a different seed trains different weights
    train(micro_config(seed=1), tmp_path / "c", train_data=frames, log=lambda _: None)
    s3 = torch.load(tmp_path / "c" / "model.pth", weights_only=True)["model"]
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)


def test_checkpoint_loads_through_load_model(tmp_path, frames):
    train(micro_config(iterations=1), tmp_path, train_data=frames, log=lambda _: None)
    model, report = load_model(tmp_path / "model.pth")
    cfg = report.config
    for field in ("num_classes", "num_queries", "dec_layers", "hidden_dim", "dim_feedforward", "mask_dim",
                  "enc_layers", "enc_nheads", "enc_dim_feedforward", "transformer_in_features"):
        assert getattr(cfg, field) == getattr(MICRO, field), field
    assert model.backbone.stem.conv1.weight.shape[0] == 8


def test_train_restores_global_torch_settings(tmp_path, frames):
    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    train(micro_config(iterations=1, threads=1), tmp_path, train_data=frames, log=lambda _: None)
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before


def test_miou_matches_sklearn_jaccard():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, (40, 40)).astype(np.uint8)
    gt[rng.random((40, 40)) < 0.1] = 255
    pred = np.where(rng.random((40, 40)) < 0.7, gt, rng.integers(0, 6, (40, 40))).astype(np.int64)
    pred[gt == 255] = 0
    got, ious = miou(confusion(pred, gt, 19))
    valid = gt < 19
    want = jaccard_score(gt[valid], pred[valid], labels=[0, 1, 2, 3, 4], average=None)
    np.testing.assert_allclose([ious[k] for k in range(5)], want, rtol=1e-12)
    assert got == pytest.approx(want.mean(), rel=1e-12)
    assert ious[5] is None  # predicted but absent from the ground truth: not averaged


def test_semantic_targets_one_mask_per_present_class():
    labels = np.array([[0, 0, 255], [7, 7, 0]], np.uint8)
    t = semantic_targets(labels, 19)
    assert t["labels"].tolist() == [0, 7]
    assert t["masks"].tolist() == [[[1, 1, 0], [0, 0, 1]], [[0, 0, 0], [1, 1, 0]]]


def test_stopping_early_equals_the_start_of_the_full_run(tmp_path, frames):
    full = micro_config(iterations=4)
    train(full, tmp_path / "full", train_data=frames, log=lambda _: None)
    train(dataclasses.replace(full, stop_after=2), tmp_path / "stop", train_data=frames, log=lambda _: None)
    rows = lambda p: [line.split(",")[:1] + line.split(",")[2:] for line in (p / "log.csv").read_text().splitlines()]  # noqa: E731
    assert rows(tmp_path / "stop") == rows(tmp_path / "full")[:3]  # header + the two shared iterations


def test_refinement_rounds_equal_runs_each_started_from_the_previous(tmp_path, frames):
    """One run with two restarts = the first schedule, then two runs, each ``--init`` from the previous weights."""
    val = (frames[0][:1], frames[1][:1])
    quiet = lambda _: None  # noqa: E731
    chained = micro_config(iterations=3, refine_iterations=2, refine_lr=3e-4, refine_rounds=2)
    summary = train(chained, tmp_path / "chained", train_data=frames, val_data=val, log=quiet)
    train(micro_config(iterations=3), tmp_path / "first", train_data=frames, log=quiet)
    for previous, name in (("first", "second"), ("second", "third")):
        train(micro_config(iterations=2, lr=3e-4, init=str(tmp_path / previous / "model.pth")), tmp_path / name,
              train_data=frames, log=quiet)
    load = lambda p: torch.load(p / "model.pth", weights_only=True)["model"]  # noqa: E731
    pairs = ((tmp_path / "chained" / "stage1", tmp_path / "first"), (tmp_path / "chained" / "stage2", tmp_path / "second"),
             (tmp_path / "chained", tmp_path / "third"))
    for one, two in pairs:
        a, b = load(one), load(two)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), one
    assert not all(torch.equal(load(tmp_path / "second")[k], v) for k, v in load(tmp_path / "third").items())
    assert summary["train_config"]["refine_rounds"] == 2
    assert [stage["train_config"]["iterations"] for stage in summary["stages"]] == [3, 2]
    assert len((tmp_path / "chained" / "log.csv").read_text().splitlines()) == 3  # header + the last restart's 2
    # stopping the first schedule early skips the restarts; zero rounds is one schedule
    train(dataclasses.replace(chained, stop_after=1), tmp_path / "early", train_data=frames, log=quiet)
    train(dataclasses.replace(chained, refine_rounds=0), tmp_path / "none", train_data=frames, log=quiet)
    assert not (tmp_path / "early" / "stage1").exists() and not (tmp_path / "none" / "stage1").exists()
    assert all(torch.equal(load(tmp_path / "none")[k], v) for k, v in load(tmp_path / "first").items())


def test_maskomaly_fit_gives_valid_ids_for_any_checkpoint(tmp_path, frames):
    from maskbench.scorers import get_scorer
    from maskbench.train.scorer_fit import fit_maskomaly

    train(micro_config(iterations=1), tmp_path, train_data=frames, log=lambda _: None)
    fitted = fit_maskomaly(tmp_path / "model.pth", frames=2)
    params = fitted["params"]["maskomaly"]
    get_scorer("maskomaly", **params)
    assert all(0 <= q < MICRO.num_queries for q in params["accept"] + params["ground"])
    assert fitted["calibration_frames"] == {"world_seed": 1, "split": "anomaly", "frames": 2}


def test_gma_twin_starts_as_the_masked_model(tmp_path, frames):
    """A GMA model initialised from a masked-attention checkpoint computes the same function (background branch
    projected to zero), and each of its branches holds the masked layer's attention weights."""
    from maskbench.errors import InputError
    from maskbench.train.loop import build_trainable, init_from_checkpoint, normalise

    train(micro_config(iterations=2), tmp_path, train_data=frames, log=lambda _: None)
    masked = build_trainable(MICRO, {"stem_channels": 8, "res2_channels": 8})
    init_from_checkpoint(masked, tmp_path / "model.pth")
    twin = build_trainable(dataclasses.replace(MICRO, gma=True), {"stem_channels": 8, "res2_channels": 8})
    init_from_checkpoint(twin, tmp_path / "model.pth")
    layer = "sem_seg_head.predictor.transformer_cross_attention_layers.0."
    state = twin.state_dict()
    saved = torch.load(tmp_path / "model.pth", weights_only=True)["model"]
    assert torch.equal(state[layer + "multihead_attn_foreground.in_proj_weight"], saved[layer + "multihead_attn.in_proj_weight"])
    assert torch.equal(state[layer + "multihead_attn_background.in_proj_weight"], saved[layer + "multihead_attn.in_proj_weight"])
    assert not state[layer + "multihead_attn_background.out_proj.weight"].any()
    x = normalise(frames[0][:2, :64, :64])
    with torch.no_grad():
        a, b = masked.eval()(x), twin.eval()(x)
    assert torch.allclose(a["pred_logits"], b["pred_logits"], atol=1e-5)
    assert torch.allclose(a["pred_masks"], b["pred_masks"], atol=1e-5)
    other = build_trainable(dataclasses.replace(MICRO, hidden_dim=64, conv_dim=64, mask_dim=64), {"stem_channels": 8, "res2_channels": 8})
    with pytest.raises(InputError, match="cannot initialise"):
        init_from_checkpoint(other, tmp_path / "model.pth")
