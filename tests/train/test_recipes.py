"""Outlier-exposure recipes: dense losses against literal float64 transcriptions of the reference criteria,
the reference freeze sets, micro fine-tunes (bit-identical reruns, frozen weights untouched) and the option merge."""

import dataclasses
import hashlib
import json
import math

import numpy as np
import pytest
import torch

from maskbench.datasets.world import WorldConfig, ensure_world, render_scene
from maskbench.errors import InputError
from maskbench.model.checkpoint import load_model
from maskbench.model.config import Mask2FormerConfig
from maskbench.model.resnet import FrozenBatchNorm2d
from maskbench.train.loop import (
    TrainConfig, build_trainable, export_state_dict, init_from_checkpoint, load_split, train,
)
from maskbench.train.options import GMA_TWIN, train_config
from maskbench.train.outlier_losses import OutlierSetCriterion, m2a_contrastive_loss, rba_outlier_loss
from maskbench.train.matcher import HungarianMatcher
from maskbench.train.recipes import BASE_WEIGHTS, FINETUNE, GMA_WEIGHTS, RECIPES, trainable_parameters

MICRO = Mask2FormerConfig(num_classes=19, num_queries=4, dec_layers=1, hidden_dim=32, nheads=8, dim_feedforward=32,
                          conv_dim=32, mask_dim=32, enc_layers=1, enc_nheads=4, enc_dim_feedforward=32)
MICRO_BACKBONE = {"stem_channels": 8, "res2_channels": 8}


