"""The ``bench`` command line: a thin click layer over the library."""

import functools
import json
import os
import sys
from pathlib import Path

import click

from maskbench import __version__
from maskbench.benchmark.evaluate import EVAL_PROTOCOLS, evaluate_dirs, format_evaluation, pair_frames
from maskbench.benchmark.runner import DEFAULT_SCORERS, PROTOCOL_ALIASES, RESOLUTIONS, TTA_MODES
from maskbench.errors import MaskbenchError
from maskbench.metrics.pixel import FPR95_RULES


def user_errors(func):
    """Turn a :class:`MaskbenchError` into a one-line message and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MaskbenchError as err:
            raise click.ClickException(str(err)) from err

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="maskbench")
def main():
    """maskbench: anomaly segmentation benchmark for mask-based networks."""


@main.command()
@click.option("--scorer", "scorers", multiple=True, metavar="NAMES",
              help=f"Scorers, comma-separated and/or repeated (default: {','.join(DEFAULT_SCORERS)}; "
                   "also maskomaly_reject, maskomaly_accept).")
@click.option("--dataset", default=None,
              help="Dataset name (see `bench datasets`); without it, the embedded benchmark (see below).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: $MASKBENCH_ROOT_<NAME> or $MASKBENCH_DATA/<name>).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Dataset option, e.g. -o subset=testNoKnown.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Mask2Former checkpoint (.pkl / .pth / HF folder); optional with --from-cache.")
@click.option("--out", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Results folder; re-running the same command there resumes (embedded default: ./maskbench-results).")
@click.option("--protocol", default="official", show_default=True,
              type=click.Choice(list(PROTOCOL_ALIASES) + list(EVAL_PROTOCOLS)),
              help="official: the dataset's SMIYC track; exact / exact16: exact pooled curve (float32 / float16).")
@click.option("--fpr95-rule", default="first_geq", show_default=True, type=click.Choice(list(FPR95_RULES)),
              help="FPR95 rule of the exact protocols (SMIYC protocols define first_geq only).")
@click.option("--resolution", default="native", show_default=True, type=click.Choice(list(RESOLUTIONS)),
              help="native: no resize (RbA); short1024: short side 1024, long <= 2048 (Mask2Anomaly, EAM).")
@click.option("--tta", default="none", show_default=True, type=click.Choice(list(TTA_MODES)),
              help="flip: mean of the scorer maps of the image and its horizontal flip (Mask2Anomaly).")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Read and fill a forward-output cache (float16 mask logits) in this folder.")
@click.option("--from-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Score only cached forward outputs (no model, no forward).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N frames (partial run).")
@click.option("--param", "params", multiple=True, metavar="SCORER.KEY=VALUE",
              help="Scorer hyperparameter (JSON value), e.g. --param maskomaly.lam=0.5.")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="calibration.json of `bench calibrate maskomaly`: its fitted query ids for the Maskomaly scorers "
                   "(must be fitted for this checkpoint). Never picked up implicitly.")
@click.option("--save-maps", default=4, show_default=True, type=click.IntRange(min=0),
              help="Keep image, labels and score maps of the first N frames in OUT/maps for overlays.")
@click.option("--keep-work", is_flag=True,
              help="Keep the per-frame score maps in OUT/work after the run (scores of the pixels labelled 0/1, with the labels).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes for the metric passes (default: automatic; 1 = in-process).")
@click.option("--task", default="anomaly", show_default=True,
              type=click.Choice(["anomaly", "open-semantic", "open-panoptic"]),
              help="open-semantic: StreetHazards open-IoU; open-panoptic: COCO EOPSN open-set PQ (maskbench.openset).")
@click.option("--split", default=None, help="Dataset split option, same as -o split=VALUE (e.g. K20 for coco-open-panoptic).")
@user_errors
def run(scorers, dataset, root, options, checkpoint, out, protocol, fpr95_rule, resolution, tta, device, cache,
        from_cache, limit, params, calibration, save_maps, keep_work, workers, task, split):
    """Run the benchmark: one forward per image, every scorer, every metric of the dataset's protocol.

    Without --dataset: the embedded benchmark. The miniature world is generated if needed, the shipped tiny
    Mask2Former (or --checkpoint) runs all six scorers (or --scorer) on the world's anomaly and obstacle tracks
    with the official protocols, and the leaderboard, LaTeX, markdown, CSV and plots go to --out
    (default ./maskbench-results).
    """
    from maskbench.benchmark.runner import RunConfig, TerminalProgress, parse_scorer_params, run_benchmark, run_summary
    from maskbench.benchmark.tables import format_leaderboard
    from maskbench.datasets import parse_options

    if dataset is None:
        from maskbench.benchmark.embedded import EMBEDDED_SCORERS, run_embedded

        names = tuple(n.strip() for item in scorers for n in item.split(",") if n.strip()) or EMBEDDED_SCORERS
        out = out or Path("maskbench-results")
        run_embedded(out, weights=checkpoint, scorers=names, limit=limit, workers=workers, progress=TerminalProgress,
                     echo=lambda text: click.echo(text, nl=False))
        click.echo(f"results: {out}")
        return
    if out is None:
        raise click.UsageError("--out is required with --dataset (the results folder)")

    config = RunConfig(
        dataset=dataset, root=root, dataset_options=parse_options(options), out=out,
        scorers=tuple(n.strip() for item in scorers for n in item.split(",") if n.strip()) or DEFAULT_SCORERS,
        scorer_params=parse_scorer_params(params), checkpoint=checkpoint, protocol=protocol, fpr95_rule=fpr95_rule,
        resolution=resolution, tta=tta, device=device, cache=cache, from_cache=from_cache, limit=limit,
        calibration=calibration, save_maps=save_maps, keep_work=keep_work, workers=workers, command=list(sys.argv))
    if split is not None:
        config.dataset_options["split"] = split
    if task != "anomaly":
        from maskbench.openset.task import TABLE_METRICS, run_task

        results = run_task(config, task, progress=TerminalProgress)
        click.echo(format_leaderboard(results, "text", metrics=list(TABLE_METRICS[task])), nl=False)
        click.echo(f"results: {out / 'results.json'}")
        return
    results = run_benchmark(config, progress=TerminalProgress)
    if int(os.environ.get("RANK", "0")) == 0:  # torchrun: rank 0 reports
        click.echo(run_summary(results))
        click.echo(format_leaderboard(results, "text"), nl=False)
        click.echo(f"results: {out / 'results.json'}")


@main.group()
def calibrate():
    """Fit a scorer's checkpoint-specific parameters on a validation split."""


