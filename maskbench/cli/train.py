"""`bench train`: the embedded tiny Mask2Former from scratch (body unchanged from the single-module CLI)."""

import contextlib
import json
import sys
from pathlib import Path

import click

from maskbench.cli.common import status, user_errors
from maskbench.fileio import claim_folder, write_text


@click.command("train")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("maskbench-train"),
              show_default=True, help="Folder for model.pth, model.scorers.json, log.csv and summary.json.")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Training iterations of the first schedule (default: the shipped model's).")
@click.option("--refine-iterations", type=click.IntRange(min=0), default=None,
              help="Iterations of each lower-lr restart from the previous schedule's weights (default: the "
              "shipped model's; 0 with --init or --gma).")
@click.option("--refine-rounds", type=click.IntRange(min=0), default=None,
              help="Number of lower-lr restarts (default: the shipped model's).")
@click.option("--stop-after", type=click.IntRange(min=1), default=None,
              help="Stop after N iterations of the first schedule (default: the shipped model's; stopping early "
              "skips the restarts).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of weights, batches and point sampling.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="torch threads (bit-identical weights need the same count and platform).")
@click.option("--gma", is_flag=True, help="Train the GMA twin (global masked attention decoder, Mask2Anomaly Eq. 10): "
              "by default fine-tuned from the shipped masked model, reproducing m2f_tiny_world_gma.pth.")
@click.option("--init", "init", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Start from this checkpoint instead of random weights (with --gma default: the shipped model).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak learning rate (default: the shipped model's, or the GMA twin's with --gma).")
@user_errors
def train_command(out, iterations, refine_iterations, refine_rounds, stop_after, seed, threads, gma, init, lr):
    """Train the embedded tiny Mask2Former from scratch on the world's inlier train split.

    Reproduces maskbench/weights/m2f_tiny_world.pth (compare the sha256 in OUT/summary.json): a first schedule
    (OUT/stage1/), then lower-lr restarts, each from the previous weights (OUT/stage2/, ..., the last in OUT/);
    logs the losses and the closed-set val mIoU, then fits Maskomaly's query ids on held-out anomaly frames
    (world seed 1). With --gma it reproduces the GMA twin maskbench/weights/m2f_tiny_world_gma.pth instead.
    """
    import dataclasses
    import hashlib

    from maskbench.benchmark.embedded import EMBEDDED_WEIGHTS
    from maskbench.train.loop import GMA_TWIN, TrainConfig, train_on_world
    from maskbench.train.scorer_fit import write_scorer_params

    cfg = TrainConfig(seed=seed, threads=threads)
    if gma:
        cfg = dataclasses.replace(cfg, model={**cfg.model, "gma": True}, **GMA_TWIN,
                                  init=str(init or EMBEDDED_WEIGHTS))
    elif init is not None:
        cfg = dataclasses.replace(cfg, init=str(init), refine_iterations=0)
    if refine_iterations is not None:
        cfg = dataclasses.replace(cfg, refine_iterations=refine_iterations)
    if refine_rounds is not None:
        cfg = dataclasses.replace(cfg, refine_rounds=refine_rounds)
    if lr is not None:
        cfg = dataclasses.replace(cfg, lr=lr)
    if iterations is not None:
        cfg = dataclasses.replace(cfg, iterations=iterations, stop_after=None)
    if stop_after is not None:
        cfg = dataclasses.replace(cfg, stop_after=stop_after)
    with contextlib.ExitStack() as held:
        out = claim_folder(out, held, status)  # writable and ours before hours of training
        summary = train_on_world(cfg, out, log=click.echo)
        fitted = write_scorer_params(out / "model.pth", out / "model.scorers.json")
        sha = hashlib.sha256((out / "model.pth").read_bytes()).hexdigest()
        # the sha256 binds the fitted ids to these weights: `bench run --checkpoint OUT/model.pth` then uses them
        write_text(out / "model.scorers.json", json.dumps({**fitted, "checkpoint_sha256": sha}, indent=1))
        summary.update(command=["bench", "train", *sys.argv[2:]], model_sha256=sha, scorer_params=fitted["params"])
        write_text(out / "summary.json", json.dumps(summary, indent=1))
    click.echo(f"final val mIoU {summary['final_val_miou']:.4f}; weights {out / 'model.pth'} (sha256 {sha})")