# -- literal transcriptions (numpy float64, loops) -------------------------------------------------------------------
def class_scores_ref(logits, masks):
    """``einsum('bqc,bqhw->bchw', softmax(logits)[..., :-1], sigmoid(masks))`` written out."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    p = (e / e.sum(-1, keepdims=True))[..., :-1]
    m = 1 / (1 + np.exp(-masks))
    B, Q, K = p.shape
    out = np.zeros((B, K) + masks.shape[2:])
    for b in range(B):
        for q in range(Q):
            for k in range(K):
                out[b, k] += p[b, q, k] * m[b, q]
    return out


def resize_align_corners(x, H, W):
    """Bilinear ``F.interpolate(..., align_corners=True)`` of [B, h, w] to [B, H, W]: src = i (h - 1) / (H - 1)."""
    B, h, w = x.shape
    out = np.zeros((B, H, W))
    for i in range(H):
        sy = i * (h - 1) / (H - 1) if H > 1 else 0.0
        y0 = int(math.floor(sy)); y1 = min(y0 + 1, h - 1); fy = sy - y0
        for j in range(W):
            sx = j * (w - 1) / (W - 1) if W > 1 else 0.0
            x0 = int(math.floor(sx)); x1 = min(x0 + 1, w - 1); fx = sx - x0
            out[:, i, j] = ((1 - fy) * ((1 - fx) * x[:, y0, x0] + fx * x[:, y0, x1])
                            + fy * ((1 - fx) * x[:, y1, x0] + fx * x[:, y1, x1]))
    return out


def rba_ref(logits, masks, sem_seg, t_in, t_out):
    """RbA: mapper ``outlier_mask`` (1 where 254, 255 where 255, else 0), criterion ``outlier_loss`` squared hinge."""
    outlier_mask = np.zeros_like(sem_seg, dtype=np.int64)
    outlier_mask[(sem_seg == 254) & (sem_seg != 255)] = 1
    outlier_mask[sem_seg == 255] = 255
    score = -np.tanh(class_scores_ref(logits, masks)).sum(1)
    score = resize_align_corners(score, *sem_seg.shape[-2:])
    ood, ind = score[outlier_mask == 1], score[outlier_mask == 0]
    loss = np.mean(np.maximum(ind - t_in, 0) ** 2)
    if (outlier_mask == 1).sum() > 0:
        loss = 0.5 * (loss + np.mean(np.maximum(t_out - ood, 0) ** 2))
    return loss


def m2a_ref(logits, masks, sem_seg, margin):
    """Mask2Anomaly: mapper ``ood_mask = sem_seg == 254``; criterion ``loss_ood`` ("margin")."""
    ood_mask = (sem_seg == 254).astype(np.int64)
    score = resize_align_corners(-class_scores_ref(logits, masks).max(1), *sem_seg.shape[-2:])
    ood, ind = score[ood_mask == 1], score[ood_mask == 0]
    loss = np.mean(ind ** 2)
    if ood_mask.sum() > 0:
        loss = loss + np.mean(np.maximum(margin - ood, 0.0) ** 2)
    return 0.5 * loss


@pytest.fixture
def dense_case():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2, 3, 5))  # 4 classes + no-object
    masks = rng.normal(0, 3, (2, 3, 4, 6))
    sem = rng.integers(0, 4, (2, 16, 24)).astype(np.uint8)
    sem[0, 3:9, 5:12] = 254
    sem[1, 10:, :7] = 255
    sem[0, 12:, 20:] = 255
    return logits, masks, sem


def _torch(*arrays):
    return [torch.from_numpy(np.asarray(a, np.float32)) for a in arrays]


@pytest.mark.parametrize("t_in,t_out", [(0.0, 5.0), (-1.2, 0.3), (-2.5, -0.4)])
def test_rba_loss_matches_reference(dense_case, t_in, t_out):
    logits, masks, sem = dense_case
    got = rba_outlier_loss(*_torch(logits, masks), torch.from_numpy(sem), inlier_upper=t_in, outlier_lower=t_out)
    assert float(got) == pytest.approx(rba_ref(logits, masks, sem, t_in, t_out), rel=2e-5, abs=1e-6)
    no_outliers = np.where(sem == 254, 1, sem).astype(np.uint8)  # not halved without outlier pixels
    got = rba_outlier_loss(*_torch(logits, masks), torch.from_numpy(no_outliers), inlier_upper=t_in, outlier_lower=t_out)
    assert float(got) == pytest.approx(rba_ref(logits, masks, no_outliers, t_in, t_out), rel=2e-5, abs=1e-6)


@pytest.mark.parametrize("margin", [1.0, 0.75, 0.0])
def test_m2a_loss_matches_reference(dense_case, margin):
    logits, masks, sem = dense_case
    for labels in (sem, np.where(sem == 254, 2, sem).astype(np.uint8)):  # void counts as inlier in both
        got = m2a_contrastive_loss(*_torch(logits, masks), torch.from_numpy(labels), margin=margin)
        assert float(got) == pytest.approx(m2a_ref(logits, masks, labels, margin), rel=2e-5, abs=1e-7)


def test_void_pixels_follow_each_reference(dense_case):
    """RbA drops void pixels from the inlier term, Mask2Anomaly keeps them: changing the scores only under void
    changes the Mask2Anomaly loss and leaves RbA's unchanged."""
    logits, masks, sem = dense_case
    only_void = np.zeros((2, 16, 24), np.uint8)
    only_void[1, 10:, :7] = 255
    lab = torch.from_numpy(np.where(only_void == 255, 255, sem).astype(np.uint8))
    lab_inlier = torch.from_numpy(np.where(only_void == 255, 1, sem).astype(np.uint8))
    lg, mk = _torch(logits, masks)
    assert float(rba_outlier_loss(lg, mk, lab, inlier_upper=-2.5)) != float(rba_outlier_loss(lg, mk, lab_inlier, inlier_upper=-2.5))
    assert float(m2a_contrastive_loss(lg, mk, lab)) == float(m2a_contrastive_loss(lg, mk, lab_inlier))