@calibrate.command("maskomaly")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Mask2Former checkpoint (.pkl / .pth / HF folder); optional with --from-cache.")
@click.option("--dataset", required=True, help="Validation dataset with anomaly labels (see `bench datasets`).")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: $MASKBENCH_ROOT_<NAME> or $MASKBENCH_DATA/<name>).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE", help="Dataset option.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for calibration.json (the results folder of this checkpoint).")
@click.option("--resolution", default="native", show_default=True, type=click.Choice(list(RESOLUTIONS)),
              help="Forward resolution, as in `bench run`.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Read and fill a forward-output cache (shared with `bench run --cache`).")
@click.option("--from-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Use only cached forward outputs (no model, no forward).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N frames.")
@click.option("--t-iou", default=0.25, show_default=True, type=click.FloatRange(0, 1),
              help="Keep queries whose mean IoU exceeds this (Maskomaly T_IoU).")
@click.option("--t-bin", default=0.9, show_default=True, type=click.FloatRange(0, 1),
              help="Binarise sigmoid masks above this before the IoU (Maskomaly's anomaly_overlap.py T_MASK).")
@click.option("--street-class", "street_classes", multiple=True, type=click.IntRange(min=0), default=(0,),
              show_default=True, help="Class id(s) of the street prediction the ground queries are ranked against "
                                      "(repeatable; 0 = road in Cityscapes train ids).")
@user_errors
def calibrate_maskomaly(checkpoint, dataset, root, options, out, resolution, device, cache, from_cache, limit, t_iou,
                        t_bin, street_classes):
    """Rank queries by mean IoU with the anomalies (accept) and the street (ground); write OUT/calibration.json."""
    from maskbench.benchmark.calibrate import (
        CALIBRATION_FILE, CalibrateConfig, calibrate_checkpoint, calibration_summary,
    )
    from maskbench.benchmark.runner import TerminalProgress
    from maskbench.datasets import parse_options

    config = CalibrateConfig(dataset=dataset, root=root, dataset_options=parse_options(options), out=out,
                             checkpoint=checkpoint, resolution=resolution, device=device, cache=cache,
                             from_cache=from_cache, limit=limit, t_iou=t_iou, t_bin=t_bin,
                             street_classes=tuple(street_classes), command=list(sys.argv))
    record = calibrate_checkpoint(config, progress=TerminalProgress)
    for line in calibration_summary(record):
        click.echo(line)
    click.echo(f"calibration: {out / CALIBRATION_FILE}")


