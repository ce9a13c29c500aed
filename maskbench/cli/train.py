"""`bench train`: the embedded tiny Mask2Former from scratch, its GMA twin, or an outlier-exposure recipe's variant."""

import contextlib
import json
import sys
from pathlib import Path

import click

from maskbench.cli.common import status, user_errors
from maskbench.fileio import claim_folder, write_text


@click.command("train")
@click.option("--recipe", default="none", show_default=True,
              type=click.Choice(["none", "rba-oe", "m2a-cl", "eam-neg"]),
              help="Training recipe (maskbench.train.recipes): none = the inlier model; rba-oe, m2a-cl, eam-neg = "
              "outlier-exposure fine-tunes of RbA, Mask2Anomaly and EAM, from --init (default: the shipped model; "
              "its GMA twin for m2a-cl), reproducing maskbench/weights/m2f_tiny_world_<recipe>.pth.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("maskbench-train"),
              show_default=True, help="Folder for model.pth, model.scorers.json, log.csv and summary.json.")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Training iterations of the first schedule (default: the recipe's, or the shipped model's).")
@click.option("--refine-iterations", type=click.IntRange(min=0), default=None,
              help="Iterations of each lower-lr restart from the previous schedule's weights (default: the "
              "shipped model's; 0 with --init, --gma or a fine-tuning recipe).")
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
              help="Start from this checkpoint instead of random weights (default with --gma or a recipe: the "
              "shipped model, for m2a-cl its GMA twin).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak learning rate (default: the recipe's, the shipped model's, or the GMA twin's with --gma).")
@user_errors
def train_command(recipe, out, iterations, refine_iterations, refine_rounds, stop_after, seed, threads, gma, init, lr):
    """Train the embedded tiny Mask2Former on the world's train split, or fine-tune it with a recipe.

    Without --recipe it reproduces maskbench/weights/m2f_tiny_world.pth from scratch (compare the sha256 in
    OUT/summary.json): a first schedule (OUT/stage1/), then lower-lr restarts, each from the previous weights
    (OUT/stage2/, ..., the last in OUT/). With --gma it reproduces the GMA twin m2f_tiny_world_gma.pth; with
    --recipe rba-oe / m2a-cl / eam-neg the outlier-exposure variant m2f_tiny_world_<recipe>.pth (outliers from
    the world's own pool pasted into the crops). Logs the losses and the closed-set val mIoU, then fits
    Maskomaly's query ids on held-out anomaly frames (world seed 1).
    """
    import hashlib

    from maskbench.train.loop import train_on_world
    from maskbench.train.options import train_config
    from maskbench.train.scorer_fit import write_scorer_params

    cfg = train_config(recipe=recipe, gma=gma, init=init, iterations=iterations, refine_iterations=refine_iterations,
                       refine_rounds=refine_rounds, stop_after=stop_after, lr=lr, seed=seed, threads=threads)
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