def test_criterion_adds_the_dense_loss_to_every_prediction_set(dense_case):
    logits, masks, sem = dense_case
    lg, mk = _torch(logits, masks)
    aux = [{"pred_logits": lg * 0.5, "pred_masks": mk - 1.0}, {"pred_logits": lg + 0.3, "pred_masks": mk * 2}]
    outputs = {"pred_logits": lg, "pred_masks": mk, "aux_outputs": aux}
    targets = [{"labels": torch.tensor([0, 2]), "masks": torch.from_numpy(np.stack([s == 0, s == 2])).float(),
                "sem_seg": torch.from_numpy(s)} for s in sem]
    criterion = OutlierSetCriterion(4, HungarianMatcher(num_points=32), num_points=32, dense_loss="m2a",
                                    dense_params={"margin": 1.0})
    losses = criterion(outputs, targets)
    for suffix, out in (("", outputs), ("_0", aux[0]), ("_1", aux[1])):
        assert float(losses["loss_outlier" + suffix]) == pytest.approx(
            m2a_ref(out["pred_logits"].double().numpy(), out["pred_masks"].double().numpy(), sem, 1.0), rel=2e-5)
        assert "loss_ce" + suffix in losses and "loss_dice" + suffix in losses


# -- freeze sets ------------------------------------------------------------------------------------------------------
def rba_trainable_ref(model):
    """RbA ``train_net.py`` ``build_optimizer``: FREEZE_BACKBONE, FREEZE_PIXEL_DECODER,
    FREEZE_TRANSFORMER_DECODER_EXCEPT_MLP (predictor names containing class_embed or mask_embed stay)."""
    keep = set()
    for name, _ in model.sem_seg_head.predictor.named_parameters():
        if "class_embed" in name or "mask_embed" in name:
            keep.add("sem_seg_head.predictor." + name)
    return keep


def test_freeze_sets_are_the_references():
    masked = build_trainable(MICRO, MICRO_BACKBONE)
    names = set(trainable_parameters(masked, RECIPES["rba-oe"]))
    assert names == rba_trainable_ref(masked) == {
        "sem_seg_head.predictor.class_embed.weight", "sem_seg_head.predictor.class_embed.bias",
        *(f"sem_seg_head.predictor.mask_embed.layers.{i}.{p}" for i in range(3) for p in ("weight", "bias"))}
    assert {n for n, p in masked.named_parameters() if p.requires_grad} == names
    # Mask2Anomaly anomaly_ft.yaml: BACKBONE.FREEZE_AT 5; detectron2's ResNet.freeze(5) freezes the stem (stage 1)
    # and res2..res5 (stages 2-5) and turns their norms into FrozenBatchNorm2d: the pixel decoder and the
    # transformer decoder train
    frozen_at_5 = ("backbone.stem.", "backbone.res2.", "backbone.res3.", "backbone.res4.", "backbone.res5.")
    gma = build_trainable(dataclasses.replace(MICRO, gma=True), MICRO_BACKBONE, norm="FrozenBN")
    names = set(trainable_parameters(gma, RECIPES["m2a-cl"]))
    every = {n for n, _ in gma.named_parameters()}
    assert names == {n for n in every if not n.startswith(frozen_at_5)}
    assert {n.split(".")[0] + "." + n.split(".")[1] for n in names} == {"sem_seg_head.pixel_decoder",
                                                                        "sem_seg_head.predictor"}
    assert not any(p.requires_grad for p in gma.backbone.parameters())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in gma.backbone.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in gma.backbone.modules())
    assert RECIPES["m2a-cl"].frozen_backbone and RECIPES["rba-oe"].frozen_backbone
    # EAM (Open-set-M2F train_net.py) and the inlier model freeze nothing
    for recipe in ("eam-neg", "none"):
        model = build_trainable(MICRO, MICRO_BACKBONE)
        assert set(trainable_parameters(model, RECIPES[recipe])) == {n for n, _ in model.named_parameters()}
        assert not RECIPES[recipe].frozen_backbone


# -- micro fine-tunes -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def micro_start(tmp_path_factory):
    scenes = [render_scene(np.random.SeedSequence([7, i]), (64, 128)) for i in range(3)]
    frames = np.stack([s.image for s in scenes]), np.stack([s.semantic for s in scenes])
    out = tmp_path_factory.mktemp("base")
    cfg = TrainConfig(iterations=2, batch_size=2, crop=(64, 64), warmup=2, num_points=64, threads=1,
                      model=dataclasses.asdict(MICRO), backbone=MICRO_BACKBONE, refine_iterations=0)
    train(cfg, out, train_data=frames, log=lambda _: None)
    return frames, out / "model.pth"