@main.command()
@click.option("--pred", "pred_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory of <stem>.npy score maps (2-D float16/float32, higher = more anomalous).")
@click.option("--gt", "gt_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory of <stem>.png labels (uint8: 0 inlier, 1 anomaly, 255 or other = void).")
@click.option("--protocol", required=True, type=click.Choice(list(EVAL_PROTOCOLS)),
              help="smiyc-anomaly / smiyc-obstacle: the official SMIYC code; exact: exact float32 curve; "
                   "exact16: exact curve on float16 scores.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the metrics as JSON (fractions; null where undefined).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: automatic; 1 = in-process).")
@user_errors
def evaluate(pred_dir, gt_dir, protocol, json_path, workers):
    """Evaluate saved anomaly maps: AP, AUROC, FPR95, sIoU, PPV, F1*, MDM."""
    n_frames = len(pair_frames(pred_dir, gt_dir))
    with click.progressbar(length=2 * n_frames, label="evaluating", file=sys.stderr) as bar:
        result = evaluate_dirs(pred_dir, gt_dir, protocol, workers=workers, progress=bar.update)
    if json_path:
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    click.echo(format_evaluation(result))


@main.group(invoke_without_command=True)
@click.pass_context
def datasets(ctx):
    """List every dataset with the layout it expects; `check` a root; write a `replica`."""
    if ctx.invoked_subcommand is None:
        from maskbench.datasets import format_dataset_list

        click.echo(format_dataset_list())


@datasets.command("check")
@click.argument("name")
@click.option("--root", type=click.Path(path_type=Path), default=None,
              help="Dataset root (default: $MASKBENCH_ROOT_<NAME> or $MASKBENCH_DATA/<name>).")
@click.option("--option", "-o", "options", multiple=True, metavar="KEY=VALUE",
              help="Dataset option, e.g. -o subset=testNoKnown, -o version=2, -o split=K10.")
@click.option("--quick", is_flag=True, help="Only walk the file names; do not read and validate every frame.")
@click.option("--partial", is_flag=True, help="Accept a frame count other than the official one (replicas, subsets).")
@user_errors
def datasets_check(name, root, options, quick, partial):
    """Report what is under the root of dataset NAME: frame count vs official, every missing or malformed path."""
    from maskbench.datasets import check_dataset, parse_options

    report = check_dataset(name, root, read=not quick, partial=partial, **parse_options(options))
    click.echo(report.format())
    if not report.ok:
        raise SystemExit(1)


@datasets.command("replica")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder to write into.")
@click.option("--frames", default=3, show_default=True, type=click.IntRange(min=1), help="Labelled frames to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the replica content.")
@user_errors
def datasets_replica(name, out, frames, seed):
    """Write a tiny replica of dataset NAME in its official layout (known content, for tests and smoke runs)."""
    from maskbench.datasets.replica import make

    replica = make(name, out, frames=frames, seed=seed)
    click.echo(f"wrote a {len(replica.samples)}-frame replica of {name} at {replica.root}")


@main.command()
@click.option("--gt-json", required=True, type=click.Path(dir_okay=False), help="GT panoptic JSON (panopticapi format).")
@click.option("--gt-dir", required=True, type=click.Path(file_okay=False), help="Folder of GT panoptic PNGs.")
@click.option("--pred-json", required=True, type=click.Path(dir_okay=False), help="Predicted panoptic JSON.")
@click.option("--pred-dir", required=True, type=click.Path(file_okay=False), help="Folder of predicted panoptic PNGs.")
@click.option("--unknown", type=click.Choice(["K5", "K10", "K20"]), default=None,
              help="EOPSN open-set protocol: merge this split's COCO classes into the unknown category -1.")
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False), help="Where to write the results.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes reading images.")
@user_errors
def pq(gt_json, gt_dir, pred_json, pred_dir, unknown, json_out, workers):
    """Panoptic quality PQ/SQ/RQ (panopticapi semantics; EOPSN open set with --unknown)."""
    from maskbench.metrics.panoptic import format_table, pq_compute_files

    result = pq_compute_files(gt_json, gt_dir, pred_json, pred_dir, unknown=unknown, workers=workers)
    try:
        with open(json_out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    except OSError as err:
        raise click.ClickException(f"{json_out}: cannot write the results ({err})") from err
    click.echo(format_table(result))


@main.command()
@click.option("--results", "results_dirs", required=True, multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="Results directory written by `bench run` (or its results.json); repeat for several runs.")
@click.option("--format", "fmt", type=click.Choice(["latex", "markdown", "csv", "text"]), default="text",
              show_default=True, help="latex: booktabs table; markdown: pipe table; csv: raw fractions.")
@click.option("--metrics", default=None,
              help="Comma-separated metric keys of results.json, in column order "
                   "(default: those of AP,FPR95,sIoU,PPV,F1 the results have).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the table to this file instead of stdout.")
@user_errors
def table(results_dirs, fmt, metrics, out_path):
    """Leaderboard: scorers x (dataset, protocol) x metrics, x100, best bold, second underlined."""
    from maskbench.benchmark.tables import format_leaderboard, parse_metrics

    text = format_leaderboard(list(results_dirs), fmt=fmt, metrics=parse_metrics(metrics) if metrics else None)
    if out_path is None:
        click.echo(text, nl=False)
        return
    try:
        out_path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"{out_path}: cannot write the table ({err})") from err
    click.echo(f"wrote {out_path}")