def micro_recipe(recipe, init, **changes):
    cfg = train_config(recipe=recipe, init=init, iterations=3, threads=1)
    return dataclasses.replace(cfg, batch_size=2, crop=(64, 64), num_points=64, eval_every=3,
                               model={**dataclasses.asdict(MICRO), "gma": cfg.model["gma"]}, backbone=MICRO_BACKBONE,
                               **changes)


@pytest.mark.parametrize("recipe", ["rba-oe", "m2a-cl", "eam-neg"])
def test_micro_finetune_is_bit_identical_and_respects_the_freeze_set(tmp_path, micro_start, recipe):
    frames, init = micro_start
    load = lambda p: torch.load(p, weights_only=True)["model"]  # noqa: E731
    for name in ("a", "b"):
        train(micro_recipe(recipe, init), tmp_path / name, train_data=frames, val_data=(frames[0][:1], frames[1][:1]),
              log=lambda _: None)
    a, b = load(tmp_path / "a" / "model.pth"), load(tmp_path / "b" / "model.pth")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model, report = load_model(tmp_path / "a" / "model.pth")
    assert report.ok and report.config.gma is RECIPES[recipe].gma
    probe = build_trainable(dataclasses.replace(MICRO, gma=RECIPES[recipe].gma), MICRO_BACKBONE)
    init_from_checkpoint(probe, init)  # the fine-tune's starting weights (GMA: converted from masked attention)
    start = export_state_dict(probe)
    trained = set(trainable_parameters(probe, RECIPES[recipe]))
    if RECIPES[recipe].frozen_backbone:  # every frozen parameter and frozen BatchNorm statistic untouched
        assert a.keys() == start.keys()
        assert all(torch.equal(a[k], start[k]) for k in a if k not in trained)
    changed = [k for k in trained if k in start and not torch.equal(a[k], start[k])]
    assert len(changed) >= len(trained) // 2
    header = (tmp_path / "a" / "log.csv").read_text().splitlines()[0].split(",")
    assert ("loss_outlier" in header) is (RECIPES[recipe].loss is not None)


def test_pasting_changes_the_training(tmp_path, micro_start):
    """Same crops and seed: with outliers the weights differ from the run without (eam-neg pastes every crop)."""
    frames, init = micro_start
    train(micro_recipe("eam-neg", init), tmp_path / "neg", train_data=frames, log=lambda _: None)
    plain = dataclasses.replace(micro_recipe("eam-neg", init), recipe="none")
    train(plain, tmp_path / "plain", train_data=frames, log=lambda _: None)
    a = torch.load(tmp_path / "neg" / "model.pth", weights_only=True)["model"]
    b = torch.load(tmp_path / "plain" / "model.pth", weights_only=True)["model"]
    assert not all(torch.equal(a[k], b[k]) for k in a)


# -- options ----------------------------------------------------------------------------------------------------------
def test_train_config_defaults_per_recipe(tmp_path):
    assert train_config() == TrainConfig()
    assert train_config(init=tmp_path / "w.pth") == dataclasses.replace(TrainConfig(), init=str(tmp_path / "w.pth"),
                                                                     refine_iterations=0)
    gma = train_config(gma=True)
    assert gma.model["gma"] and gma.iterations == GMA_TWIN["iterations"] and gma.init == str(BASE_WEIGHTS)
    base_lr = TrainConfig().lr
    for name, recipe in RECIPES.items():
        if name == "none":
            continue
        cfg = train_config(recipe=name)
        assert cfg.recipe == name and cfg.model["gma"] is recipe.gma
        assert cfg.init == str(GMA_WEIGHTS if recipe.gma else BASE_WEIGHTS)
        assert cfg.lr == pytest.approx(base_lr * recipe.lr_ratio)
        assert {k: getattr(cfg, k) for k in FINETUNE} == FINETUNE
        assert (cfg.batch_size, cfg.crop, cfg.clip_grad, cfg.seed) == (8, (128, 256), 1.0, 0)
    assert train_config(recipe="rba-oe", iterations=5, lr=1e-3, init="x.pth").iterations == 5
    with pytest.raises(InputError, match="unknown training recipe"):
        train_config(recipe="oe")
    with pytest.raises(InputError, match="GMA twin"):
        train_config(recipe="rba-oe", gma=True)