@main.command()
@click.option("--results", "results_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="Results directory of `bench run`.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the PNG/PDF figures (default: RESULTS/plots).")
@click.option("--frames", default=None, help="Comma-separated frame ids of maps/<id>.npz to overlay (default: all).")
@user_errors
def plot(results_dir, out_dir, frames):
    """PR/ROC curves (AP, AUROC in the legends) and score-map overlays, as PNG and PDF."""
    from maskbench.benchmark.plots import plot_results

    ids = [f.strip() for f in frames.split(",") if f.strip()] if frames else None
    for path in plot_results(results_dir, out_dir, ids):
        click.echo(f"wrote {path}")


@main.command()
@click.option("--golden", "golden_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Golden JSON of expected metrics (format: maskbench.benchmark.golden).")
@click.argument("results_dirs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--tolerance", "tolerances", multiple=True, metavar="[METRIC=]NUMBER",
              help="Absolute tolerance on stored fractions, overriding the golden file: NUMBER for every metric, "
                   "METRIC=NUMBER for one (repeatable). Default 1e-4.")
@click.option("--update", is_flag=True,
              help="Write the golden file from the results (deliberately) instead of checking.")
@user_errors
def check(golden_path, results_dirs, tolerances, update):
    """Compare every metric of RESULTS_DIR/results.json to a golden file; exit 1 on drift."""
    from maskbench.benchmark.golden import check as run_check
    from maskbench.benchmark.golden import parse_tolerances, write_golden

    tol = parse_tolerances(tolerances)
    if update:
        if golden_path.exists():
            click.echo(f"previous {golden_path} vs these results:")
            click.echo(run_check(golden_path, results_dirs, tol).format())
        command = ["bench", "check", "--golden", str(golden_path), *map(str, results_dirs),
                   *(f"--tolerance={t}" for t in tolerances), "--update"]
        data = write_golden(golden_path, results_dirs, tol, command=command)
        click.echo(f"wrote {golden_path}: {len(data['entries'])} entries, tolerance {data['tolerance']}")
        return
    report = run_check(golden_path, results_dirs, tol)
    click.echo(report.format())
    if not report.ok:
        raise SystemExit(1)


@main.command()
@click.option("--split", "splits", multiple=True,
              type=click.Choice(["train", "val", "anomaly", "obstacle", "streethazards"]),
              help="Split to generate (repeatable; default: val, anomaly, obstacle, streethazards; train on request).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Parent folder of the world (default: $MASKBENCH_CACHE, else ~/.cache/maskbench).")
@click.option("--seed", default=0, show_default=True, type=int, help="World seed.")
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Frames of each requested split instead of the default sizes (another world; for smoke runs).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes writing a split (default: up to 4 for train, 1 otherwise).")
@user_errors
def world(splits, cache, seed, frames, workers):
    """Generate (once, cached) the miniature road world and print the dataset root of each split."""
    import dataclasses
    import time

    from maskbench.datasets.world import DATASET_NAMES, EVAL_SPLITS, WorldConfig, ensure_world

    splits = tuple(dict.fromkeys(splits)) or EVAL_SPLITS
    config = WorldConfig(seed=seed)
    if frames is not None:
        config = dataclasses.replace(config, **{split: frames for split in splits})
    start = time.perf_counter()
    generated = ensure_world(splits, config=config, cache=cache, workers=workers)
    click.echo(f"world {generated.root.name} ready in {time.perf_counter() - start:.1f} s: {generated.root}")
    for split in splits:
        reader = DATASET_NAMES.get(split, "cityscapes train (maskbench.datasets.world.training_set)")
        click.echo(f"  {split:<14}{config.frames(split):>6} frames  {reader:<14}  {generated.path(split)}")


@main.command("train")
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
    summary = train_on_world(cfg, out, log=click.echo)
    fitted = write_scorer_params(out / "model.pth", out / "model.scorers.json")
    sha = hashlib.sha256((out / "model.pth").read_bytes()).hexdigest()
    summary.update(command=["bench", "train", *sys.argv[2:]], model_sha256=sha, scorer_params=fitted["params"])
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    click.echo(f"final val mIoU {summary['final_val_miou']:.4f}; weights {out / 'model.pth'} (sha256 {sha})")