def test_cli_train_runs_the_recipe_configuration(tmp_path, monkeypatch):
    import click.testing

    import maskbench.train.loop as loop
    import maskbench.train.scorer_fit as scorer_fit
    from maskbench.cli import main
    from maskbench.cli.train import train_command

    seen = {}

    def fake_train(cfg, out, log):
        seen["cfg"] = cfg
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.pth").write_bytes(b"weights")
        return {"final_val_miou": 0.5}

    monkeypatch.setattr(loop, "train_on_world", fake_train)
    monkeypatch.setattr(scorer_fit, "write_scorer_params", lambda model, out: {"params": {}})
    init = tmp_path / "start.pth"
    init.write_bytes(b"x")
    result = click.testing.CliRunner().invoke(main, ["train", "--recipe", "m2a-cl", "--init", str(init), "--out",
                                                     str(tmp_path / "out"), "--iterations", "7"])
    assert result.exit_code == 0, result.output
    assert seen["cfg"] == train_config(recipe="m2a-cl", init=init, iterations=7)
    choices = next(p for p in train_command.params if p.name == "recipe").type.choices
    assert list(choices) == list(RECIPES)


# -- the command line -------------------------------------------------------------------------------------------------
CLI_WORLD = WorldConfig(seed=7, train=4, val=2)


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    world = ensure_world(("train", "val"), config=CLI_WORLD, cache=cache, workers=1)
    val = load_split(world.dataset("val"))
    return cache, load_split(world.dataset("train")), (val[0][:TrainConfig.val_frames], val[1][:TrainConfig.val_frames])


@pytest.mark.parametrize("recipe", ["rba-oe", "m2a-cl", "eam-neg"])
def test_cli_recipe_equals_the_library_run(tmp_path, monkeypatch, cli_world, recipe):
    """``bench train --recipe NAME --init W --stop-after 1`` (the shipped tiny model and batch, on a small world)
    writes the bytes :func:`train` writes for the same configuration, and records their sha256."""
    import click.testing

    import maskbench.train.loop as loop
    import maskbench.train.scorer_fit as scorer_fit
    from maskbench.cli import main

    cache, train_data, val_data = cli_world
    init = GMA_WEIGHTS if RECIPES[recipe].gma else BASE_WEIGHTS
    train(train_config(recipe=recipe, init=init, stop_after=1), tmp_path / "lib", train_data=train_data,
          val_data=val_data, log=lambda _: None)
    monkeypatch.setenv("MASKBENCH_CACHE", str(cache))
    monkeypatch.setattr(loop, "WorldConfig", lambda: CLI_WORLD)  # the CLI trains on the world's default config
    fit = scorer_fit.write_scorer_params
    monkeypatch.setattr(scorer_fit, "write_scorer_params", lambda model, out: fit(model, out, frames=1))
    result = click.testing.CliRunner().invoke(main, ["train", "--recipe", recipe, "--init", str(init), "--stop-after",
                                                     "1", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    lib = (tmp_path / "lib" / "model.pth").read_bytes()
    assert (tmp_path / "cli" / "model.pth").read_bytes() == lib
    summary = json.loads((tmp_path / "cli" / "summary.json").read_text())
    assert summary["model_sha256"] == hashlib.sha256(lib).hexdigest()
    assert summary["train_config"]["recipe"] == recipe and summary["train_config"]["iterations"] == FINETUNE["iterations"]
